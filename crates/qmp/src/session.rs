//! One QMP conversation, independent of any socket: bytes in, reply objects out.
//!
//! Implements the protocol rules of QEMU's `monitor/qmp.c` and `qapi/qmp-dispatch.c`:
//! capabilities negotiation, request validation, `id` echo, error shapes. Commands run on the
//! shared [`Core`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::command::Command;
use crate::core::Core;
use crate::error::QmpError;
use crate::json::{Json, object};
use crate::reader::{MessageReader, ReadItem};

/// One client's protocol state.
pub struct QmpSession {
    core: Arc<Core>,
    reader: MessageReader,
    negotiated: Arc<AtomicBool>,
}

/// `{"error": {"class": ..., "desc": ...}}` plus `id` if the request had one.
pub fn error_response(e: &QmpError, id: Option<Json>) -> Json {
    let mut m = vec![(
        "error".to_string(),
        object([
            ("class", Json::String(e.class.as_str().to_string())),
            ("desc", Json::String(e.desc.clone())),
        ]),
    )];
    if let Some(id) = id {
        m.push(("id".to_string(), id));
    }
    Json::Object(m)
}

fn return_response(v: Json, id: Option<Json>) -> Json {
    let mut m = vec![("return".to_string(), v)];
    if let Some(id) = id {
        m.push(("id".to_string(), id));
    }
    Json::Object(m)
}

/// One reply or event as it goes on the wire (QEMU ends every line with CRLF).
pub fn wire_line(v: &Json) -> String {
    let mut s = v.to_qemu_string();
    s.push_str("\r\n");
    s
}

impl QmpSession {
    /// A fresh session in capabilities-negotiation mode.
    pub fn new(core: Arc<Core>) -> Self {
        let reader = MessageReader::new(core.limits());
        QmpSession {
            core,
            reader,
            negotiated: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The greeting: `{"QMP": {"version": ..., "capabilities": []}}`.
    pub fn greeting(&self) -> Json {
        object([(
            "QMP",
            object([
                ("version", self.core.version_json()),
                ("capabilities", Json::Array(Vec::new())),
            ]),
        )])
    }

    /// True once `qmp_capabilities` succeeded (events are delivered only then).
    pub fn is_negotiated(&self) -> bool {
        self.negotiated.load(Ordering::Acquire)
    }

    /// The flag behind [`Self::is_negotiated`], for the event broadcaster.
    pub fn negotiated_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.negotiated)
    }

    /// Feeds bytes; each reply is passed to `reply` as soon as its command has run.
    pub fn feed_with(&mut self, data: &[u8], mut reply: impl FnMut(Json)) {
        for item in self.reader.feed(data) {
            if let Some(r) = self.handle(item) {
                reply(r);
            }
        }
    }

    /// Feeds bytes and collects the replies.
    pub fn feed(&mut self, data: &[u8]) -> Vec<Json> {
        let mut out = Vec::new();
        self.feed_with(data, |r| out.push(r));
        out
    }

    /// Handles one message from the reader.
    pub fn handle(&mut self, item: ReadItem) -> Option<Json> {
        match item {
            // Parse errors never carry an id: it could not be read.
            Err(desc) => Some(error_response(&QmpError::generic(desc), None)),
            Ok(msg) => Some(self.dispatch(msg)),
        }
    }

    fn dispatch(&mut self, msg: Json) -> Json {
        let Json::Object(members) = msg else {
            return error_response(&QmpError::generic("QMP input must be a JSON object"), None);
        };
        let id = members
            .iter()
            .find(|(k, _)| k == "id")
            .map(|(_, v)| v.clone());
        let (name, args) = match check_request(&members) {
            Ok(x) => x,
            Err(e) => return error_response(&e, id),
        };
        let result = if self.is_negotiated() {
            Command::from_qmp(name, args).and_then(|cmd| self.core.execute(cmd))
        } else {
            self.negotiate(name, args)
        };
        match result {
            Ok(v) => return_response(v, id),
            Err(e) => error_response(&e, id),
        }
    }

    /// Capabilities-negotiation mode: only `qmp_capabilities` exists.
    fn negotiate(&mut self, name: &str, args: Option<&[(String, Json)]>) -> Result<Json, QmpError> {
        if name != "qmp_capabilities" {
            // QEMU replaces the CommandNotFound text with a hint.
            return Err(QmpError::command_not_found(
                "Expecting capabilities negotiation with 'qmp_capabilities'",
            ));
        }
        Command::from_qmp(name, args)?;
        self.negotiated.store(true, Ordering::Release);
        Ok(Json::Object(Vec::new()))
    }
}

/// `qmp_dispatch_check_obj()`: members must be `execute` (string), `arguments` (object), `id`.
/// A request's command name and argument members.
type Request<'a> = (&'a str, Option<&'a [(String, Json)]>);

fn check_request(members: &[(String, Json)]) -> Result<Request<'_>, QmpError> {
    let mut name = None;
    let mut args = None;
    for (k, v) in members {
        match (k.as_str(), v) {
            ("execute", Json::String(s)) => name = Some(s.as_str()),
            ("execute", _) => {
                return Err(QmpError::generic(
                    "QMP input member 'execute' must be a string",
                ));
            }
            ("arguments", Json::Object(a)) => args = Some(a.as_slice()),
            ("arguments", _) => {
                return Err(QmpError::generic(
                    "QMP input member 'arguments' must be an object",
                ));
            }
            ("id", _) => {}
            // Includes "exec-oob": out-of-band execution is never enabled.
            (other, _) => {
                return Err(QmpError::generic(format!(
                    "QMP input member '{other}' is unexpected"
                )));
            }
        }
    }
    let name = name.ok_or_else(|| QmpError::generic("QMP input lacks member 'execute'"))?;
    Ok((name, args))
}
