//! Fuzz entry points (`fuzz/fuzz_targets/qmp_reader.rs`, and `tests/reader.rs` on proptest
//! inputs): the reader, the parser round trip and the sessions on top. Kept apart so that the
//! reader does not depend on the protocol layer.

use std::sync::Arc;

use crate::command::Command;
use crate::core::{Core, QmpHandler};
use crate::error::QmpError;
use crate::parse::parse_message;
use crate::reader::{Limits, MessageReader};
use crate::session::QmpSession;
use crate::types::VersionInfo;

/// Fuzz entry point: feeds `data` in chunks (the first byte chooses the chunk size) through a
/// reader with small limits, and checks the invariants. Must never panic.
pub fn fuzz_qmp_reader(data: &[u8]) {
    let (chunk, rest) = match data.split_first() {
        Some((&c, rest)) => (usize::from(c % 64) + 1, rest),
        None => return,
    };
    let limits = Limits {
        max_bytes: 4096,
        max_tokens: 512,
        max_depth: 64,
    };
    let mut r = MessageReader::new(limits);
    let mut whole = MessageReader::new(limits);
    let mut items = Vec::new();
    for part in rest.chunks(chunk) {
        items.extend(r.feed(part));
        assert!(
            r.buffered() <= limits.max_bytes,
            "reader kept more than the limit"
        );
    }
    // Splitting the input differently must not change the result.
    let at_once = whole.feed(rest);
    assert_eq!(items, at_once, "chunking changed the messages");
    for item in items.iter().flatten() {
        // Whatever was parsed must serialise and parse back to itself.
        let text = item.to_qemu_string();
        let back = parse_message(text.as_bytes(), usize::MAX);
        assert_eq!(back.as_ref(), Ok(item), "round trip failed for {text}");
    }
    // The protocol layer must cope with whatever came out.
    fuzz_session(rest);
}

struct FuzzHandler;

impl QmpHandler for FuzzHandler {
    fn execute(&self, cmd: Command) -> Result<serde_json::Value, QmpError> {
        match cmd {
            Command::DeviceDel { id } => Err(QmpError::device_not_found(&id)),
            Command::QueryStatus => Ok(serde_json::json!({"running": true, "status": "running"})),
            _ => Ok(serde_json::json!([])),
        }
    }
}

/// Fuzz helper: runs `data` through a negotiated and a fresh session; every reply must be a
/// well-formed QMP reply. Must never panic.
fn fuzz_session(data: &[u8]) {
    let core = Arc::new(Core::new(
        Arc::new(FuzzHandler),
        VersionInfo::default(),
        Limits {
            max_bytes: 4096,
            max_tokens: 512,
            max_depth: 64,
        },
    ));
    let mut fresh = QmpSession::new(Arc::clone(&core));
    let mut negotiated = QmpSession::new(core);
    negotiated.feed(br#"{"execute":"qmp_capabilities"}"#);
    for s in [&mut fresh, &mut negotiated] {
        for r in s.feed(data) {
            let ok = r.get("return").is_some() != r.get("error").is_some();
            assert!(ok, "reply is neither return nor error: {r:?}");
        }
    }
}
