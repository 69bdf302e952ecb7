//! A tiny QMP client: read the greeting, negotiate `qmp_capabilities`, run
//! commands. Asynchronous events arriving before a reply are skipped. Every
//! read has a timeout and every line a length limit, so a stuck or hostile
//! VMM cannot hang or exhaust pmctl.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

/// Longest accepted reply line.
const MAX_LINE: u64 = 1 << 20;

/// QMP client failures.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// Socket I/O (connect, read, write, timeout).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer sent something that is not QMP.
    #[error("unexpected reply: {0}")]
    Protocol(String),
    /// The command failed (`{"error":{"class":..,"desc":..}}`).
    #[error("{class}: {desc}")]
    Command {
        /// Error class.
        class: String,
        /// Description.
        desc: String,
    },
    /// The connection closed before the reply.
    #[error("connection closed")]
    Closed,
}

/// A negotiated QMP session.
#[derive(Debug)]
pub struct QmpClient {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl QmpClient {
    /// Connect to a unix socket, read the greeting, send `qmp_capabilities`.
    pub fn connect(path: &Path, timeout: Duration) -> Result<QmpClient, QmpError> {
        let s = UnixStream::connect(path)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        let writer = s.try_clone()?;
        let mut c = QmpClient {
            reader: BufReader::new(s),
            writer,
        };
        let greeting = c.read_message()?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Protocol(format!("no QMP greeting: {greeting}")));
        }
        c.execute("qmp_capabilities", None)?;
        Ok(c)
    }

    fn read_message(&mut self) -> Result<Value, QmpError> {
        let mut line = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Err(QmpError::Closed);
        }
        if !line.ends_with(b"\n") {
            return Err(QmpError::Protocol(
                "reply line too long or truncated".into(),
            ));
        }
        serde_json::from_slice(&line).map_err(|e| QmpError::Protocol(format!("not JSON ({e})")))
    }

    /// Run `command` with optional `arguments`; returns the `return` value.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        let mut msg = json!({ "execute": command });
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        let mut text = msg.to_string();
        text.push('\n');
        self.writer.write_all(text.as_bytes())?;
        // Skip events; bound the number so a flood cannot keep us here forever.
        for _ in 0..10_000 {
            let v = self.read_message()?;
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
                return Err(QmpError::Command {
                    class: s("class"),
                    desc: s("desc"),
                });
            }
            if v.get("event").is_none() {
                return Err(QmpError::Protocol(v.to_string()));
            }
        }
        Err(QmpError::Protocol("too many events without a reply".into()))
    }
}
