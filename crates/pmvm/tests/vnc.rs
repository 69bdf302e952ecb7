//! `-vnc` end to end on the host: pmvm runs a tiny PVH guest that echoes its serial input,
//! with the serial port on the VNC text console (QEMU's default `vc` with `-vnc`), and a small
//! RFB client written here reads the screen and types. Text is found without OCR: the expected
//! string is rendered by `rfb::TextScreen` (pmvm's own renderer) and searched for, cell by
//! cell, in the pixels the client received. Needs /dev/kvm and gcc.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rfb::TextScreen;

mod support;

/// A guest that prints a marker and then echoes what the UART receives (tests/tiny/echo.S).
const ECHO_GUEST: &str = include_str!("../../../tests/tiny/echo.S");

fn echo_elf(dir: &Path) -> PathBuf {
    let src = dir.join("echo.S");
    std::fs::write(&src, ECHO_GUEST).unwrap();
    support::assemble_pvh(&src, dir.join("echo.elf"))
}

/// A minimal RFB 3.8 client with a local copy of the screen.
struct Client {
    s: UnixStream,
    w: usize,
    h: usize,
    pixels: Vec<u32>,
}

fn read_n(s: &mut impl Read, n: usize) -> Vec<u8> {
    let mut v = vec![0; n];
    s.read_exact(&mut v).expect("the VNC server answers");
    v
}

fn be16(b: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([b[0], b[1]]))
}

const CONTROL_L: u32 = 0xffe3;
const ALT_L: u32 = 0xffe9;
const RETURN: u32 = 0xff0d;

impl Client {
    fn connect(path: &Path, child: &mut Child) -> Client {
        let mut s = support::wait_for_socket(path, child, Duration::from_secs(10));
        assert_eq!(read_n(&mut s, 12), b"RFB 003.008\n");
        s.write_all(b"RFB 003.008\n").unwrap();
        assert_eq!(read_n(&mut s, 2), [1, 1], "one security type: None");
        s.write_all(&[1]).unwrap();
        assert_eq!(read_n(&mut s, 4), [0, 0, 0, 0], "SecurityResult");
        s.write_all(&[1]).unwrap(); // shared
        let init = read_n(&mut s, 24);
        let (w, h) = (be16(&init[0..]), be16(&init[2..]));
        assert_eq!(
            (init[4], init[6], init[7]),
            (32, 0, 1),
            "32 bpp little-endian true colour"
        );
        let name_len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]) as usize;
        read_n(&mut s, name_len);
        Client {
            s,
            w,
            h,
            pixels: vec![0; w * h],
        }
    }

    /// Requests an update and applies it; returns the area it covered, in pixels.
    fn update(&mut self, incremental: bool) -> usize {
        let mut m = vec![3, u8::from(incremental), 0, 0, 0, 0];
        m.extend_from_slice(&(self.w as u16).to_be_bytes());
        m.extend_from_slice(&(self.h as u16).to_be_bytes());
        self.s.write_all(&m).unwrap();
        loop {
            let head = read_n(&mut self.s, 1);
            match head[0] {
                0 => break,
                2 => continue, // Bell
                3 => {
                    let h = read_n(&mut self.s, 7);
                    let n = u32::from_be_bytes([h[3], h[4], h[5], h[6]]) as usize;
                    read_n(&mut self.s, n);
                }
                t => panic!("unexpected server message {t}"),
            }
        }
        let h = read_n(&mut self.s, 3);
        let mut area = 0;
        for _ in 0..be16(&h[1..]) {
            let r = read_n(&mut self.s, 12);
            let (x, y, w, hh) = (be16(&r[0..]), be16(&r[2..]), be16(&r[4..]), be16(&r[6..]));
            assert_eq!(&r[8..], [0, 0, 0, 0], "Raw encoding");
            let data = read_n(&mut self.s, w * hh * 4);
            for row in 0..hh {
                for col in 0..w {
                    let i = (row * w + col) * 4;
                    let px = u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
                    self.pixels[(y + row) * self.w + x + col] = px & 0xff_ffff;
                }
            }
            area += w * hh;
        }
        area
    }

    fn key(&mut self, keysym: u32, down: bool) {
        let mut m = vec![4, u8::from(down), 0, 0];
        m.extend_from_slice(&keysym.to_be_bytes());
        self.s.write_all(&m).unwrap();
    }

    fn tap(&mut self, keysym: u32) {
        self.key(keysym, true);
        self.key(keysym, false);
    }

    fn type_line(&mut self, text: &str) {
        for c in text.chars() {
            self.tap(c as u32);
        }
        self.tap(RETURN);
    }

    fn console(&mut self, n: u8) {
        self.key(CONTROL_L, true);
        self.key(ALT_L, true);
        self.tap(u32::from(b'0' + n));
        self.key(ALT_L, false);
        self.key(CONTROL_L, false);
    }

    /// Whether `text` appears on the screen, at a cell boundary, as `TextScreen` draws it.
    fn shows(&self, text: &str) -> bool {
        let cols = text.chars().count() as u16;
        let mut reference = TextScreen::new(cols + 1, 1);
        reference.feed(text.as_bytes());
        let fb = reference.framebuffer();
        let (cw, ch) = (
            usize::from(rfb::text::CELL_W),
            usize::from(rfb::text::CELL_H),
        );
        let width = usize::from(cols) * cw;
        for cy in 0..self.h / ch {
            for cx in 0..(self.w / cw).saturating_sub(usize::from(cols) - 1) {
                let (x0, y0) = (cx * cw, cy * ch);
                let same = (0..ch).all(|y| {
                    let row = fb.row(0, y as u16, width as u16);
                    let off = (y0 + y) * self.w + x0;
                    row.iter()
                        .zip(&self.pixels[off..off + width])
                        .all(|(a, b)| a & 0xff_ffff == *b)
                });
                if same {
                    return true;
                }
            }
        }
        false
    }

    /// Writes the screen as a binary PPM (for a failing test's report).
    fn dump(&self, path: &Path) {
        let mut out = format!("P6\n{} {}\n255\n", self.w, self.h).into_bytes();
        for p in &self.pixels {
            out.extend_from_slice(&[(p >> 16) as u8, (p >> 8) as u8, *p as u8]);
        }
        let _ = std::fs::write(path, out);
    }

    /// Polls the screen until `text` shows up.
    fn wait_for(&mut self, text: &str, child: &mut Child) {
        let t = Instant::now();
        loop {
            self.update(false);
            if self.shows(text) {
                return;
            }
            if let Some(st) = child.try_wait().unwrap() {
                panic!("pmvm exited with {st} while waiting for {text:?} on the screen");
            }
            if t.elapsed() > Duration::from_secs(20) {
                let shot =
                    std::env::temp_dir().join(format!("pmvm-vnc-{}.ppm", std::process::id()));
                self.dump(&shot);
                panic!(
                    "{text:?} never appeared on the VNC screen (screen: {})",
                    shot.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn vnc_shows_serial_text_takes_keys_and_runs_the_monitor_on_ctrl_alt_2() {
    assert!(Path::new("/dev/kvm").exists(), "/dev/kvm is needed");
    let dir = std::env::temp_dir().join(format!("pmvm-vnc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let elf = echo_elf(&dir);
    let sock = dir.join("vnc.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pmvm"))
        .args(["-machine", "pc,nvdimm=on", "-m", "64M,slots=2,maxmem=1G"])
        .arg("-object")
        .arg(format!(
            "memory-backend-file,id=m,share=on,mem-path={},size=64M",
            dir.join("nv.img").display()
        ))
        .args(["-device", "nvdimm,id=nv0,memdev=m", "-S", "-kernel"])
        .arg(&elf)
        .arg("-vnc")
        .arg(format!("unix:{}", sock.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pmvm starts");
    let mut c = Client::connect(&sock, &mut child);
    assert_eq!((c.w, c.h), (640, 400), "80x25 text console");

    // Console 2: the monitor, paused by -S.
    c.console(2);
    c.wait_for("(qemu) ", &mut child);
    c.type_line("info status");
    c.wait_for("VM status: paused", &mut child);
    // Only the tiles that change are sent: one typed character is a small update.
    // (An incremental request is answered once something changed.)
    c.tap(u32::from(b'x'));
    let area = c.update(true);
    assert!(
        area > 0 && area <= 4 * 16 * 16,
        "a typed character updated {area} pixels"
    );
    c.tap(0xff08); // BackSpace
    c.type_line("info memory-devices");
    c.wait_for("Memory device [nvdimm]: \"nv0\"", &mut child);
    // Hot plug from the VNC monitor, as the seed's users do (runs under the sandbox).
    c.type_line(&format!(
        "object_add memory-backend-file,id=hp,share=on,mem-path={},size=64M",
        dir.join("hp.img").display()
    ));
    c.type_line("device_add nvdimm,id=nv1,memdev=hp");
    c.type_line("info memory-devices");
    c.wait_for("Memory device [nvdimm]: \"nv1\"", &mut child);
    c.type_line("info vnc");
    c.wait_for("  Auth: none (Sub: none)", &mut child);
    c.wait_for("  Client: : (unix)", &mut child);
    // A password needs password=on, as in QEMU 7.2.
    c.type_line("set_password vnc s3cret");
    c.wait_for("Error: Could not set password", &mut child);
    c.type_line("cont");
    c.type_line("info status");
    c.wait_for("VM status: running", &mut child);

    // Console 1: the guest's screen, i.e. its serial text for now; keys go to the UART.
    c.console(1);
    c.wait_for("PMVM-VNC-ECHO ready", &mut child);
    c.type_line("hello vnc");
    c.wait_for("hello vnc", &mut child);
    // Console 3: the serial console, the same text.
    c.console(3);
    c.wait_for("hello vnc", &mut child);

    // quit from the monitor console ends pmvm cleanly and removes the socket.
    c.console(2);
    c.type_line("quit");
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "pmvm did not quit");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "pmvm: {status}: {err}");
    // -serial vc: the serial port goes to the VNC console only, not to stdout.
    assert!(!out.contains("PMVM-VNC-ECHO"), "serial on stdout: {out:?}");
    assert!(!sock.exists(), "the VNC socket is removed at exit");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn vnc_errors_name_the_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_pmvm"))
        .args(["-kernel", "/proc/self/exe", "-vnc", "localhost"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("pmvm: -vnc localhost: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn listening_beyond_loopback_without_a_password_warns() {
    assert!(Path::new("/dev/kvm").exists(), "/dev/kvm is needed");
    let dir = std::env::temp_dir().join(format!("pmvm-vnc-warn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let elf = echo_elf(&dir);
    // A display number unlikely to be taken; `to=` moves on if it is.
    let n = 3000 + std::process::id() % 20000;
    let mut child = Command::new(env!("CARGO_BIN_EXE_pmvm"))
        .args(["-m", "64M", "-S", "-serial", "none", "-kernel"])
        .arg(&elf)
        .arg("-vnc")
        .arg(format!(":{n},to={}", n + 50))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pmvm starts");
    let mut stderr = child.stderr.take().unwrap();
    let mut err = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&err).contains('\n') {
        match stderr.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => err.extend_from_slice(&buf[..k]),
        }
    }
    let _ = child.kill(); // the child we started, by its pid
    let _ = child.wait();
    let err = String::from_utf8_lossy(&err);
    assert!(
        err.contains("warning") && err.contains("no password") && err.contains("127.0.0.1"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends one QMP command on a negotiated connection and returns the reply line.
fn qmp(r: &mut impl std::io::BufRead, w: &mut impl Write, cmd: &str) -> String {
    w.write_all(format!("{cmd}\n").as_bytes()).unwrap();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        assert!(!l.is_empty(), "QMP closed");
        if l.contains("\"return\"") || l.contains("\"error\"") {
            return l;
        }
    }
}

#[test]
fn password_on_refuses_viewers_until_set_password_then_asks_for_it() {
    assert!(Path::new("/dev/kvm").exists(), "/dev/kvm is needed");
    let dir = std::env::temp_dir().join(format!("pmvm-vnc-pw-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let elf = echo_elf(&dir);
    let (vsock, qsock) = (dir.join("vnc.sock"), dir.join("qmp.sock"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_pmvm"))
        .args(["-m", "64M", "-S", "-kernel"])
        .arg(&elf)
        .arg("-vnc")
        .arg(format!("unix:{},password=on", vsock.display()))
        .arg("-qmp")
        .arg(format!("unix:{},server,wait=off", qsock.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pmvm starts");
    let mut connect = |p: &Path| support::wait_for_socket(p, &mut child, Duration::from_secs(10));
    let q = connect(&qsock);
    let mut qw = q.try_clone().unwrap();
    let mut qr = std::io::BufReader::new(q);
    let mut greeting = String::new();
    std::io::BufRead::read_line(&mut qr, &mut greeting).unwrap();
    qmp(&mut qr, &mut qw, r#"{"execute":"qmp_capabilities"}"#);
    let info = qmp(&mut qr, &mut qw, r#"{"execute":"query-vnc"}"#);
    assert!(
        info.contains(r#""enabled": true"#) && info.contains(r#""auth": "vnc""#),
        "{info}"
    );
    assert!(info.contains(r#""family": "unix""#), "{info}");

    // No password set yet: the viewer is refused, with the reason (RFB 3.8).
    let mut v = connect(&vsock);
    read_n(&mut v, 12);
    v.write_all(b"RFB 003.008\n").unwrap();
    assert_eq!(read_n(&mut v, 1), [0], "no security types");
    let n = u32::from_be_bytes(read_n(&mut v, 4).try_into().unwrap()) as usize;
    let reason = String::from_utf8(read_n(&mut v, n)).unwrap();
    assert!(reason.contains("password"), "{reason}");

    let spice = qmp(
        &mut qr,
        &mut qw,
        r#"{"execute":"set_password","arguments":{"protocol":"spice","password":"x"}}"#,
    );
    assert!(spice.contains("DeviceNotActive"), "{spice}");
    let ok = qmp(
        &mut qr,
        &mut qw,
        r#"{"execute":"set_password","arguments":{"protocol":"vnc","password":"s3cret"}}"#,
    );
    assert!(ok.contains(r#""return": {}"#), "{ok}");

    // Now VNC Authentication with that password lets a viewer in.
    let mut v = connect(&vsock);
    read_n(&mut v, 12);
    v.write_all(b"RFB 003.008\n").unwrap();
    assert_eq!(read_n(&mut v, 2), [1, 2], "VNC Authentication only");
    v.write_all(&[2]).unwrap();
    let ch: [u8; 16] = read_n(&mut v, 16).try_into().unwrap();
    v.write_all(&rfb::auth::vnc_auth_response(b"s3cret", &ch))
        .unwrap();
    assert_eq!(read_n(&mut v, 4), [0, 0, 0, 0], "SecurityResult ok");
    // `change vnc password` over human-monitor-command works too.
    let r = qmp(
        &mut qr,
        &mut qw,
        r#"{"execute":"human-monitor-command","arguments":{"command-line":"change vnc password other"}}"#,
    );
    assert!(r.contains(r#""return": """#), "{r}");
    qmp(&mut qr, &mut qw, r#"{"execute":"quit"}"#);
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}
