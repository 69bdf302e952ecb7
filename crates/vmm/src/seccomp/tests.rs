use super::*;

use std::process::Command;

/// Set in the re-executed test binary: run the child side of a test.
const CHILD_ENV: &str = "PMVM_SECCOMP_TEST_CHILD";

#[test]
fn every_filter_compiles_for_x86_64() {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    for kind in ThreadKind::ALL {
        let prog = filter(kind, pid).unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
        // The kernel refuses programs longer than BPF_MAXINSNS (4096).
        assert!(
            !prog.is_empty() && prog.len() <= 4096,
            "{}: {} instructions",
            kind.name(),
            prog.len()
        );
    }
}

#[test]
fn the_syscall_table_covers_every_number_and_is_sorted() {
    for nr in (0..=334).chain(424..=450) {
        assert!(names::name(nr).is_some(), "no name for system call {nr}");
    }
    assert!(names::SYSCALLS.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(names::name(libc::SYS_socket), Some("socket"));
    assert_eq!(names::name(41), Some("socket"));
    assert_eq!(names::name(435), Some("clone3"));
    assert_eq!(names::name(9999), None);
}

#[test]
fn the_kvm_request_numbers_are_the_kernels() {
    // From linux/kvm.h, as strace prints them.
    let v = ioctls::vcpu();
    for want in [
        0xae80u64,
        0x8090_ae81,
        0x4090_ae82,
        0x8138_ae83,
        0x4138_ae84,
    ] {
        assert!(v.contains(&want), "{want:#x} missing from {v:x?}");
    }
}

#[test]
fn the_violation_line_names_call_number_and_thread() {
    let mut name = [0u8; 16];
    name[..5].copy_from_slice(b"vcpu0");
    let l = violation_line(&name, 41);
    let s = std::str::from_utf8(&l.buf[..l.len]).unwrap();
    assert!(
        s.starts_with("pmvm: sandbox: thread 'vcpu0' made system call socket (41)"),
        "{s}"
    );
    assert!(s.ends_with('\n'));
    let l = violation_line(&[0; 16], 9999);
    let s = std::str::from_utf8(&l.buf[..l.len]).unwrap();
    assert!(
        s.contains("thread '?'") && s.contains("unknown (9999)"),
        "{s}"
    );
}

/// Runs test `name` of this binary in a child process with [`CHILD_ENV`] set.
fn run_child(name: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .expect("the test binary runs")
}

/// In the child: installs `kind`'s filter in a thread named `thread` and runs `f` there.
fn in_filtered_thread(thread: &str, kind: ThreadKind, f: impl FnOnce() + Send + 'static) {
    enable().expect("filters compile");
    std::thread::Builder::new()
        .name(thread.into())
        .spawn(move || {
            enter(kind);
            f();
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn child_vcpu_thread_calls_socket() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return; // only meaningful re-executed by the test below
    }
    in_filtered_thread("vcpu0", ThreadKind::Vcpu, || {
        // SAFETY: socket(2) has no memory-safety preconditions.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
        eprintln!("socket returned {fd}: the filter let it through");
    });
    eprintln!("CHILD-SURVIVED");
}

#[test]
fn a_forbidden_call_ends_pmvm_naming_the_call_and_the_thread() {
    let out = run_child("seccomp::tests::child_vcpu_thread_calls_socket");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(VIOLATION_EXIT),
        "status {:?}, stderr: {stderr}",
        out.status
    );
    assert!(
        stderr.contains("pmvm: sandbox: thread 'vcpu0' made system call socket (41)"),
        "{stderr}"
    );
    assert!(!stderr.contains("CHILD-SURVIVED"), "{stderr}");
}

#[test]
fn child_threads_do_allowed_work() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let path = std::env::temp_dir().join(format!("pmvm-seccomp-{}", std::process::id()));
    std::fs::write(&path, b"0123456789").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    in_filtered_thread("io-test", ThreadKind::Io, move || {
        use std::os::unix::fs::FileExt;
        // Allocation, a channel, sleeping, block reads, logging, closing.
        let v: Vec<u64> = (0..100_000).collect();
        let (tx, rx) = std::sync::mpsc::channel();
        tx.send(v.len()).unwrap();
        assert_eq!(rx.recv().unwrap(), 100_000);
        std::thread::sleep(std::time::Duration::from_millis(1));
        let mut buf = [0u8; 4];
        file.read_exact_at(&mut buf, 3).unwrap();
        assert_eq!(&buf, b"3456");
        file.sync_data().unwrap();
        eprintln!("io thread ok");
        drop(file);
    });
    in_filtered_thread("monitor-client", ThreadKind::Monitor, || {
        // A monitor thread starts a writer thread, which narrows its filter again.
        std::thread::Builder::new()
            .name("monitor-writer".into())
            .spawn(|| enter(ThreadKind::Monitor))
            .unwrap()
            .join()
            .unwrap();
        let n = std::fs::read_dir("/proc/self/task").unwrap().count();
        assert!(n >= 1);
    });
    eprintln!("CHILD-SURVIVED");
}

#[test]
fn allowed_work_passes_the_filters() {
    let out = run_child("seccomp::tests::child_threads_do_allowed_work");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "status {:?}: {stderr}", out.status);
    assert!(stderr.contains("CHILD-SURVIVED"), "{stderr}");
    assert!(!stderr.contains("sandbox"), "{stderr}");
}
