//! Fuzz entry: arbitrary bytes as an API request, routed against a manager
//! whose state directory is a private temporary directory, with an empty
//! sysfs and procfs and no pmvm binary (so nothing is ever started).

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use super::{ApiRequest, handle};
use crate::vm::Manager;

fn manager() -> &'static Manager {
    static M: OnceLock<Manager> = OnceLock::new();
    M.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("pmctl-fuzz-{}", std::process::id()));
        let empty = base.join("empty");
        let _ = std::fs::create_dir_all(&empty);
        let mut m = Manager::new(base.join("state"));
        m.sysfs_root = empty.clone();
        m.proc_root = empty;
        m.pmvm = Some(PathBuf::from("/nonexistent/pmvm"));
        m.stop_timeout = Duration::ZERO;
        m
    })
}

/// Route `data` as a request: the first line is `METHOD URL`, the rest the
/// body. Must never panic. The state directory is emptied when it grows.
pub fn fuzz_api_request(data: &[u8]) {
    let m = manager();
    if std::fs::read_dir(m.store.dir()).is_ok_and(|d| d.count() > 256) {
        let _ = std::fs::remove_dir_all(m.store.dir());
    }
    let (head, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let (method, url) = head.split_once(' ').unwrap_or((&head, "/"));
    let r = handle(m, &ApiRequest { method, url, body });
    // Every response is either the page or valid JSON.
    if r.content_type == "application/json" {
        let _: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    }
}
