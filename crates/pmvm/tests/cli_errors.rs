//! NVDIMM configuration checks of the pmvm binary: each refused configuration exits non-zero
//! with a message naming what to change, before KVM is touched (so these run without
//! /dev/kvm). The same cases run end to end in tests/e2e/nvdimm-errors.sh, where QEMU's
//! reaction is shown next to pmvm's and the accepted configurations are started.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh directory for one test's backend files.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pmvm-cli-errors-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).expect("temp dir");
    d
}

fn run(args: &[String]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pmvm"))
        .args(args)
        .output()
        .expect("pmvm runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Common arguments: machine with nvdimm=on (unless `machine` says otherwise), a real file as
/// kernel (never reached), then `rest`.
fn args(machine: &str, mem: &str, rest: &[String]) -> Vec<String> {
    let mut v: Vec<String> = [
        "-machine",
        machine,
        "-m",
        mem,
        "-kernel",
        env!("CARGO_BIN_EXE_pmvm"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend_from_slice(rest);
    v
}

/// `-object memory-backend-file` + `-device nvdimm` for backend `i` in `dir`.
fn nv(dir: &Path, i: u32, size: &str, bextra: &str, dextra: &str) -> Vec<String> {
    vec![
        "-object".into(),
        format!(
            "memory-backend-file,id=m{i},share=on,mem-path={}/nv{i}.img,size={size}{bextra}",
            dir.display()
        ),
        "-device".into(),
        format!("nvdimm,id=n{i},memdev=m{i}{dextra}"),
    ]
}

#[track_caller]
fn refused(a: &[String], needles: &[&str]) -> String {
    let (code, err) = run(a);
    assert!(
        code != 0,
        "{a:?} should be refused, exit {code}, stderr: {err}"
    );
    let low = err.to_lowercase();
    assert!(
        needles.iter().any(|n| low.contains(&n.to_lowercase())),
        "{a:?}: stderr should mention one of {needles:?}: {err}"
    );
    assert!(err.starts_with("pmvm: "), "{a:?}: {err}");
    err
}

const M: &str = "pc,nvdimm=on";
const MEM: &str = "512M,slots=4,maxmem=4G";

#[test]
fn slots_too_small() {
    let d = scratch("slots");
    let mut rest = nv(&d, 1, "256M", "", "");
    rest.extend(nv(&d, 2, "256M", "", ""));
    refused(&args(M, "512M,slots=1,maxmem=4G", &rest), &["slots="]);
}

#[test]
fn maxmem_missing_or_too_small() {
    let d = scratch("maxmem");
    let rest = nv(&d, 1, "256M", "", "");
    refused(&args(M, "512M", &rest), &["maxmem"]);
    refused(&args(M, "512M,slots=4,maxmem=600M", &rest), &["maxmem"]);
}

#[test]
fn slot_out_of_range() {
    let d = scratch("slot");
    refused(&args(M, MEM, &nv(&d, 1, "256M", "", ",slot=4")), &["slot"]);
}

#[test]
fn label_size_below_128k() {
    let d = scratch("labelmin");
    refused(
        &args(M, MEM, &nv(&d, 1, "256M", "", ",label-size=64K")),
        &["label-size", "0x20000"],
    );
}

#[test]
fn backend_too_small_for_label_and_pmem() {
    let d = scratch("small");
    for size in ["192K", "128K"] {
        refused(
            &args(M, MEM, &nv(&d, 1, size, "", ",label-size=128K")),
            &["too small"],
        );
    }
    // align=2M rounds the 1 MiB left after the label down to nothing
    refused(
        &args(M, MEM, &nv(&d, 1, "1152K", ",align=2M", ",label-size=128K")),
        &["too small"],
    );
}

#[test]
fn duplicate_ids() {
    let d = scratch("dup");
    let mut dev = nv(&d, 1, "256M", "", "");
    dev.extend(nv(&d, 2, "256M", "", ""));
    let last = dev.len() - 1;
    dev[last] = "nvdimm,id=n1,memdev=m2".into();
    refused(&args(M, MEM, &dev), &["duplicate id 'n1'"]);
    let mut obj = nv(&d, 1, "256M", "", "");
    obj.extend([
        "-object".into(),
        format!(
            "memory-backend-file,id=m1,share=on,mem-path={}/o.img,size=256M",
            d.display()
        ),
    ]);
    refused(&args(M, MEM, &obj), &["duplicate"]);
}

#[test]
fn memdev_used_twice_or_unknown() {
    let d = scratch("memdev");
    let mut rest = nv(&d, 1, "256M", "", "");
    rest.extend(["-device".into(), "nvdimm,id=n2,memdev=m1".into()]);
    refused(&args(M, MEM, &rest), &["busy", "already"]);
    refused(
        &args(
            M,
            MEM,
            &["-device".into(), "nvdimm,id=n1,memdev=nope".into()],
        ),
        &["nope"],
    );
}

#[test]
fn mem_path_directory_missing() {
    let d = scratch("nodir");
    let rest = vec![
        "-object".into(),
        format!(
            "memory-backend-file,id=m1,share=on,mem-path={}/no-such-dir/nv.img,size=256M",
            d.display()
        ),
        "-device".into(),
        "nvdimm,id=n1,memdev=m1".into(),
    ];
    refused(&args(M, MEM, &rest), &["no-such-dir"]);
}

#[test]
fn nvdimm_without_machine_option() {
    let d = scratch("nomachine");
    refused(&args("pc", MEM, &nv(&d, 1, "256M", "", "")), &["nvdimm=on"]);
}

#[test]
fn non_empty_backend_shorter_than_size() {
    let d = scratch("short");
    fs::write(d.join("nv1.img"), vec![0x5au8; 1 << 20]).expect("write");
    refused(
        &args(M, MEM, &nv(&d, 1, "256M", "", "")),
        &["too small", "size"],
    );
    // refused, and not grown: QEMU >= 2.8 never resizes a non-empty file either
    assert_eq!(
        fs::metadata(d.join("nv1.img")).expect("stat").len(),
        1 << 20
    );
}

#[test]
fn foreign_data_in_label_area_is_refused_and_left_alone() {
    let d = scratch("foreign");
    let f = d.join("nv1.img");
    let mut file = fs::File::create(&f).expect("create");
    file.set_len(256 << 20).expect("size");
    file.seek(SeekFrom::Start((256 << 20) - (256 << 10)))
        .expect("seek");
    let junk: Vec<u8> = (0..256u32 << 10)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 1)
        .collect();
    file.write_all(&junk).expect("write");
    drop(file);
    let before = fs::read(&f).expect("read");
    refused(
        &args(M, MEM, &nv(&d, 1, "256M", "", ",label-size=128K")),
        &["-force-label-area"],
    );
    assert!(
        fs::read(&f).expect("read") == before,
        "refusal must not modify the backend"
    );
}

#[test]
fn require_persistence_refuses_plain_file_with_pmem_on() {
    let d = scratch("persist");
    let mut rest = nv(&d, 1, "256M", ",pmem=on", "");
    rest.push("-require-persistence".into());
    refused(&args(M, MEM, &rest), &["persist"]);
}

fn net_args(rest: &[&str]) -> Vec<String> {
    let mut v = args("pc", "512M", &[]);
    v.extend(rest.iter().map(|s| s.to_string()));
    v
}

#[test]
fn network_options_are_checked_before_kvm() {
    for (rest, needles) in [
        (
            &[
                "-netdev",
                "user,id=n0",
                "-device",
                "virtio-net-pci,netdev=n1",
            ][..],
            &["-device virtio-net-pci,netdev=n1", "no -netdev has id 'n1'"][..],
        ),
        (
            &["-net", "nic", "-net", "user,hostfwd=tcp::22x-:22"],
            &["-net user: hostfwd=tcp::22x-:22", "host port '22x'"],
        ),
        (
            &["-net", "nic", "-net", "user,hostfwd=tcp:2222:22"],
            &[
                "hostfwd=tcp:2222:22",
                "[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport",
            ],
        ),
        (
            &["-nic", "tap,ifname=tap0,script=/etc/qemu-ifup"],
            &["-nic tap", "script=/etc/qemu-ifup", "script=no"],
        ),
        (
            &["-net", "nic,model=ne2000"],
            &["model=ne2000", "unsupported NIC model"],
        ),
        (
            &["-netdev", "socket,id=s0"],
            &["-netdev socket,id=s0", "use user or tap"],
        ),
    ] {
        let (rc, err) = run(&net_args(rest));
        assert_ne!(rc, 0, "{rest:?} must be refused");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        for n in needles {
            assert!(err.contains(n), "{rest:?}: '{n}' not in: {err}");
        }
    }
}

/// Firmware boot (no -kernel): refusals before KVM is touched.
#[test]
fn firmware_boot_refusals() {
    let d = scratch("firmware");
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    refused(
        &s(&["-m", "64M", "-bios", "/nonexistent/bios.bin"]),
        &["-bios '/nonexistent/bios.bin': could not load the BIOS"],
    );
    let big = d.join("big.bin");
    fs::write(&big, vec![0u8; 512 << 10]).expect("write");
    refused(
        &s(&["-m", "64M", "-bios", &big.to_string_lossy()]),
        &["too large for the BIOS region"],
    );
    let odd = d.join("odd.bin");
    fs::write(&odd, vec![0u8; 1000]).expect("write");
    refused(
        &s(&["-bios", &odd.to_string_lossy()]),
        &["multiple of 4 KiB"],
    );
    let unreadable = d.join("dir.bin");
    fs::create_dir_all(&unreadable).expect("mkdir");
    refused(
        &s(&["-bios", &unreadable.to_string_lossy()]),
        &["not a regular file"],
    );
    let fw = d.join("fw.bin");
    fs::write(&fw, vec![0u8; 64 << 10]).expect("write");
    let fw = fw.to_string_lossy().into_owned();
    // QEMU's words.
    refused(
        &s(&["-bios", &fw, "-initrd", &fw]),
        &["-initrd only allowed with -kernel option"],
    );
    refused(
        &s(&["-bios", &fw, "-append", "console=ttyS0"]),
        &["-append only allowed with -kernel option"],
    );
    refused(
        &s(&["-bios", &fw, "-kernel", env!("CARGO_BIN_EXE_pmvm")]),
        &["-kernel with -bios is not supported"],
    );
    refused(
        &s(&["-bios", &fw, "-boot", "order=q"]),
        &["Invalid boot device 'q'"],
    );
    refused(&s(&["-bios", &fw, "-boot", "once=c,foo=1"]), &["'foo'"]);
    refused(
        &s(&["-bios", &fw, "-debugcon", "vc"]),
        &["file:PATH, stdio or none"],
    );
    refused(
        &s(&["-bios", &fw, "-drive", "file=a.img,bootindex=x"]),
        &["bootindex=x"],
    );
    refused(
        &s(&[
            "-bios",
            &fw,
            "-cdrom",
            "a.iso",
            "-drive",
            "file=b.img,index=2",
        ]),
        &["index=2 is already used"],
    );
    let _ = fs::remove_dir_all(&d);
}
