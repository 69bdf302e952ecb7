//! Unit tests of the VM manager: state files, sizing, constraints, command
//! line vs pmvm's own plan, start with a fake pmvm, stop/status over a fake
//! QMP server.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pmem_layout::{GIB, MIB, guest_nvdimm_size};
use proptest::prelude::*;

use super::*;

/// A fresh directory under the system temp dir (removed on drop).
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "pmctl-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Fixture {
    dir: TempDir,
    m: Manager,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = TempDir::new("vm");
        let empty = dir.0.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::write(dir.0.join("kernel"), b"not really a kernel").unwrap();
        let mut m = Manager::new(dir.0.join("state"));
        m.sysfs_root = empty.clone();
        m.proc_root = empty;
        m.stop_timeout = Duration::from_secs(5);
        Fixture { dir, m }
    }

    fn file(&self, name: &str, len: u64) -> PathBuf {
        let p = self.dir.0.join(name);
        std::fs::File::create(&p).unwrap().set_len(len).unwrap();
        p
    }

    /// The spec `create` uses: 512 MiB, 1 vCPU, the fixture's kernel, default slots, no room.
    fn spec(&self, name: &str) -> CreateSpec {
        CreateSpec {
            name: name.into(),
            memory: 512 * MIB,
            cpus: 1,
            kernel: Some(self.dir.0.join("kernel")),
            bios: None,
            initrd: None,
            append: "console=ttyS0".into(),
            slots: None,
            hotplug_room: 0,
            disks: Vec::new(),
            readonly_disks: Vec::new(),
        }
    }

    fn create(&self, name: &str) -> ops::VmView {
        self.m.create(self.spec(name)).unwrap()
    }

    fn fake_running(&self, name: &str) {
        let pid = std::process::id();
        std::fs::write(self.m.store.pidfile(name), format!("{pid}\n")).unwrap();
    }
}

#[test]
fn state_round_trip_and_atomic_replace() {
    let f = Fixture::new();
    let v = f.create("vm1");
    let def = f.m.store.load("vm1").unwrap();
    assert_eq!(def.name, "vm1");
    assert_eq!(def.memory, v.memory);
    assert_eq!(def.maxmem, def.memory, "no NVDIMMs: maxmem is the RAM size");
    let mut def2 = def.clone();
    def2.append = "console=ttyS0 quiet".into();
    def2.nvdimms.push(Assignment {
        path: "/dev/dax0.0".into(),
        kind: "device-dax".into(),
        namespace: Some("namespace0.0".into()),
        mode: Some("devdax".into()),
        host_size: 4 * GIB,
        host_align: Some(2 * MIB),
        crash_persistent: true,
        slot: 3,
        id: "nv3".into(),
        align: 2 * MIB,
        backend_size: 3970 * MIB,
        guest_size: 3968 * MIB,
        label_size: 128 << 10,
        label_offset: 3970 * MIB - (128 << 10),
    });
    let ino_before = std::fs::metadata(f.m.store.def_path("vm1")).unwrap().ino();
    f.m.store.save(&def2).unwrap();
    let ino_after = std::fs::metadata(f.m.store.def_path("vm1")).unwrap().ino();
    assert_ne!(
        ino_before, ino_after,
        "save must replace the file by rename, not rewrite it"
    );
    assert_eq!(f.m.store.load("vm1").unwrap(), def2);
    let leftovers: Vec<_> = std::fs::read_dir(f.m.store.dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    // A damaged file is reported, not silently skipped.
    std::fs::write(f.m.store.def_path("vm2"), b"{ not json").unwrap();
    let e = f.m.store.load("vm2").unwrap_err();
    assert!(matches!(e, VmError::BadState { .. }), "{e}");
    assert!(f.m.list().is_err());
}

#[test]
fn names_are_validated_and_not_paths() {
    let f = Fixture::new();
    for bad in ["", "../x", "a/b", "1abc", "a b", &"x".repeat(65)] {
        let e = f.m.show(bad).unwrap_err();
        assert!(matches!(e, VmError::BadName(_)), "{bad}: {e}");
    }
    assert!(matches!(
        f.m.show("nosuch").unwrap_err(),
        VmError::NotFound { .. }
    ));
    f.create("dup");
    let e =
        f.m.create(CreateSpec {
            name: "dup".into(),
            memory: GIB,
            cpus: 1,
            kernel: Some(f.dir.0.join("kernel")),
            bios: None,
            initrd: None,
            append: String::new(),
            slots: None,
            hotplug_room: 0,
            disks: Vec::new(),
            readonly_disks: Vec::new(),
        })
        .unwrap_err();
    assert!(matches!(e, VmError::Exists(_)), "{e}");
    let e =
        f.m.create(CreateSpec {
            name: "nokernel".into(),
            memory: GIB,
            cpus: 1,
            kernel: Some(f.dir.0.join("missing-kernel")),
            bios: None,
            initrd: None,
            append: String::new(),
            slots: None,
            hotplug_room: 0,
            disks: Vec::new(),
            readonly_disks: Vec::new(),
        })
        .unwrap_err();
    assert!(e.to_string().contains("-kernel"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn assignment_sizing_equals_pmem_layout(mib in 256u64..65536, extra in 0u64..(1 << 20)) {
        let f = Fixture::new();
        f.create("p");
        let len = mib * MIB + extra;
        let path = f.file("backing", len);
        let r = f.m.attach("p", &path, false).unwrap();
        let g = guest_nvdimm_size(len, Some(crate::size::DAX_FILE_DEFAULT_ALIGN)).unwrap();
        let a = &r.assignment;
        prop_assert_eq!(a.host_size, len);
        prop_assert_eq!(a.backend_size, g.backend_size);
        prop_assert_eq!(a.guest_size, g.pmem_size);
        prop_assert_eq!(a.label_size, 128 << 10);
        prop_assert_eq!(a.label_offset, g.label_offset);
        prop_assert_eq!(a.align, g.align);
        let def = f.m.store.load("p").unwrap();
        prop_assert_eq!(def.maxmem, def.memory + g.backend_size + cmdline::MAXMEM_HEADROOM);
    }
}

#[test]
fn double_assignment_is_refused() {
    let f = Fixture::new();
    f.create("a");
    f.create("b");
    let p = f.file("dev", GIB);
    f.m.attach("a", &p, false).unwrap();
    for vm in ["a", "b"] {
        let e = f.m.attach(vm, &p, false).unwrap_err();
        assert!(
            matches!(&e, VmError::AlreadyAssigned { vm: owner, .. } if owner == "a"),
            "{e}"
        );
        assert_eq!(e.status(), 409);
        assert!(e.to_string().contains("pmctl vm detach a"), "{e}");
    }
    // Another name of the same file is the same device.
    let link = f.dir.0.join("link");
    std::fs::hard_link(&p, &link).unwrap();
    assert!(matches!(
        f.m.attach("b", &link, false).unwrap_err(),
        VmError::AlreadyAssigned { .. }
    ));
    // After detaching, the other VM may have it.
    f.m.detach("a", &p).unwrap();
    f.m.attach("b", &p, false).unwrap();
}

#[test]
fn detach_delete_refused_while_running() {
    let f = Fixture::new();
    f.create("r");
    let p = f.file("dev", GIB);
    f.m.attach("r", &p, false).unwrap();
    f.fake_running("r");
    assert!(matches!(
        f.m.detach("r", &p).unwrap_err(),
        VmError::Running { .. }
    ));
    assert!(matches!(
        f.m.delete("r").unwrap_err(),
        VmError::Running { .. }
    ));
    assert!(matches!(
        f.m.start("r").unwrap_err(),
        VmError::AlreadyRunning { .. }
    ));
    assert!(f.m.show("r").unwrap().running);
    // A stale pidfile (dead pid) is not a running VM.
    std::fs::write(f.m.store.pidfile("r"), "2147483646\n").unwrap();
    assert!(!f.m.show("r").unwrap().running);
    let q = f.file("dev2", GIB);
    let r = f.m.attach("r", &q, false).unwrap();
    assert!(!r.live, "a stopped VM gets the device at its next start");
}

#[test]
fn too_small_missing_and_no_slot() {
    let f = Fixture::new();
    f.create("s");
    let small = f.file("small", 255 * MIB);
    let e = f.m.attach("s", &small, false).unwrap_err();
    let want = pmem_layout::guest_nvdimm_size(255 * MIB, Some(2 * MIB))
        .unwrap_err()
        .to_string();
    assert!(e.to_string().contains(&want), "{e}");
    assert_eq!(e.status(), 400);
    let e = f.m.attach("s", &f.dir.0.join("nofile"), false).unwrap_err();
    assert!(e.to_string().contains("a sized file is required"), "{e}");
    // One slot only.
    f.m.create(CreateSpec {
        name: "one".into(),
        memory: GIB,
        cpus: 1,
        kernel: Some(f.dir.0.join("kernel")),
        bios: None,
        initrd: None,
        append: String::new(),
        slots: Some(1),
        hotplug_room: 0,
        disks: Vec::new(),
        readonly_disks: Vec::new(),
    })
    .unwrap();
    f.m.attach("one", &f.file("d1", GIB), false).unwrap();
    let e = f.m.attach("one", &f.file("d2", GIB), false).unwrap_err();
    assert!(e.to_string().contains("slots"), "{e}");
    // Dry run saves nothing.
    let r = f.m.attach("s", &f.file("d3", GIB), true).unwrap();
    assert!(!r.saved);
    assert!(f.m.show("s").unwrap().nvdimms.is_empty());
}

#[test]
fn changed_device_refuses_start() {
    let f = Fixture::new();
    f.create("c");
    let p = f.file("dev", 2 * GIB);
    f.m.attach("c", &p, false).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(GIB)
        .unwrap();
    let e = f.m.start("c").unwrap_err();
    assert!(matches!(e, VmError::Changed { .. }), "{e}");
    let s = e.to_string();
    assert!(
        s.contains(&format!("size was {} bytes, now {}", 2 * GIB, GIB)),
        "{s}"
    );
    assert!(s.contains("label area"), "{s}");
    std::fs::remove_file(&p).unwrap();
    assert!(
        f.m.start("c")
            .unwrap_err()
            .to_string()
            .contains("no longer exists")
    );
}

#[test]
fn args_parse_with_pmvm_and_plan_matches_show() {
    let f = Fixture::new();
    f.create("g");
    let sizes = [GIB, 3 * GIB + 5 * MIB, 512 * MIB];
    for (i, s) in sizes.iter().enumerate() {
        f.m.attach("g", &f.file(&format!("d{i}"), *s), false)
            .unwrap();
    }
    // Free slot 1 and fill it again: slots stay stable, the hole is reused.
    f.m.detach("g", &f.dir.0.join("d1")).unwrap();
    let r = f.m.attach("g", &f.file("d4", 2 * GIB), false).unwrap();
    assert_eq!(r.assignment.slot, 1);
    let args = f.m.args("g").unwrap();
    let cfg = match vm_config::parse_args(&args).unwrap() {
        vm_config::Action::Run(c) => c,
        other => panic!("{other:?}"),
    };
    let (_, plans) = vm_config::plan_devices(&cfg).unwrap();
    let view = f.m.show("g").unwrap();
    assert_eq!(plans.len(), view.nvdimms.len());
    for n in &view.nvdimms {
        let a = &n.assignment;
        let p = plans.iter().find(|p| p.id == a.id).expect("device in plan");
        assert_eq!(Some(p.gpa), n.gpa, "{}", a.id);
        assert_eq!(p.slot, a.slot);
        assert_eq!(p.size, a.guest_size);
        let split = p.nvdimm.expect("nvdimm split");
        assert_eq!(split.label_offset, a.label_offset);
    }
    assert_eq!(cfg.memory.maxmem, view.maxmem);
    assert_eq!(cfg.memory.slots, view.slots);
    assert!(
        args.windows(2)
            .any(|w| w[0] == "-pidfile" && Path::new(&w[1]) == f.m.store.pidfile("g"))
    );
    assert!(args.contains(&"-daemonize".to_string()));
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn start_runs_exactly_the_args() {
    let mut f = Fixture::new();
    f.create("st");
    f.m.attach("st", &f.file("dev", GIB), false).unwrap();
    let rec = f.dir.0.join("argv");
    let fake = script(
        &f.dir.0,
        "pmvm",
        &format!(
            "for a in \"$@\"; do printf '%s\\n' \"$a\"; done > {}",
            rec.display()
        ),
    );
    f.m.pmvm = Some(fake);
    let r = f.m.start("st").unwrap();
    let recorded = std::fs::read_to_string(&rec).unwrap();
    let want: String =
        f.m.args("st")
            .unwrap()
            .iter()
            .map(|a| format!("{a}\n"))
            .collect();
    assert_eq!(recorded, want);
    assert_eq!(r.args, f.m.args("st").unwrap());
    assert_eq!(r.pid, None, "the fake wrote no pidfile");
    // A failing pmvm: its message is passed on.
    f.m.pmvm = Some(script(
        &f.dir.0,
        "bad",
        "echo 'pmvm: no KVM here' >&2; exit 1",
    ));
    let e = f.m.start("st").unwrap_err();
    assert!(e.to_string().contains("no KVM here"), "{e}");
    f.m.pmvm = Some(f.dir.0.join("nonexistent"));
    assert!(f.m.start("st").unwrap_err().to_string().contains("--pmvm"));
}

/// A one-connection-at-a-time fake QMP server; `system_powerdown` and `quit` kill `child`.
fn fake_qmp(sock: PathBuf, child: std::process::Child) -> std::thread::JoinHandle<Vec<String>> {
    let l = UnixListener::bind(&sock).unwrap();
    std::thread::spawn(move || {
        let mut child = child;
        let mut seen = Vec::new();
        for conn in l.incoming().take(2) {
            let conn = conn.unwrap();
            let mut w = conn.try_clone().unwrap();
            writeln!(w, r#"{{"QMP": {{"version": {{}}, "capabilities": []}}}}"#).unwrap();
            for line in BufReader::new(conn).lines() {
                let Ok(line) = line else { break };
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                let cmd = v["execute"].as_str().unwrap_or_default().to_owned();
                seen.push(cmd.clone());
                match cmd.as_str() {
                    "query-status" => {
                        writeln!(w, r#"{{"event": "RESUME", "timestamp": {{}}}}"#).unwrap();
                        writeln!(
                            w,
                            r#"{{"return": {{"status": "running", "running": true}}}}"#
                        )
                        .unwrap();
                    }
                    "system_powerdown" | "quit" => {
                        writeln!(w, r#"{{"return": {{}}}}"#).unwrap();
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                    _ => writeln!(w, r#"{{"return": {{}}}}"#).unwrap(),
                }
            }
        }
        seen
    })
}

#[test]
fn status_and_stop_over_qmp() {
    let f = Fixture::new();
    f.create("q");
    assert!(matches!(
        f.m.stop("q", false).unwrap_err(),
        VmError::NotRunning(_)
    ));
    let st = f.m.status("q").unwrap();
    assert!(!st.running && st.qmp_status.is_none());
    let child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    std::fs::write(f.m.store.pidfile("q"), format!("{}\n", child.id())).unwrap();
    let server = fake_qmp(f.m.store.qmp_socket("q"), child);
    let st = f.m.status("q").unwrap();
    assert!(st.running);
    assert_eq!(st.qmp_status.as_deref(), Some("running"));
    let r = f.m.stop("q", false).unwrap();
    assert_eq!(r.method, "powerdown");
    assert!(!f.m.show("q").unwrap().running);
    let seen = server.join().unwrap();
    assert_eq!(
        seen,
        [
            "qmp_capabilities",
            "query-status",
            "qmp_capabilities",
            "system_powerdown"
        ]
    );
}

#[test]
fn console_tail_follow_and_restart() {
    let f = Fixture::new();
    f.create("c1");
    assert!(matches!(
        f.m.console("nope", None, 100).unwrap_err().kind(),
        ErrorKind::NotFound
    ));
    // Never started: empty, not an error.
    let v = f.m.console("c1", None, 100).unwrap();
    assert_eq!(
        (v.size, v.offset, v.text.as_str(), v.skipped, v.running),
        (0, 0, "", 0, false)
    );

    let path = f.m.store.console("c1");
    std::fs::write(&path, b"line one\nline two\n").unwrap();
    let v = f.m.console("c1", None, 9).unwrap();
    assert_eq!(
        (v.text.as_str(), v.offset, v.size, v.skipped),
        ("line two\n", 9, 18, 9)
    );
    // Follow: only what is new.
    let mut fh = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    fh.write_all(b"three\xff\n").unwrap();
    let w = f.m.console("c1", Some(v.size), 1000).unwrap();
    assert_eq!(
        (w.text.as_str(), w.offset, w.size, w.skipped),
        ("three\u{fffd}\n", 18, 25, 0)
    );
    assert_eq!(f.m.console("c1", Some(w.size), 1000).unwrap().text, "");
    // Fell behind by more than max: the newest max bytes, the gap reported.
    let x = f.m.console("c1", Some(0), 7).unwrap();
    assert_eq!(
        (x.offset, x.skipped, x.text.as_str()),
        (18, 18, "three\u{fffd}\n")
    );
    // The VM was started again (the file shrank): from its start.
    std::fs::write(&path, b"boot 2\n").unwrap();
    let y = f.m.console("c1", Some(w.size), 1000).unwrap();
    assert_eq!((y.offset, y.text.as_str()), (0, "boot 2\n"));
    f.fake_running("c1");
    assert!(f.m.console("c1", None, 0).unwrap().running);
}

/// A fake pmvm QMP socket for hot-add: records each `human-monitor-command` line and
/// answers it with `reply(line)` (HMP output; "" is success).
fn fake_hmp(sock: PathBuf, reply: fn(&str) -> String) -> std::thread::JoinHandle<Vec<String>> {
    let l = UnixListener::bind(&sock).unwrap();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let conn = l.incoming().next().unwrap().unwrap();
        let mut w = conn.try_clone().unwrap();
        writeln!(w, r#"{{"QMP": {{"version": {{}}, "capabilities": []}}}}"#).unwrap();
        let mut negotiated = false;
        for line in BufReader::new(conn).lines() {
            let Ok(line) = line else { break };
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let ret = match v["execute"].as_str() {
                // as pmvm and QEMU: negotiation happens once, then is an error
                Some("qmp_capabilities") if negotiated => {
                    let e = r#"{"error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}"#;
                    writeln!(w, "{e}").unwrap();
                    continue;
                }
                Some("qmp_capabilities") => {
                    negotiated = true;
                    serde_json::json!({})
                }
                _ if !negotiated => panic!("command before qmp_capabilities: {line}"),
                Some("human-monitor-command") => {
                    let cl = v["arguments"]["command-line"].as_str().unwrap().to_owned();
                    let out = reply(&cl);
                    seen.push(cl);
                    serde_json::Value::String(out)
                }
                _ => serde_json::json!({}),
            };
            writeln!(w, "{}", serde_json::json!({ "return": ret })).unwrap();
        }
        seen
    })
}

#[test]
fn live_attach_sends_the_cold_start_strings_to_pmvm() {
    let f = Fixture::new();
    f.m.create(CreateSpec {
        slots: Some(4),
        hotplug_room: 8 * GIB,
        ..f.spec("live")
    })
    .unwrap();
    let before = f.m.store.load("live").unwrap();
    assert_eq!(
        before.maxmem,
        512 * MIB + GIB + 8 * GIB,
        "room is in maxmem from the start"
    );
    assert!(
        cmdline::vm_args(&f.m.store, &before)
            .unwrap()
            .contains(&format!("512M,slots=4,maxmem={}M", (512 + 9 * 1024)))
    );
    f.fake_running("live");
    let dev = f.file("dev", 2 * GIB);
    let server = fake_hmp(f.m.store.qmp_socket("live"), |_| String::new());
    let r = f.m.attach("live", &dev, false).unwrap();
    assert!(r.live && r.saved);
    let lines = server.join().unwrap();
    let n = cmdline::nvdimm_args(&r.assignment).unwrap();
    assert_eq!(
        lines,
        [
            format!("object_add {}", n.object),
            format!("device_add {}", n.device)
        ]
    );
    let after = f.m.store.load("live").unwrap();
    assert_eq!(after.nvdimms, std::slice::from_ref(&r.assignment));
    assert_eq!(
        after.maxmem, before.maxmem,
        "maxmem is fixed while the VM runs"
    );
    // The same device at the next cold start: the strings pmvm got are the ones start passes.
    let args = cmdline::vm_args(&f.m.store, &after).unwrap();
    assert!(
        args.contains(&n.object) && args.contains(&n.device),
        "{args:?}"
    );
}

#[test]
fn live_attach_refusals_leave_vm_and_state_alone() {
    let f = Fixture::new();
    f.create("tight"); // no NVDIMMs, no --hotplug-room: started without slots
    f.fake_running("tight");
    let dev = f.file("dev", GIB);
    let e = f.m.attach("tight", &dev, false).unwrap_err();
    assert!(e.to_string().contains("--hotplug-room"), "{e}");
    assert_eq!(e.status(), 400);
    assert!(f.m.store.load("tight").unwrap().nvdimms.is_empty());

    // pmvm refuses the device: the backend object is removed again, nothing is saved.
    f.m.create(CreateSpec {
        hotplug_room: 4 * GIB,
        ..f.spec("room")
    })
    .unwrap();
    f.fake_running("room");
    let server = fake_hmp(f.m.store.qmp_socket("room"), |l| {
        if l.starts_with("device_add") {
            "Error: nvdimm is not enabled: add 'nvdimm=on' to '-machine'\n".into()
        } else {
            String::new()
        }
    });
    let e = f.m.attach("room", &dev, false).unwrap_err();
    assert!(e.to_string().contains("nvdimm is not enabled"), "{e}");
    let lines = server.join().unwrap();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[2].starts_with("object_del memnv0"), "{lines:?}");
    assert!(f.m.store.load("room").unwrap().nvdimms.is_empty());
    // A dry run while running talks to nobody.
    let r = f.m.attach("room", &dev, true).unwrap();
    assert!(r.live && !r.saved);
}

#[test]
fn disks_become_virtio_drives_and_bad_images_are_refused() {
    let f = Fixture::new();
    let root = f.file("root,1.raw", 64 * MIB);
    let iso = f.file("install.iso", MIB);
    let v =
        f.m.create(CreateSpec {
            disks: vec![root.clone()],
            readonly_disks: vec![iso.clone()],
            ..f.spec("d")
        })
        .unwrap();
    assert_eq!(v.disks.len(), 2);
    assert!(!v.disks[0].readonly && v.disks[1].readonly);
    let args = f.m.args("d").unwrap();
    let drives: Vec<&String> = args
        .iter()
        .zip(args.iter().skip(1))
        .filter(|(a, _)| *a == "-drive")
        .map(|(_, v)| v)
        .collect();
    let root = std::fs::canonicalize(&root).unwrap();
    let iso = std::fs::canonicalize(&iso).unwrap();
    assert_eq!(
        drives,
        vec![
            &format!(
                "file={},format=raw,if=virtio",
                root.display().to_string().replace(',', ",,")
            ),
            &format!("file={},format=raw,if=virtio,readonly=on", iso.display()),
        ],
        "a ',' in a path is doubled, as QEMU's option syntax wants"
    );
    // pmvm's own parser reads the drives back with the right file names.
    let cfg = match vm_config::parse_args(&args).unwrap() {
        vm_config::Action::Run(c) => c,
        _ => unreachable!(),
    };
    assert_eq!(cfg.drives[0].file, root);
    assert!(cfg.drives[1].readonly);

    let err = |spec: CreateSpec| f.m.create(spec).unwrap_err().to_string();
    let qcow = f.file("vm.qcow2", MIB);
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&qcow).unwrap();
        f.write_all_at(b"QFI\xfb\0\0\0\x03", 0).unwrap();
    }
    let e = err(CreateSpec {
        disks: vec![qcow],
        ..f.spec("q")
    });
    assert!(
        e.contains("qcow2 image") && e.contains("qemu-img convert -O raw"),
        "{e}"
    );
    let e = err(CreateSpec {
        disks: vec![f.dir.0.join("none.raw")],
        ..f.spec("n")
    });
    assert!(e.contains("qemu-img create -f raw"), "{e}");
    let e = err(CreateSpec {
        disks: vec![f.file("tiny.raw", 100)],
        ..f.spec("t")
    });
    assert!(e.contains("at least one 512-byte sector"), "{e}");
    let e = err(CreateSpec {
        disks: vec![root.clone()],
        readonly_disks: vec![root.clone()],
        ..f.spec("twice")
    });
    assert!(e.contains("given twice"), "{e}");
    let e = err(CreateSpec {
        disks: vec![f.dir.0.clone()],
        ..f.spec("dir")
    });
    assert!(e.contains("not a regular file or block device"), "{e}");
    assert!(
        !f.m.list().unwrap().iter().any(|v| v.name != "d"),
        "nothing refused was saved"
    );
}

mod firmware;
