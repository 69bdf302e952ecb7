//! The human monitor (HMP): `(qemu) ` prompt, QEMU's command syntax and output formats.
//!
//! Lines are parsed onto the same [`Command`] values as QMP and executed by the same handler
//! ([`crate::core::Core::execute_hmp_line`], which `human-monitor-command` over QMP runs too, so
//! both front ends behave alike); results are printed the way QEMU's `hmp_*` functions print
//! them. This module is syntax and formats only: it does not know the core.

use std::io::{self, Read, Write};

use crate::command::{Command, DeviceAdd, ObjectAdd, Props};
use crate::error::QmpError;
use crate::types::{
    BlockInfo, CpuInfoFast, Memdev, MemoryDeviceInfo, MemoryInfo, NameInfo, RunState, StatusInfo,
    VersionInfo,
};

/// Longest HMP line we accept; longer lines are discarded with an error.
pub const MAX_LINE: usize = 64 * 1024;

/// The prompt QEMU prints.
pub const PROMPT: &str = "(qemu) ";

/// What one HMP line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HmpRequest {
    /// An empty line.
    Nothing,
    /// `help [command]`.
    Help(Option<String>),
    /// `info` without a subcommand: list the subcommands.
    InfoHelp,
    /// `info version` (answered from the server's version).
    InfoVersion,
    /// Anything that maps onto a QMP command.
    Command(Command),
}

/// Top-level commands: (name with aliases, parameters, help), as QEMU's `help` prints them.
const COMMANDS: &[(&str, &str, &str)] = &[
    ("cont|c", "", "resume emulation"),
    (
        "device_add",
        "driver[,prop=value][,...]",
        "add device, like -device on the command line",
    ),
    ("device_del", "device", "remove device"),
    ("help|?", "[cmd]", "show the help"),
    (
        "hostfwd_add",
        "[netdev_id] [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport",
        "redirect TCP or UDP connections from host to guest (requires -net user)",
    ),
    (
        "hostfwd_remove",
        "[netdev_id] [tcp|udp]:[hostaddr]:hostport",
        "remove host-to-guest TCP or UDP redirection",
    ),
    (
        "info",
        "[subcommand]",
        "show various information about the system state",
    ),
    (
        "object_add",
        "[qom-type=]type,id=str[,prop=value][,...]",
        "create QOM object",
    ),
    ("object_del", "id", "destroy QOM object"),
    (
        "change",
        "vnc password PASSWORD",
        "change the VNC password (pmvm: no removable media)",
    ),
    ("quit|q", "", "quit the emulator"),
    (
        "set_link",
        "name on|off",
        "change the link status of a network adapter",
    ),
    (
        "set_password",
        "protocol password [-d display] [action-if-connected]",
        "set spice/vnc password",
    ),
    ("stop|s", "", "stop emulation"),
    ("system_powerdown", "", "send system power down event"),
    ("system_reset", "", "reset the system"),
];

/// `info` subcommands.
const INFO: &[(&str, &str)] = &[
    ("block", "show the block devices"),
    ("cpus", "show infos for each CPU"),
    ("memdev", "show memory backends"),
    ("memory-devices", "show memory devices"),
    (
        "memory_size_summary",
        "show the amount of initially allocated and present hotpluggable (if enabled) memory in bytes.",
    ),
    ("name", "show the current VM name"),
    ("network", "show the network state"),
    ("registers [-a]", "show the cpu registers (-a: all CPUs)"),
    ("status", "show the current VM status (running|paused)"),
    ("version", "show the version of QEMU"),
    ("vnc", "show the vnc server status"),
];

fn help_line(name: &str, params: &str, help: &str, prefix: &str) -> String {
    format!("{prefix}{name} {params} -- {help}\n")
}

pub(crate) fn help_text(topic: Option<&str>) -> String {
    let mut s = String::new();
    match topic {
        Some("info") => {
            for (n, h) in INFO {
                s.push_str(&help_line(n, "", h, "info "));
            }
        }
        Some(t) => {
            for (n, p, h) in COMMANDS {
                if n.split('|').any(|a| a == t) {
                    s.push_str(&help_line(n, p, h, ""));
                }
            }
            if s.is_empty() {
                s = format!("unknown command: '{t}'\n");
            }
        }
        None => {
            for (n, p, h) in COMMANDS {
                s.push_str(&help_line(n, p, h, ""));
            }
        }
    }
    s
}

/// Splits QemuOpts text (`a=b,c,,d=e`): `,,` is a literal comma, a leading bare value belongs
/// to `implied` (if given), a later bare `key` means `key=on`. Empty elements are skipped.
pub fn parse_opts(s: &str, implied: Option<&str>) -> Result<Props, String> {
    let mut props = Vec::new();
    for (i, item) in vm_config::split_opts(s).into_iter().enumerate() {
        if item.is_empty() {
            continue;
        }
        match item.split_once('=') {
            Some(("", _)) => {
                return Err(format!(
                    "Invalid parameter '{item}': missing name before '='"
                ));
            }
            Some((k, v)) => props.push((k.to_string(), v.to_string())),
            None => match implied {
                Some(key) if i == 0 => props.push((key.to_string(), item)),
                _ => props.push((item, "on".to_string())),
            },
        }
    }
    Ok(Props(props))
}

/// One word argument: bare, or double-quoted with `\"`/`\\` escapes.
fn word_arg(cmd: &str, rest: &str, what: &str) -> Result<String, String> {
    let rest = rest.trim();
    if rest.is_empty() {
        return Err(format!("{cmd}: missing argument '{what}'"));
    }
    if let Some(q) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = q.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    return if chars.as_str().trim().is_empty() {
                        Ok(out)
                    } else {
                        Err(format!("{cmd}: extraneous characters at the end of line"))
                    };
                }
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some(c @ ('\\' | '\'' | '"')) => out.push(c),
                    _ => return Err(format!("{cmd}: unsupported escape code in string")),
                },
                _ => out.push(c),
            }
        }
        return Err(format!("{cmd}: unterminated string"));
    }
    let mut parts = rest.split_whitespace();
    let w = parts.next().unwrap_or_default().to_string();
    if parts.next().is_some() {
        return Err(format!("{cmd}: extraneous characters at the end of line"));
    }
    Ok(w)
}

fn no_args(cmd: &str, rest: &str, c: Command) -> Result<HmpRequest, String> {
    if rest.trim().is_empty() {
        Ok(HmpRequest::Command(c))
    } else {
        Err(format!("{cmd}: extraneous characters at the end of line"))
    }
}

/// Parses one HMP line. `Err` is the text to print, without the final newline (e.g.
/// "unknown command: 'foo'", "Error: Parameter 'id' is missing").
pub fn parse_hmp_line(line: &str) -> Result<HmpRequest, String> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(HmpRequest::Nothing);
    }
    let (cmd, rest) = match line.find(char::is_whitespace) {
        Some(i) => (&line[..i], line[i..].trim_start()),
        None => (line, ""),
    };
    match cmd {
        "help" | "?" => {
            let t = rest.split_whitespace().next().map(str::to_string);
            Ok(HmpRequest::Help(t))
        }
        "info" => {
            let mut words = rest.split_whitespace();
            let Some(sub) = words.next() else {
                return Ok(HmpRequest::InfoHelp);
            };
            if sub == "registers" {
                return match (words.next(), words.next()) {
                    (None, _) => Ok(HmpRequest::Command(Command::InfoRegisters { all: false })),
                    (Some("-a"), None) => {
                        Ok(HmpRequest::Command(Command::InfoRegisters { all: true }))
                    }
                    _ => Err("info registers: usage: info registers [-a]".to_string()),
                };
            }
            if words.next().is_some() {
                return Err("info: extraneous characters at the end of line".to_string());
            }
            let c = match sub {
                "status" => Command::QueryStatus,
                "memory-devices" => Command::QueryMemoryDevices,
                "memory_size_summary" => Command::QueryMemorySizeSummary,
                "memdev" => Command::QueryMemdev,
                "cpus" => Command::QueryCpusFast,
                "block" => Command::QueryBlock,
                "name" => Command::QueryName,
                "network" => Command::InfoNetwork,
                "vnc" => Command::QueryVnc,
                "version" => return Ok(HmpRequest::InfoVersion),
                _ => return Err(format!("unknown command: 'info {sub}'")),
            };
            Ok(HmpRequest::Command(c))
        }
        "object_add" => {
            let props = parse_opts(rest, Some("qom-type")).map_err(|e| format!("Error: {e}"))?;
            let add = ObjectAdd::new(props).map_err(|e| format!("Error: {}", e.desc))?;
            Ok(HmpRequest::Command(Command::ObjectAdd(add)))
        }
        "object_del" => Ok(HmpRequest::Command(Command::ObjectDel {
            id: word_arg(cmd, rest, "id")?,
        })),
        "device_add" => {
            let props = parse_opts(rest, Some("driver")).map_err(|e| format!("Error: {e}"))?;
            let add = DeviceAdd::new(props).map_err(|e| format!("Error: {}", e.desc))?;
            Ok(HmpRequest::Command(Command::DeviceAdd(add)))
        }
        "device_del" => Ok(HmpRequest::Command(Command::DeviceDel {
            id: word_arg(cmd, rest, "device")?,
        })),
        "hostfwd_add" | "hostfwd_remove" => {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let (netdev, rule) = match words[..] {
                [rule] => (None, rule.to_string()),
                [netdev, rule] => (Some(netdev.to_string()), rule.to_string()),
                _ => {
                    return Err(format!(
                        "{cmd}: usage: {cmd} [netdev_id] [tcp|udp]:[hostaddr]:hostport{}",
                        if cmd == "hostfwd_add" {
                            "-[guestaddr]:guestport"
                        } else {
                            ""
                        }
                    ));
                }
            };
            Ok(HmpRequest::Command(if cmd == "hostfwd_add" {
                Command::HostfwdAdd { netdev, rule }
            } else {
                Command::HostfwdRemove { netdev, rule }
            }))
        }
        "set_link" => match rest.split_whitespace().collect::<Vec<_>>()[..] {
            [name, "on"] => Ok(HmpRequest::Command(Command::SetLink {
                name: name.to_string(),
                up: true,
            })),
            [name, "off"] => Ok(HmpRequest::Command(Command::SetLink {
                name: name.to_string(),
                up: false,
            })),
            _ => Err("set_link: usage: set_link name on|off".to_string()),
        },
        "set_password" => Ok(HmpRequest::Command(crate::vnc::parse_set_password(rest)?)),
        "change" => Ok(HmpRequest::Command(crate::vnc::parse_change(rest)?)),
        "cont" | "c" => no_args(cmd, rest, Command::Cont),
        "stop" | "s" => no_args(cmd, rest, Command::Stop),
        "system_powerdown" => no_args(cmd, rest, Command::SystemPowerdown),
        "system_reset" => no_args(cmd, rest, Command::SystemReset),
        "quit" | "q" => no_args(cmd, rest, Command::Quit),
        _ => Err(format!("unknown command: '{cmd}'")),
    }
}

/// Result of one HMP line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HmpOutput {
    /// Text to print, lines ending in `\n` (the transport turns them into CRLF).
    pub output: String,
    /// True if the line was `quit` and the handler accepted it.
    pub quit: bool,
}

impl HmpOutput {
    /// Output that does not end the session.
    pub fn text(output: String) -> Self {
        HmpOutput {
            output,
            quit: false,
        }
    }
}

/// `info status`.
pub fn format_status(s: &StatusInfo) -> String {
    let mut out = format!(
        "VM status: {}",
        if s.running { "running" } else { "paused" }
    );
    if s.singlestep == Some(true) {
        out.push_str(" (single step mode)");
    }
    if !s.running && s.status != RunState::Paused {
        out.push_str(&format!(" ({})", s.status.as_str()));
    }
    out.push('\n');
    out
}

/// `info memory-devices`.
pub fn format_memory_devices(devs: &[MemoryDeviceInfo]) -> String {
    let mut out = String::new();
    for d in devs {
        let (kind, di) = match d {
            MemoryDeviceInfo::Dimm(di) => ("dimm", di),
            MemoryDeviceInfo::Nvdimm(di) => ("nvdimm", di),
        };
        out.push_str(&format!(
            "Memory device [{kind}]: \"{}\"\n  addr: 0x{:x}\n  slot: {}\n  node: {}\n  size: {}\n  memdev: {}\n  hotplugged: {}\n  hotpluggable: {}\n",
            di.id.as_deref().unwrap_or(""),
            di.addr,
            di.slot,
            di.node,
            di.size,
            di.memdev,
            di.hotplugged,
            di.hotpluggable,
        ));
    }
    out
}

/// `info memory_size_summary`.
pub fn format_memory_size_summary(m: &MemoryInfo) -> String {
    let mut out = format!("base memory: {}\n", m.base_memory);
    if let Some(p) = m.plugged_memory {
        out.push_str(&format!("plugged memory: {p}\n"));
    }
    out
}

/// `info memdev`.
pub fn format_memdev(list: &[Memdev]) -> String {
    let mut out = String::new();
    for m in list {
        out.push_str(&format!(
            "memory backend: {}\n",
            m.id.as_deref().unwrap_or("")
        ));
        out.push_str(&format!("  size:  {}\n", m.size));
        out.push_str(&format!("  merge: {}\n", m.merge));
        out.push_str(&format!("  dump: {}\n", m.dump));
        out.push_str(&format!("  prealloc: {}\n", m.prealloc));
        out.push_str(&format!("  share: {}\n", m.share));
        if let Some(r) = m.reserve {
            out.push_str(&format!("  reserve: {r}\n"));
        }
        out.push_str(&format!("  policy: {}\n", m.policy.as_str()));
        let nodes: Vec<String> = m.host_nodes.iter().map(u16::to_string).collect();
        out.push_str(&format!("  host nodes: {}\n", nodes.join(",")));
    }
    out.push('\n');
    out
}

/// `info block`, in QEMU's layout (without its internal node names).
pub fn format_block(list: &[BlockInfo]) -> String {
    let mut out = String::new();
    for b in list {
        match &b.inserted {
            Some(i) => {
                let ro = if i.ro { ", read-only" } else { "" };
                out.push_str(&format!("{}: {} ({}{ro})\n", b.device, i.file, i.drv));
                // QEMU's wording: writeback/writethrough, ", direct" for O_DIRECT.
                let mode = match (i.cache.writeback, i.cache.no_flush) {
                    (_, true) => "writeback, ignore flushes",
                    (true, false) => "writeback",
                    (false, false) => "writethrough",
                };
                let mode = if i.cache.direct {
                    format!("{mode}, direct")
                } else {
                    mode.to_string()
                };
                out.push_str(&format!("    Cache mode:       {mode}\n"));
            }
            None => out.push_str(&format!("{}: [not inserted]\n", b.device)),
        }
        out.push('\n');
    }
    out
}

/// `info cpus`, as QEMU prints it (`*` marks the monitor's current CPU, the first).
pub fn format_cpus(cpus: &[CpuInfoFast]) -> String {
    cpus.iter()
        .enumerate()
        .map(|(i, c)| {
            let mark = if i == 0 { '*' } else { ' ' };
            format!("{mark} CPU #{}: thread_id={}\n", c.cpu_index, c.thread_id)
        })
        .collect()
}

fn decode<T: serde::de::DeserializeOwned>(cmd: &str, v: serde_json::Value) -> Result<T, String> {
    serde_json::from_value(v)
        .map_err(|e| format!("Error: {cmd}: malformed reply from the VMM: {e}\n"))
}

pub(crate) fn format_result(cmd: &Command, v: serde_json::Value) -> Result<String, String> {
    Ok(match cmd {
        Command::QueryStatus => format_status(&decode(cmd.name(), v)?),
        Command::QueryMemoryDevices => format_memory_devices(&decode::<Vec<_>>(cmd.name(), v)?),
        Command::QueryMemorySizeSummary => format_memory_size_summary(&decode(cmd.name(), v)?),
        Command::QueryMemdev => format_memdev(&decode::<Vec<_>>(cmd.name(), v)?),
        Command::QueryCpusFast => format_cpus(&decode::<Vec<_>>(cmd.name(), v)?),
        Command::QueryBlock => format_block(&decode::<Vec<_>>(cmd.name(), v)?),
        Command::InfoRegisters { .. } | Command::InfoNetwork => decode::<String>(cmd.name(), v)?,
        Command::QueryVnc => crate::vnc::format_info_vnc(&decode(cmd.name(), v)?),
        Command::QueryName => match decode::<NameInfo>(cmd.name(), v)?.name {
            Some(n) => format!("{n}\n"),
            None => String::new(),
        },
        _ => String::new(),
    })
}

pub(crate) fn error_text(e: &QmpError) -> String {
    format!("Error: {}\n", e.desc)
}

/// `info version`: `10.2.0 (pmvm 0.1.0)`.
pub fn format_version(v: &VersionInfo) -> String {
    format!(
        "{}.{}.{} ({})\n",
        v.qemu.major, v.qemu.minor, v.qemu.micro, v.package
    )
}

/// QEMU's banner for a new HMP session.
pub fn banner(version: &VersionInfo) -> String {
    let v = &version.qemu;
    format!(
        "QEMU {}.{}.{} monitor - type 'help' for more information\n",
        v.major, v.minor, v.micro
    )
}

/// `\n` → `\r\n`, as QEMU's `monitor_puts()` does for every monitor.
pub fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}

/// Runs an HMP session: banner, prompt, one line at a time through `execute`, until end of
/// input (see [`crate::core::run_hmp_session`] for a session against a core).
///
/// Returns when the reader reports EOF or an error, or after a successful `quit`. Lines longer
/// than [`MAX_LINE`] are discarded with an error message.
pub fn run_hmp_lines(
    version: &VersionInfo,
    mut execute: impl FnMut(&str) -> HmpOutput,
    mut reader: impl Read,
    mut writer: impl Write,
) -> io::Result<()> {
    writer.write_all(crlf(&banner(version)).as_bytes())?;
    writer.write_all(PROMPT.as_bytes())?;
    writer.flush()?;
    let mut line: Vec<u8> = Vec::new();
    let mut too_long = false;
    let mut buf = [0u8; 4096];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for &b in &buf[..n] {
            if b != b'\n' {
                if line.len() < MAX_LINE {
                    line.push(b);
                } else {
                    too_long = true;
                }
                continue;
            }
            let out = if too_long {
                HmpOutput::text(format!(
                    "Error: line longer than {MAX_LINE} bytes ignored\n"
                ))
            } else {
                let text = String::from_utf8_lossy(&line);
                execute(text.trim_end_matches('\r'))
            };
            line.clear();
            too_long = false;
            writer.write_all(crlf(&out.output).as_bytes())?;
            if out.quit {
                writer.flush()?;
                return Ok(());
            }
            writer.write_all(PROMPT.as_bytes())?;
            writer.flush()?;
        }
    }
}
