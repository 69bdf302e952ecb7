//! The sandbox (`-sandbox on`, the default): every pmvm thread runs under a seccomp filter
//! (`Seccomp: 2` in /proc; the VNC server's threads included), the monitor still works under it (queries, hotplug, a guest reset
//! that rebuilds the VM, `quit`), and `-sandbox off` leaves every thread unfiltered. Uses the
//! tiny PVH guest of tiny_boot.rs, kept paused (`-S`), and needs /dev/kvm and gcc.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;

fn tiny_elf(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/tiny/tiny.S");
    support::assemble_pvh(&src, dir.join("tiny.elf"))
}

struct Qmp {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Qmp {
    fn connect(path: &Path, child: &mut Child) -> Qmp {
        let s = support::wait_for_socket(path, child, Duration::from_secs(20));
        let mut q = Qmp {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        };
        let greeting = q.line();
        assert!(greeting.contains("\"QMP\""), "{greeting}");
        q.cmd(r#"{"execute":"qmp_capabilities"}"#);
        q
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).expect("a QMP line");
        assert!(!l.is_empty(), "QMP connection closed");
        l
    }

    /// Sends `cmd` and returns its `return` line (events are skipped); fails on an error.
    fn cmd(&mut self, cmd: &str) -> String {
        self.w.write_all(format!("{cmd}\n").as_bytes()).unwrap();
        loop {
            let l = self.line();
            if l.contains("\"return\"") {
                return l;
            }
            assert!(!l.contains("\"error\""), "{cmd}: {l}");
        }
    }
}

/// `(thread name, Seccomp mode)` of every thread of `pid`.
fn seccomp_modes(pid: u32) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let t = t.unwrap().path();
        let (Ok(comm), Ok(status)) = (
            std::fs::read_to_string(t.join("comm")),
            std::fs::read_to_string(t.join("status")),
        ) else {
            continue; // the thread just ended
        };
        let mode = status
            .lines()
            .find_map(|l| l.strip_prefix("Seccomp:"))
            .unwrap_or("?")
            .trim()
            .to_string();
        out.push((comm.trim().to_string(), mode));
    }
    out.sort();
    out
}

/// Threads pmvm must have by now: the thread count settles once the QMP client is served.
fn wait_threads(pid: u32, want: &[&str]) -> Vec<(String, String)> {
    let t = Instant::now();
    loop {
        let modes = seccomp_modes(pid);
        if want.iter().all(|w| modes.iter().any(|(n, _)| n == w)) {
            return modes;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "threads {want:?} not all there: {modes:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts pmvm paused with a QMP socket, an NVDIMM, a virtio disk, the serial console on
/// stdio (so the stdin reader runs) and a VNC server on a Unix socket with one viewer
/// connected (so its listener, reader and writer threads run); returns it with its scratch
/// directory, QMP client and VNC connection.
fn start(name: &str, extra: &[&str]) -> (Child, PathBuf, Qmp, UnixStream) {
    let dir = std::env::temp_dir().join(format!("pmvm-sandbox-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let elf = tiny_elf(&dir);
    let disk = dir.join("disk.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let sock = dir.join("qmp.sock");
    let vnc = dir.join("vnc.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pmvm"))
        .args(["-machine", "pc,nvdimm=on", "-m", "64M,slots=2,maxmem=1G"])
        .arg("-object")
        .arg(format!(
            "memory-backend-file,id=m,share=on,mem-path={},size=64M",
            dir.join("nv.img").display()
        ))
        .args(["-device", "nvdimm,id=n,memdev=m"])
        .arg("-drive")
        .arg(format!("file={},format=raw,if=virtio", disk.display()))
        .arg("-kernel")
        .arg(&elf)
        .args([
            "-netdev",
            "user,id=n0",
            "-device",
            "virtio-net-device,netdev=n0",
        ])
        .args(["-nographic", "-S", "-qmp"])
        .arg(format!("unix:{},server,wait=off", sock.display()))
        .arg("-vnc")
        .arg(format!("unix:{}", vnc.display()))
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pmvm starts");
    let q = Qmp::connect(&sock, &mut child);
    // The VNC server starts before the monitors; still, wait for its socket.
    let mut v = support::wait_for_socket(&vnc, &mut child, Duration::from_secs(20));
    let mut version = [0u8; 12];
    std::io::Read::read_exact(&mut v, &mut version).expect("the RFB greeting");
    assert_eq!(&version, b"RFB 003.008\n");
    (child, dir, q, v)
}

fn quit(mut child: Child, mut q: Qmp, dir: &Path) -> String {
    q.cmd(r#"{"execute":"quit"}"#);
    drop(q);
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "pmvm: {stderr}");
    let _ = std::fs::remove_dir_all(dir);
    stderr
}

const THREADS: [&str; 13] = [
    "pmvm",
    "signals",
    "stdin",
    "monitor-accept",
    "monitor-client",
    "monitor-writer",
    "vcpu0",
    "io-virtio0",
    "io-n0",
    "net-n0",
    "vnc-listen",
    "vnc-client-1",
    "vnc-write-1",
];

#[test]
fn every_thread_is_filtered_and_the_monitor_works_under_the_filters() {
    let (child, dir, mut q, _vnc) = start("on", &[]);
    let pid = child.id();
    let modes = wait_threads(pid, &THREADS);
    for (name, mode) in &modes {
        assert_eq!(mode, "2", "thread {name} is not filtered: {modes:?}");
    }
    // Queries, a vCPU register dump, hotplug (a backend opened and mapped, a memory slot added).
    assert!(q.cmd(r#"{"execute":"query-block"}"#).contains("virtio0"));
    assert!(
        q.cmd(
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"info registers"}}"#
        )
        .contains("RIP=")
    );
    let hp = dir.join("hp.img");
    q.cmd(&format!(
        r#"{{"execute":"object-add","arguments":{{"qom-type":"memory-backend-file","id":"hp","mem-path":"{}","size":67108864,"share":true}}}}"#,
        hp.display()
    ));
    q.cmd(r#"{"execute":"device_add","arguments":{"driver":"nvdimm","id":"hpn","memdev":"hp"}}"#);
    // A reset rebuilds the VM on the main thread, under the main filter, with new vCPU and
    // I/O threads that narrow it again.
    q.cmd(r#"{"execute":"system_reset"}"#);
    // The rebuilt VM comes back paused (-S), once the main thread has built it.
    let t = Instant::now();
    loop {
        let st = q.cmd(r#"{"execute":"query-status"}"#);
        if st.contains("paused") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "after the reset: {st}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let modes = wait_threads(pid, &THREADS);
    for (name, mode) in &modes {
        assert_eq!(
            mode, "2",
            "after the reset, {name} is not filtered: {modes:?}"
        );
    }
    let stderr = quit(child, q, &dir);
    assert!(!stderr.contains("pmvm: sandbox:"), "{stderr}");
}

#[test]
fn sandbox_off_leaves_threads_unfiltered() {
    let (child, dir, q, _vnc) = start("off", &["-sandbox", "off"]);
    let modes = wait_threads(child.id(), &THREADS);
    for (name, mode) in &modes {
        assert_eq!(mode, "0", "thread {name} is filtered: {modes:?}");
    }
    quit(child, q, &dir);
}
