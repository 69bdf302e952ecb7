//! The real server on 127.0.0.1 and a Unix socket, driven by a tiny RFB client written here.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rfb::auth::vnc_auth_response;
use rfb::server::ServerOptions;
use rfb::websocket::{base64, frame_header};
use rfb::{Display, Framebuffer, KeyEvent, Listen, Rect, Scancode, VncServer};

#[derive(Default)]
struct TestDisplay {
    fb: Mutex<Option<Framebuffer>>,
    keys: Mutex<Vec<KeyEvent>>,
    pointer: Mutex<Vec<(u8, u16, u16)>>,
    switches: Mutex<Vec<u8>>,
}

impl TestDisplay {
    fn new(w: u16, h: u16) -> Arc<TestDisplay> {
        let d = TestDisplay::default();
        *d.fb.lock().unwrap() = Some(Framebuffer::new(w, h));
        Arc::new(d)
    }
}

impl Display for TestDisplay {
    fn with_framebuffer(&self, f: &mut dyn FnMut(&Framebuffer)) {
        f(self.fb.lock().unwrap().as_ref().unwrap())
    }
    fn key_event(&self, ev: KeyEvent) {
        self.keys.lock().unwrap().push(ev);
    }
    fn pointer_event(&self, b: u8, x: u16, y: u16) {
        self.pointer.lock().unwrap().push((b, x, y));
    }
    fn console_switch(&self, n: u8) {
        self.switches.lock().unwrap().push(n);
    }
}

fn read_n(s: &mut impl Read, n: usize) -> Vec<u8> {
    let mut v = vec![0; n];
    s.read_exact(&mut v).unwrap();
    v
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Does the 3.8 handshake; returns (width, height).
fn handshake(s: &mut (impl Read + Write), password: Option<&str>) -> (u16, u16) {
    assert_eq!(read_n(s, 12), b"RFB 003.008\n");
    s.write_all(b"RFB 003.008\n").unwrap();
    let types = read_n(s, 2);
    match password {
        None => {
            assert_eq!(types, [1, 1]);
            s.write_all(&[1]).unwrap();
        }
        Some(pw) => {
            assert_eq!(types, [1, 2]);
            s.write_all(&[2]).unwrap();
            let ch: [u8; 16] = read_n(s, 16).try_into().unwrap();
            s.write_all(&vnc_auth_response(pw.as_bytes(), &ch)).unwrap();
        }
    }
    assert_eq!(read_n(s, 4), [0, 0, 0, 0], "SecurityResult");
    s.write_all(&[1]).unwrap();
    let init = read_n(s, 24);
    let name = read_n(s, be32(&init[20..]) as usize);
    assert_eq!(name, b"pmvm");
    (
        u16::from_be_bytes([init[0], init[1]]),
        u16::from_be_bytes([init[2], init[3]]),
    )
}

fn request(s: &mut impl Write, incremental: bool, r: Rect) {
    let mut m = vec![3, u8::from(incremental)];
    for v in [r.x, r.y, r.w, r.h] {
        m.extend_from_slice(&v.to_be_bytes());
    }
    s.write_all(&m).unwrap();
}

/// Reads one FramebufferUpdate of Raw 32 bpp rectangles.
fn read_update(s: &mut impl Read) -> Vec<(Rect, Vec<u8>)> {
    let h = read_n(s, 4);
    assert_eq!(h[0], 0, "message type");
    let n = u16::from_be_bytes([h[2], h[3]]);
    (0..n)
        .map(|_| {
            let r = read_n(s, 12);
            let g = |i: usize| u16::from_be_bytes([r[i], r[i + 1]]);
            let rect = Rect::new(g(0), g(2), g(4), g(6));
            assert_eq!(be32(&r[8..]), 0, "Raw");
            (rect, read_n(s, rect.w as usize * rect.h as usize * 4))
        })
        .collect()
}

fn wait_for(mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(5), "timed out");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn tcp_server(d: &Arc<TestDisplay>, opts: ServerOptions) -> (VncServer, u16) {
    let server = VncServer::new(d.clone(), opts);
    let Listen::Tcp(_, port) = server.listen(Listen::Tcp("127.0.0.1".into(), 0)).unwrap() else {
        unreachable!()
    };
    (server, port)
}

#[test]
fn tcp_updates_keys_and_console_switch() {
    let d = TestDisplay::new(40, 20);
    d.fb.lock()
        .unwrap()
        .as_mut()
        .unwrap()
        .set_pixel(3, 4, 0x00abcdef);
    let (server, port) = tcp_server(&d, ServerOptions::default());
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(handshake(&mut c, None), (40, 20));

    request(&mut c, false, Rect::new(0, 0, 40, 20));
    let u = read_update(&mut c);
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].0, Rect::new(0, 0, 40, 20));
    let i = (4 * 40 + 3) * 4;
    assert_eq!(&u[0].1[i..i + 4], [0xef, 0xcd, 0xab, 0]);

    // Change one pixel; the incremental update carries only its tile.
    request(&mut c, true, Rect::new(0, 0, 40, 20));
    std::thread::sleep(Duration::from_millis(50));
    d.fb.lock()
        .unwrap()
        .as_mut()
        .unwrap()
        .set_pixel(35, 19, 0x00ff0000);
    server.notify();
    let u = read_update(&mut c);
    assert_eq!(
        u.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![Rect::new(32, 16, 8, 4)]
    );

    // Keys: 'a', then Ctrl-Alt-2 (switch, digit swallowed), then a pointer event.
    let key = |down: bool, ks: u32| {
        let mut m = vec![4, u8::from(down), 0, 0];
        m.extend(ks.to_be_bytes());
        m
    };
    let mut m = key(true, 0x61);
    for (down, ks) in [(true, 0xffe3), (true, 0xffe9), (true, 0x32), (false, 0x32)] {
        m.extend(key(down, ks));
    }
    m.extend([5, 1, 0, 7, 0, 9]);
    c.write_all(&m).unwrap();
    wait_for(|| !d.pointer.lock().unwrap().is_empty());
    let keys = d.keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert_eq!(
        keys[0].scancode,
        Some(Scancode {
            e0: false,
            code: 0x1e
        })
    );
    assert_eq!(*d.switches.lock().unwrap(), vec![2]);
    assert_eq!(*d.pointer.lock().unwrap(), vec![(1, 7, 9)]);

    let clients = server.clients();
    assert_eq!(clients.len(), 1);
    assert_eq!(
        (clients[0].host.as_str(), clients[0].family, clients[0].auth),
        ("127.0.0.1", "ipv4", "none")
    );
    assert!(clients[0].ready);

    // Bell and clipboard reach the client.
    server.bell();
    assert_eq!(read_n(&mut c, 1), [2]);
    server.server_cut_text(b"hi");
    assert_eq!(read_n(&mut c, 10), [3, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);

    drop(c);
    wait_for(|| server.clients().is_empty());
    server.shutdown();
}

#[test]
fn password_auth_over_tcp() {
    let d = TestDisplay::new(8, 8);
    let opts = ServerOptions {
        password_required: true,
        ..ServerOptions::default()
    };
    let (server, port) = tcp_server(&d, opts);

    // password=on without a password: refused with a reason.
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    read_n(&mut c, 12);
    c.write_all(b"RFB 003.008\n").unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert_eq!(rest[0], 0);
    assert_eq!(&rest[5..], b"no VNC password is set");

    server.set_password(Some("secret"));
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(handshake(&mut c, Some("secret")), (8, 8));
    let ready: Vec<_> = server.clients().into_iter().filter(|c| c.ready).collect();
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].auth, "vnc");

    let mut c2 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    read_n(&mut c2, 12);
    c2.write_all(b"RFB 003.008\n\x02").unwrap();
    read_n(&mut c2, 2 + 16);
    c2.write_all(&[0; 16]).unwrap();
    let mut rest = Vec::new();
    c2.read_to_end(&mut rest).unwrap();
    assert_eq!(&rest[..4], [0, 0, 0, 1]);
    assert_eq!(&rest[8..], b"authentication failed");
    server.shutdown();
}

#[test]
fn unix_socket_and_a_client_that_never_reads() {
    let d = TestDisplay::new(1024, 768);
    let dir = std::env::temp_dir().join(format!("rfb-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vnc.sock");
    let server = VncServer::new(d.clone(), ServerOptions::default());
    server.listen(Listen::Unix(path.clone())).unwrap();

    // The sleeper asks for many full updates (3 MiB each) and never reads them.
    let mut sleeper = UnixStream::connect(&path).unwrap();
    handshake(&mut sleeper, None);
    for _ in 0..50 {
        request(&mut sleeper, false, Rect::new(0, 0, 1024, 768));
    }
    // Others are unaffected.
    let mut c = UnixStream::connect(&path).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    handshake(&mut c, None);
    for i in 0..5 {
        d.fb.lock()
            .unwrap()
            .as_mut()
            .unwrap()
            .set_pixel(i, i, 0xffffff);
        request(&mut c, i > 0, Rect::new(0, 0, 1024, 768));
        server.notify();
        assert!(!read_update(&mut c).is_empty());
    }
    assert_eq!(server.clients().len(), 2);
    assert_eq!(server.clients()[0].family, "unix");
    server.shutdown();
    assert!(!path.exists());
    drop(sleeper);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn connection_limit_and_exclusive_clients() {
    let d = TestDisplay::new(8, 8);
    let opts = ServerOptions {
        connections: 1,
        ..ServerOptions::default()
    };
    let (server, port) = tcp_server(&d, opts);
    let mut a = TcpStream::connect(("127.0.0.1", port)).unwrap();
    handshake(&mut a, None);
    let mut b = TcpStream::connect(("127.0.0.1", port)).unwrap();
    read_n(&mut b, 12);
    b.write_all(b"RFB 003.008\n").unwrap();
    let mut rest = Vec::new();
    b.read_to_end(&mut rest).unwrap();
    assert_eq!(&rest[5..], b"too many VNC clients");
    server.shutdown();

    // Default share policy: an exclusive client disconnects the others.
    let (server, port) = tcp_server(&d, ServerOptions::default());
    let mut a = TcpStream::connect(("127.0.0.1", port)).unwrap();
    handshake(&mut a, None);
    let mut b = TcpStream::connect(("127.0.0.1", port)).unwrap();
    read_n(&mut b, 12);
    b.write_all(b"RFB 003.008\n\x01").unwrap();
    read_n(&mut b, 6);
    b.write_all(&[0]).unwrap(); // not shared
    read_n(&mut b, 28);
    let mut rest = Vec::new();
    a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(
        a.read_to_end(&mut rest).unwrap(),
        0,
        "first client was disconnected"
    );
    server.shutdown();
}

/// A client speaking through WebSocket frames, as noVNC does.
struct WsClient(TcpStream);

impl Read for WsClient {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Test-only: assumes the server sends frames we consume whole, header by header.
        let h = read_n(&mut self.0, 2);
        assert_eq!(h[0], 0x82);
        let len = match h[1] {
            126 => u16::from_be_bytes(read_n(&mut self.0, 2).try_into().unwrap()) as usize,
            127 => u64::from_be_bytes(read_n(&mut self.0, 8).try_into().unwrap()) as usize,
            n => n as usize,
        };
        assert!(len <= buf.len(), "test client buffer too small");
        self.0.read_exact(&mut buf[..len])?;
        Ok(len)
    }
}

impl Write for WsClient {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut f = frame_header(buf.len());
        f[1] |= 0x80;
        f.extend([9, 8, 7, 6]);
        f.extend(buf.iter().enumerate().map(|(i, b)| b ^ [9, 8, 7, 6][i % 4]));
        self.0.write_all(&f)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn websocket_listener() {
    let d = TestDisplay::new(4, 4);
    let server = VncServer::new(d.clone(), ServerOptions::default());
    let Listen::Tcp(_, port) = server
        .listen_websocket(Listen::Tcp("127.0.0.1".into(), 0))
        .unwrap()
    else {
        unreachable!()
    };
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let key = base64(b"0123456789abcdef");
    write!(
        s,
        "GET /websockify HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Protocol: binary\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.extend(read_n(&mut s, 1));
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains(&format!(
        "Sec-WebSocket-Accept: {}",
        rfb::websocket::accept_key(&key)
    )));
    let mut c = WsClient(s);
    // Frame-at-a-time reads: version, types, result, init, name arrive as separate writes.
    let mut buf = [0u8; 256];
    let n = c.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"RFB 003.008\n");
    c.write_all(b"RFB 003.008\n").unwrap();
    let n = c.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], [1, 1]);
    c.write_all(&[1]).unwrap();
    let n = c.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], [0, 0, 0, 0]);
    c.write_all(&[1]).unwrap();
    let n = c.read(&mut buf).unwrap();
    assert_eq!(n, 24 + 4);
    assert_eq!(&buf[..4], [0, 4, 0, 4]);
    server.shutdown();
}

#[test]
fn every_server_thread_runs_the_thread_init_hook() {
    let d = TestDisplay::new(16, 16);
    let server = VncServer::new(d.clone(), ServerOptions::default());
    type Seen = Vec<(String, Option<String>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let s2 = seen.clone();
    server.set_thread_init(Arc::new(move |name: &str| {
        let t = std::thread::current().name().map(str::to_string);
        s2.lock().unwrap().push((name.to_string(), t));
    }));
    let Listen::Tcp(_, port) = server.listen(Listen::Tcp("127.0.0.1".into(), 0)).unwrap() else {
        unreachable!()
    };
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    handshake(&mut c, None);
    wait_for(|| seen.lock().unwrap().len() >= 3);
    let seen = seen.lock().unwrap().clone();
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    for want in ["vnc-listen", "vnc-client", "vnc-write"] {
        assert!(names.contains(&want), "{want} missing: {seen:?}");
    }
    // The hook runs inside the thread it names.
    for (n, t) in &seen {
        assert!(t.as_deref().unwrap_or("").starts_with(n), "{seen:?}");
    }
    server.shutdown();
}
