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
