//! What several host-level tests share: assembling a tiny PVH guest from tests/tiny/.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Assembles the guest source `src` with gcc into a static ELF at `out` (loaded at 2 MiB, as
/// pmvm's and QEMU's PVH loaders take it). Fails the test, naming gcc, when it cannot.
pub fn assemble_pvh(src: &Path, out: PathBuf) -> PathBuf {
    let st = Command::new("gcc")
        .args([
            "-nostdlib",
            "-static",
            "-no-pie",
            "-Wl,-Ttext=0x200000",
            "-Wl,--build-id=none",
            "-o",
        ])
        .arg(&out)
        .arg(src)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "gcc is needed to assemble {} ({e}); run scripts/deps.sh",
                src.display()
            )
        });
    assert!(st.success(), "assembling {} failed", src.display());
    out
}

/// Connects to the Unix socket pmvm (`child`) serves at `path`, waiting up to 20 s for it to
/// appear; fails the test at once if pmvm exits first. The stream gets `read_timeout`.
// Each test binary compiles this module; tiny_boot.rs has no socket to wait for.
#[allow(dead_code)]
pub fn wait_for_socket(
    path: &Path,
    child: &mut std::process::Child,
    read_timeout: std::time::Duration,
) -> std::os::unix::net::UnixStream {
    use std::time::{Duration, Instant};
    let t = Instant::now();
    loop {
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(s) => {
                s.set_read_timeout(Some(read_timeout)).unwrap();
                return s;
            }
            Err(e) => {
                if let Some(st) = child.try_wait().unwrap() {
                    panic!("pmvm exited with {st} before {} came up", path.display());
                }
                assert!(
                    t.elapsed() < Duration::from_secs(20),
                    "no socket {}: {e}",
                    path.display()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
