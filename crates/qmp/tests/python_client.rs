//! Interoperability: the real `qemu.qmp` Python client against `examples/fake_vm`.
//! Fails (it never skips) when python3 or the `qemu.qmp` package is missing: scripts/deps.sh
//! installs it.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn have_qemu_qmp() -> bool {
    Command::new("python3")
        .args(["-c", "import qemu.qmp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn qemu_qmp_python_client_works() {
    assert!(
        have_qemu_qmp(),
        "python3 with the qemu.qmp package is needed for this test: run scripts/deps.sh (pip install qemu.qmp)"
    );
    // target/debug/deps/<this test> -> target/debug/examples/fake_vm
    let exe = std::env::current_exe().unwrap();
    let fake_vm = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("fake_vm");
    if !fake_vm.exists() {
        // `cargo test --test python_client` does not build examples; build it now.
        let target_dir = exe.parent().unwrap().parent().unwrap().parent().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-p", "qmp", "--example", "fake_vm", "--target-dir"])
            .arg(target_dir)
            .status()
            .unwrap();
        assert!(st.success(), "building examples/fake_vm failed");
    }
    assert!(fake_vm.exists(), "example not built: {}", fake_vm.display());
    let dir = std::env::temp_dir().join(format!("qmp-py-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("qmp.sock");
    let mut child = Command::new(&fake_vm)
        .args([
            "-qmp",
            &format!("unix:{},server=on,wait=off", sock.display()),
        ])
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !sock.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let script: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "qemu_qmp_client.py"]
        .iter()
        .collect();
    let out = Command::new("python3")
        .arg(&script)
        .arg(&sock)
        .output()
        .unwrap();
    if !out.status.success() {
        // The script did not get to `quit`: do not wait for the server forever.
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("PASS"),
        "python client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(status.success(), "fake_vm did not exit cleanly after quit");
}
