//! The engine both monitors share: the VMM's [`QmpHandler`], what we claim to be, and command
//! dispatch for QMP ([`Core::execute`]) and HMP ([`Core::execute_hmp_line`]).
//!
//! Layering (no module imports one that imports it back, checked by
//! `tests/no_import_cycles.rs`): `command`/`hmp` (syntax, formats) ← `core` (dispatch) ←
//! `session` (QMP protocol) ← `server` (sockets); `fuzz` uses `session` and `reader`.

use std::io::{self, Read, Write};
use std::sync::Arc;

use crate::command::{COMMANDS, Command};
use crate::error::QmpError;
use crate::hmp::{self, HmpOutput, HmpRequest};
use crate::json::{Json, Number, object};
use crate::reader::Limits;
use crate::types::VersionInfo;

/// What the VMM implements. Called from client threads, possibly concurrently: serialise
/// inside if needed (e.g. send the command to the VMM thread and wait for its answer).
///
/// Never receives `QmpCapabilities`, `QueryVersion`, `QueryCommands` or
/// `HumanMonitorCommand`: the server answers those (HMP lines are turned into other commands).
/// For commands without a return value in the schema the returned value is ignored and the
/// client gets `{}`; for queries return the `types` structs via `serde_json::to_value`.
pub trait QmpHandler: Send + Sync {
    /// Executes one command.
    fn execute(&self, cmd: Command) -> Result<serde_json::Value, QmpError>;
}

/// State shared by every session of one server: the handler and what we claim to be.
pub struct Core {
    handler: Arc<dyn QmpHandler>,
    version: VersionInfo,
    limits: Limits,
}

impl Core {
    /// A core around `handler`.
    pub fn new(handler: Arc<dyn QmpHandler>, version: VersionInfo, limits: Limits) -> Self {
        Core {
            handler,
            version,
            limits,
        }
    }

    /// The version we report.
    pub fn version(&self) -> &VersionInfo {
        &self.version
    }

    /// The per-message limits of every QMP reader of this core.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// `VersionInfo` as QEMU prints it (micro, minor, major, like the spec's example).
    pub fn version_json(&self) -> Json {
        let v = &self.version;
        object([
            (
                "qemu",
                object([
                    ("micro", Json::Number(Number::Int(v.qemu.micro))),
                    ("minor", Json::Number(Number::Int(v.qemu.minor))),
                    ("major", Json::Number(Number::Int(v.qemu.major))),
                ]),
            ),
            ("package", Json::String(v.package.clone())),
        ])
    }

    /// Executes a command in command mode (after negotiation).
    pub fn execute(&self, cmd: Command) -> Result<Json, QmpError> {
        match cmd {
            Command::QmpCapabilities { .. } => Err(QmpError::command_not_found(
                "Capabilities negotiation is already complete, command ignored",
            )),
            Command::QueryVersion => Ok(self.version_json()),
            Command::QueryCommands => Ok(Json::Array(
                COMMANDS
                    .iter()
                    .map(|c| object([("name", Json::String(c.name.to_string()))]))
                    .collect(),
            )),
            Command::HumanMonitorCommand { command_line, .. } => {
                Ok(Json::String(self.execute_hmp_line(&command_line).output))
            }
            other => {
                let has_return = other.has_return();
                let v = self.handler.execute(other)?;
                Ok(if has_return {
                    Json::from(&v)
                } else {
                    Json::Object(Vec::new())
                })
            }
        }
    }

    /// Executes one HMP line (as typed at the `(qemu) ` prompt or sent with
    /// `human-monitor-command`); the output uses `\n`.
    pub fn execute_hmp_line(&self, line: &str) -> HmpOutput {
        let req = match hmp::parse_hmp_line(line) {
            Ok(r) => r,
            Err(msg) => return HmpOutput::text(format!("{msg}\n")),
        };
        match req {
            HmpRequest::Nothing => HmpOutput::text(String::new()),
            HmpRequest::Help(t) => HmpOutput::text(hmp::help_text(t.as_deref())),
            HmpRequest::InfoHelp => HmpOutput::text(hmp::help_text(Some("info"))),
            HmpRequest::InfoVersion => HmpOutput::text(hmp::format_version(&self.version)),
            HmpRequest::Command(cmd) => {
                let quit = cmd == Command::Quit;
                let shown = cmd.clone();
                match self.handler.execute(cmd) {
                    Ok(v) => match hmp::format_result(&shown, v) {
                        Ok(output) => HmpOutput { output, quit },
                        Err(output) => HmpOutput::text(output),
                    },
                    Err(e) => HmpOutput::text(hmp::error_text(&e)),
                }
            }
        }
    }
}

/// Runs an HMP session against `core`: banner, prompt, one command per line, until end of
/// input or a successful `quit`.
pub fn run_hmp_session(core: &Core, reader: impl Read, writer: impl Write) -> io::Result<()> {
    hmp::run_hmp_lines(
        &core.version,
        |line| core.execute_hmp_line(line),
        reader,
        writer,
    )
}
