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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::fuzz_api_request;

    #[test]
    fn edge_requests_never_panic() {
        let cases: &[&[u8]] = &[
            b"",
            b"\n",
            b"GET",
            b"GET /",
            b"GET /api/vms",
            b"POST /api/vms\n{}",
            b"POST /api/vms\n{\"name\":\"a\",\"kernel\":\"/proc/self/exe\",\"memory\":\"1G\"}",
            b"POST /api/vms\n{\"name\":\"a\",\"kernel\":\"/proc/self/exe\",\"memory\":18446744073709551615}",
            b"POST /api/vms\n{\"name\":\"b\",\"kernel\":\"/proc/self/exe\",\"memory\":\"16E\",\"cpus\":4294967295}",
            b"POST /api/vms/a/nvdimms\n{\"path\":\"/proc/self/exe\"}",
            b"POST /api/vms/a/nvdimms\n{\"path\":\"\"}",
            b"DELETE /api/vms/a/nvdimms?path=%",
            b"DELETE /api/vms/a/nvdimms?path=%ff%fe",
            b"GET /api/vms/%2e%2e%2f%2e%2e",
            b"GET /api/vms/a/args",
            b"POST /api/vms/a/start",
            b"POST /api/vms/a/stop\n{\"force\":true}",
            b"GET /api/size?path=/dev/null",
            b"GET /api/probe?path=/nonexistent/x",
            b"GET /api/host/nvdimms",
            b"DELETE /api/vms/a",
            b"GET /api/vms/a/status?x=%",
        ];
        for c in cases {
            fuzz_api_request(c);
        }
        let mut big = b"POST /api/vms\n".to_vec();
        big.resize(super::super::MAX_BODY + 10, b'[');
        fuzz_api_request(&big);
    }

    proptest! {
        #[test]
        fn random_requests_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            fuzz_api_request(&data);
        }

        #[test]
        fn api_shaped_requests_never_panic(
            method in prop_oneof![Just("GET".to_string()), Just("POST".to_string()), Just("DELETE".to_string()), "[A-Z]{0,6}"],
            segs in proptest::collection::vec(prop_oneof![
                Just("api".to_string()), Just("vms".to_string()), Just("nvdimms".to_string()),
                Just("start".to_string()), Just("stop".to_string()), Just("args".to_string()),
                Just("host".to_string()), Just("size".to_string()), "[a-z0-9%._-]{0,8}",
            ], 0..6),
            query in "[a-z=&%/.0-9+]{0,20}",
            body in prop_oneof![
                Just(String::new()),
                "\\{\"(name|path|kernel|memory|force|dry_run)\": ?(\"[a-z/0-9]{0,8}\"|[0-9]{1,20}|true|null)\\}",
                ".{0,40}",
            ],
        ) {
            let req = format!("{method} /{}?{query}\n{body}", segs.join("/"));
            fuzz_api_request(req.as_bytes());
        }
    }
}
