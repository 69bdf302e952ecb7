//! Tier 2b, firmware boot on the host's /dev/kvm: pmvm starts the real SeaBIOS for microvm
//! (/usr/share/seabios/bios-microvm.bin, Debian package `seabios`) with no -kernel. SeaBIOS
//! must find fw_cfg (with DMA), take the ACPI tables through the table loader, find pmvm's
//! virtio-mmio disks by parsing the DSDT, read a boot sector through virtio-blk and run it
//! (tests/tiny/mbr.S, assembled here with gcc): the fast proof that firmware + fw_cfg + DSDT +
//! virtio-blk work together. Needs /dev/kvm, gcc and the seabios package; fails saying which
//! is missing. A SeaBIOS boot takes a few seconds on a nested host (real mode is slow there).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FIRMWARE: &str = "/usr/share/seabios/bios-microvm.bin";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pmvm-fw-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn preflight() {
    assert!(
        Path::new("/dev/kvm").exists(),
        "/dev/kvm is missing: the firmware boot test needs KVM"
    );
    assert!(
        Path::new(FIRMWARE).exists(),
        "{FIRMWARE} is missing: install Debian's seabios package (scripts/deps.sh)"
    );
}

/// A 1 MiB raw disk whose boot sector is tests/tiny/mbr.S (SeaBIOS refuses a disk of under
/// one cylinder, so the image is padded).
fn mbr_disk(dir: &Path) -> PathBuf {
    let out = dir.join("mbr.img");
    let src = repo().join("tests/tiny/mbr.S");
    let st = Command::new("gcc")
        .args([
            "-nostdlib",
            "-static",
            "-no-pie",
            "-Wl,-Ttext=0x7c00",
            "-Wl,--oformat=binary",
            "-Wl,--build-id=none",
            "-o",
        ])
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("gcc is needed to assemble {} ({e})", src.display()));
    assert!(st.success(), "assembling {} failed", src.display());
    let f = std::fs::OpenOptions::new().write(true).open(&out).unwrap();
    assert_eq!(
        f.metadata().unwrap().len(),
        1024,
        "mbr.S must give 2 sectors"
    );
    f.set_len(1 << 20).unwrap();
    out
}

struct Run {
    code: i32,
    out: String,
    err: String,
    log: String,
}

/// Runs pmvm with `args` plus a debugcon log, at most `limit`; a run over the limit is killed
/// and reported with what it printed.
fn run(dir: &Path, args: &[&str], limit: Duration) -> Run {
    preflight();
    let log = dir.join("debugcon.log");
    let debugcon = format!("file:{}", log.display());
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pmvm"))
        .args(args)
        .args(["-debugcon", &debugcon])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pmvm runs");
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code().unwrap_or(-1);
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break -9;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    eprintln!(
        "pmvm {args:?}: exit {code} after {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Run {
        code,
        out,
        err,
        log,
    }
}

#[track_caller]
fn contains(r: &Run, hay: &str, needle: &str) {
    assert!(
        hay.contains(needle),
        "{needle:?} missing.\nexit {}\nstdout: {}\nstderr: {}\nfirmware log tail: {}",
        r.code,
        r.out,
        r.err,
        r.log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
    );
}

const LIMIT: Duration = Duration::from_secs(90);

#[test]
fn seabios_without_a_bootable_disk_says_so_and_reboots() {
    let dir = scratch("nodisk");
    // An ISO without an MBR: pmvm warns that the firmware cannot boot it.
    let iso = dir.join("plain.iso");
    std::fs::write(&iso, vec![0u8; 1 << 20]).unwrap();
    let iso_s = iso.to_string_lossy().into_owned();
    // reboot-timeout=0: SeaBIOS resets at once through the FADT reset register; -no-reboot
    // turns that into a clean exit.
    let r = run(
        &dir,
        &[
            "-m",
            "64M",
            "-nographic",
            "-no-reboot",
            "-boot",
            "reboot-timeout=0",
            "-cdrom",
            &iso_s,
        ],
        LIMIT,
    );
    contains(&r, &r.out, "SeaBIOS (version");
    contains(&r, &r.out, "No bootable device");
    contains(&r, &r.log, "QEMU fw_cfg DMA interface supported");
    contains(&r, &r.log, "ACPI: parse DSDT");
    contains(&r, &r.log, "found virtio-blk-mmio at 0xe0000000");
    contains(&r, &r.err, "has no MBR boot record");
    assert_eq!(r.code, 0, "exit status: {}", r.err);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn seabios_boots_a_disk_with_nvdimms_and_two_cpus() {
    let dir = scratch("disk");
    let disk = mbr_disk(&dir);
    let drive = format!("file={},format=raw,index=0,media=disk", disk.display());
    let backend = format!(
        "memory-backend-file,id=mem1,share=on,mem-path={}/nv1.img,size=256M",
        dir.display()
    );
    // The seed's command-line shape, scaled down.
    let r = run(
        &dir,
        &[
            "-drive",
            &drive,
            "-m",
            "128M,slots=4,maxmem=1G",
            "-smp",
            "2",
            "-machine",
            "pc,accel=kvm,nvdimm=on",
            "-enable-kvm",
            "-object",
            &backend,
            "-device",
            "nvdimm,memdev=mem1,id=nv1,label-size=128K",
            "-nographic",
            "-no-reboot",
        ],
        LIMIT,
    );
    contains(&r, &r.out, "PMVM-MBR-BOOT");
    // "PMVM-MBR-SECTOR1" is in LBA 1; SeaBIOS's serial console may not have written the
    // last characters when the guest powers off, so the prefix is what is checked.
    contains(&r, &r.out, "PMVM-MBR-SECTOR");
    contains(&r, &r.log, "Found 2 cpu(s)");
    contains(
        &r,
        &r.log,
        "Searching bootorder for: /virtio-mmio@00000000e0000000/*",
    );
    assert!(!r.out.contains("READ-FAILED"), "{}", r.out);
    assert_eq!(r.code, 0, "the boot sector powers off: {}", r.err);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn seabios_boots_an_isohybrid_cdrom_first_with_boot_d() {
    let dir = scratch("cdrom");
    let iso = mbr_disk(&dir);
    let blank = dir.join("blank.img");
    std::fs::write(&blank, vec![0u8; 1 << 20]).unwrap();
    let drive = format!("file={},format=raw,index=0", blank.display());
    let r = run(
        &dir,
        &[
            "-drive",
            &drive,
            "-cdrom",
            &iso.to_string_lossy(),
            "-boot",
            "order=d",
            "-m",
            "64M",
            "-nographic",
            "-no-reboot",
        ],
        LIMIT,
    );
    contains(&r, &r.out, "PMVM-MBR-SECTOR");
    // The CD-ROM (second window) is tried first.
    contains(
        &r,
        &r.log,
        "Searching bootorder for: /virtio-mmio@00000000e0001000/*",
    );
    assert!(!r.err.contains("no MBR boot record"), "{}", r.err);
    assert_eq!(r.code, 0, "{}", r.err);
    let _ = std::fs::remove_dir_all(&dir);
}
