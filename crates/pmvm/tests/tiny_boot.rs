//! Tier 2, the tiny boot test: a ~200-byte PVH guest (tests/tiny/tiny.S, assembled here with
//! gcc) boots under pmvm on the host's /dev/kvm in milliseconds, prints on COM1, makes a real
//! `_DSM` round trip through the NVDIMM mailbox and doorbell, and powers off through the ACPI
//! sleep register. Needs /dev/kvm and gcc: without them the test fails and says why.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

mod support;

fn tiny_elf(test: &str) -> PathBuf {
    let out = std::env::temp_dir().join(format!("pmvm-tiny-{}-{test}.elf", std::process::id()));
    support::assemble_pvh(&repo().join("tests/tiny/tiny.S"), out)
}

fn run(args: &[&str]) -> (i32, String, String, f64) {
    assert!(
        Path::new("/dev/kvm").exists(),
        "/dev/kvm is missing: the tiny boot test needs KVM (load kvm_intel/kvm_amd or run in the harness)"
    );
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_pmvm"))
        .args(args)
        .output()
        .expect("pmvm runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        t.elapsed().as_secs_f64(),
    )
}

fn nvdimm_args<'a>(elf: &'a str, backend: &'a str, device: &'a str) -> Vec<&'a str> {
    vec![
        "-machine",
        "pc,nvdimm=on",
        "-m",
        "64M,slots=2,maxmem=1G",
        "-object",
        backend,
        "-device",
        device,
        "-kernel",
        elf,
        "-nographic",
        "-no-reboot",
    ]
}

#[test]
fn tiny_guest_boots_calls_dsm_and_powers_off() {
    let elf = tiny_elf("dsm");
    let dir = std::env::temp_dir().join(format!("pmvm-tiny-nv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("nv.img");
    let elf_s = elf.to_string_lossy().into_owned();

    // With a label area, DIMM 1 offers functions 0, 4, 5, 6: bitmap 0x71.
    let backend = format!(
        "memory-backend-file,id=m,share=on,mem-path={},size=256M",
        img.display()
    );
    let (code, out, err, secs) = run(&nvdimm_args(
        &elf_s,
        &backend,
        "nvdimm,id=n,memdev=m,label-size=128K",
    ));
    assert_eq!(code, 0, "pmvm failed: {err}");
    assert!(
        out.contains("PMVM-TINY-BOOT"),
        "no boot marker on the serial console: {out:?} {err}"
    );
    assert!(
        out.contains("PMVM-TINY-DSM0=71"),
        "DSM function 0 bitmap: {out:?}"
    );
    assert!(err.contains("nvdimm n:"), "start-up report missing: {err}");
    eprintln!("tiny boot with a labelled NVDIMM: {secs:.3} s");
    // The backend was created and sized; the guest saw no label area contents change.
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 256 << 20);

    // Without label-size: no label functions (bitmap 0), as QEMU.
    let (code, out, err, _) = run(&nvdimm_args(&elf_s, &backend, "nvdimm,id=n,memdev=m"));
    assert_eq!(code, 0, "pmvm failed: {err}");
    assert!(
        out.contains("PMVM-TINY-DSM0=00"),
        "label-less bitmap: {out:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&elf);
}

#[test]
fn tiny_guest_without_nvdimms_gets_no_mailbox() {
    let elf = tiny_elf("plain");
    let elf_s = elf.to_string_lossy().into_owned();
    // No nvdimm=on: the mailbox page is not there; the doorbell is an unclaimed port, the guest
    // reads all-ones from unmapped memory, and it still powers off cleanly.
    let (code, out, err, _) = run(&["-m", "64M", "-kernel", &elf_s, "-nographic"]);
    assert_eq!(code, 0, "pmvm failed: {err}");
    assert!(out.contains("PMVM-TINY-BOOT"));
    assert!(out.contains("PMVM-TINY-DSM0=ff"), "{out:?}");
    let _ = std::fs::remove_file(&elf);
}
