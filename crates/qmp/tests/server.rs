//! The server over real sockets: several clients at once, hostile clients next to a working
//! one, event broadcast, disconnects.

#[path = "support/fake.rs"]
mod fake;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use qmp::{Endpoint, Event, QmpServer};

fn sock_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qmp-test-{}-{name}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir.join("qmp.sock")
}

fn start(name: &str) -> (Arc<fake::FakeVm>, QmpServer, PathBuf) {
    let vm = Arc::new(fake::FakeVm::new());
    let server = QmpServer::new(vm.clone());
    let _ = vm.server.set(server.clone());
    let path = sock_path(name);
    server
        .listen(Endpoint::Unix(path.clone()), true, false)
        .unwrap();
    (vm, server, path)
}

struct Client {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Client {
    fn connect(path: &PathBuf) -> Client {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut c = Client {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        };
        let g = c.line();
        assert!(g.starts_with(r#"{"QMP": {"version": "#), "{g}");
        c
    }

    fn negotiated(path: &PathBuf) -> Client {
        let mut c = Self::connect(path);
        assert_eq!(
            c.cmd(r#"{"execute":"qmp_capabilities"}"#),
            r#"{"return": {}}"#
        );
        c
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        assert!(l.ends_with("\r\n"), "line not CRLF-terminated: {l:?}");
        l.trim_end().to_string()
    }

    fn send(&mut self, s: &str) {
        self.w.write_all(s.as_bytes()).unwrap();
    }

    fn cmd(&mut self, s: &str) -> String {
        self.send(s);
        self.line()
    }

    /// The next line that is not an event (other clients' commands may cause events).
    fn reply(&mut self, s: &str) -> String {
        self.send(s);
        self.next()
    }

    fn next(&mut self) -> String {
        loop {
            let l = self.line();
            if !l.starts_with(r#"{"event""#) {
                return l;
            }
        }
    }
}

fn wait_for(mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "condition not reached"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn many_clients_at_once() {
    let (_, server, path) = start("many");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let path = path.clone();
            thread::spawn(move || {
                let mut c = Client::negotiated(&path);
                for i in 0..50 {
                    let id = format!("\"c{t}-{i}\"");
                    let r = c.cmd(&format!(r#"{{"execute":"query-status","id":{id}}}"#));
                    assert!(r.ends_with(&format!(r#", "id": {id}}}"#)), "{r}");
                    assert!(r.starts_with(r#"{"return": {"running": "#), "{r}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    wait_for(|| server.client_count() == 0);
    server.shutdown();
    assert!(!path.exists(), "shutdown removes the socket file");
}

#[test]
fn hostile_clients_do_not_disturb_a_working_one() {
    let (_, server, path) = start("hostile");
    let mut good = Client::negotiated(&path);
    let p = path.clone();
    let bad = thread::spawn(move || {
        // Malformed JSON, then a valid command on the same connection.
        let mut c = Client::negotiated(&p);
        assert_eq!(
            c.reply("{\"execute\": }\n"),
            r#"{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}"#
        );
        c.send("\u{ff}");
        assert!(c.line().contains("stray"));
        assert_eq!(
            c.reply(r#"{"execute":"cont","id":1}"#),
            r#"{"return": {}, "id": 1}"#
        );
        // Unknown command, wrong types.
        assert!(c.reply(r#"{"execute":"nope"}"#).contains("CommandNotFound"));
        assert!(
            c.reply(r#"{"execute":"device_del","arguments":{"id":[]}}"#)
                .contains("Invalid parameter type for 'id'")
        );

        // Before negotiation.
        let mut fresh = Client::connect(&p);
        assert!(
            fresh
                .cmd(r#"{"execute":"query-status"}"#)
                .contains("Expecting capabilities negotiation")
        );

        // A 100 MB message: one error, the connection survives, memory is not spent.
        let mut big = Client::negotiated(&p);
        let w = big.w.try_clone().unwrap();
        let sender = thread::spawn(move || {
            let mut w = w;
            w.write_all(br#"{"execute":"object-add","arguments":{"qom-type":"x","id":""#)
                .unwrap();
            let chunk = vec![b'a'; 1 << 20];
            for _ in 0..100 {
                w.write_all(&chunk).unwrap();
            }
            w.write_all(b"\"}}{\"execute\":\"query-name\",\"id\":\"after\"}")
                .unwrap();
        });
        assert_eq!(
            big.next(),
            r#"{"error": {"class": "GenericError", "desc": "JSON token size limit exceeded"}}"#
        );
        assert_eq!(big.next(), r#"{"return": {"name": "fake"}, "id": "after"}"#);
        sender.join().unwrap();

        // Disconnect in the middle of a message.
        let mut half = Client::negotiated(&p);
        half.send(r#"{"execute":"device_add","arguments":{"driver":"nvd"#);
        drop(half);
    });
    // Meanwhile the good client keeps working.
    for i in 0..200 {
        let r = good.reply(&format!(
            r#"{{"execute":"query-memory-size-summary","id":{i}}}"#
        ));
        assert_eq!(
            r,
            format!(
                r#"{{"return": {{"base-memory": 4294967296, "plugged-memory": 0}}, "id": {i}}}"#
            )
        );
    }
    bad.join().unwrap();
    assert_eq!(
        good.reply(r#"{"execute":"query-name","id":"end"}"#),
        r#"{"return": {"name": "fake"}, "id": "end"}"#
    );
    drop(good);
    wait_for(|| server.client_count() == 0);
    server.shutdown();
}

#[test]
fn events_reach_negotiated_clients_only() {
    let (_, server, path) = start("events");
    let mut a = Client::negotiated(&path);
    let mut b = Client::connect(&path);
    wait_for(|| server.client_count() == 2);
    // `stop` makes the fake VMM emit STOP to everyone negotiated, before the reply.
    assert_eq!(
        a.cmd(r#"{"execute":"system_powerdown"}"#)
            .split("\"timestamp\"")
            .next()
            .unwrap(),
        r#"{"event": "POWERDOWN", "#
    );
    assert_eq!(a.line(), r#"{"return": {}}"#);
    server.emit(Event::device_deleted(
        Some("nv1"),
        "/machine/peripheral/nv1",
    ));
    let e = a.line();
    assert!(e.starts_with(r#"{"event": "DEVICE_DELETED", "data": {"device": "nv1", "path": "/machine/peripheral/nv1"}, "timestamp": {"seconds": "#), "{e}");
    // B got nothing: its next line is the reply to its own command.
    assert!(
        b.cmd(r#"{"execute":"stop"}"#)
            .contains("Expecting capabilities negotiation")
    );
    assert_eq!(
        b.cmd(r#"{"execute":"qmp_capabilities"}"#),
        r#"{"return": {}}"#
    );
    server.emit(Event::resume());
    assert!(a.line().starts_with(r#"{"event": "RESUME", "timestamp": "#));
    assert!(b.line().starts_with(r#"{"event": "RESUME", "timestamp": "#));
    server.shutdown();
}

#[test]
fn a_client_that_never_reads_is_dropped() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (_, server, path) = start("slow");
    let mut good = Client::negotiated(&path);
    let slow = Client::negotiated(&path);
    wait_for(|| server.client_count() == 2);
    const N: usize = 20_000;
    let seen = Arc::new(AtomicUsize::new(0));
    let seen2 = Arc::clone(&seen);
    let reader = thread::spawn(move || {
        for _ in 0..N {
            assert!(good.line().starts_with(r#"{"event": "POWERDOWN""#));
            seen2.fetch_add(1, Ordering::Relaxed);
        }
        good
    });
    // Emit in bursts a reading client keeps up with; the one that never reads overflows.
    for batch in 0..N / 500 {
        for _ in 0..500 {
            server.emit(Event::powerdown());
        }
        wait_for(|| seen.load(Ordering::Relaxed) >= batch * 500);
    }
    let _good = reader.join().unwrap();
    wait_for(|| server.client_count() == 1);
    drop(slow);
    server.shutdown();
}

#[test]
fn tcp_and_hmp_listeners() {
    let vm = Arc::new(fake::FakeVm::new());
    let server = QmpServer::new(vm);
    server
        .listen(Endpoint::Tcp("127.0.0.1".into(), 0), true, false)
        .unwrap();
    let port = server.tcp_ports()[0];
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    assert!(l.starts_with(r#"{"QMP""#));

    let hpath = sock_path("hmp");
    server
        .listen_hmp(Endpoint::Unix(hpath.clone()), true, false)
        .unwrap();
    let mut h = UnixStream::connect(&hpath).unwrap();
    h.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    h.write_all(b"info status\r\n").unwrap();
    let mut hr = BufReader::new(h.try_clone().unwrap());
    let mut banner = String::new();
    hr.read_line(&mut banner).unwrap();
    assert_eq!(
        banner,
        "QEMU 10.2.0 monitor - type 'help' for more information\r\n"
    );
    let mut status = String::new();
    hr.read_line(&mut status).unwrap();
    assert_eq!(status, "(qemu) VM status: running\r\n");
    server.shutdown();
}

#[test]
fn every_server_thread_runs_the_thread_hook_first() {
    let vm = Arc::new(fake::FakeVm::new());
    let server = QmpServer::new(vm.clone());
    let _ = vm.server.set(server.clone());
    let seen = Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let s2 = seen.clone();
    server.set_thread_init(Arc::new(move |name: &str| {
        let actual = thread::current().name().unwrap_or("").to_string();
        s2.lock().unwrap().push((name.to_string(), actual));
    }));
    let path = sock_path("hook");
    server
        .listen(Endpoint::Unix(path.clone()), true, false)
        .unwrap();
    let mut c = Client::negotiated(&path);
    assert!(c.cmd(r#"{"execute":"query-status"}"#).contains("return"));
    wait_for(|| seen.lock().unwrap().len() >= 3);
    let mut names: Vec<(String, String)> = seen.lock().unwrap().clone();
    names.sort();
    for (given, actual) in &names {
        assert_eq!(given, actual, "the hook runs on the thread it names");
    }
    let given: Vec<&str> = names.iter().map(|(g, _)| g.as_str()).collect();
    assert_eq!(
        given,
        ["monitor-accept", "monitor-client", "monitor-writer"],
        "{names:?}"
    );
    server.shutdown();
}
