//! Bad command lines: one line on stderr that names the problem, a non-zero exit, and no KVM
//! needed (everything here fails before /dev/kvm is opened).

use std::process::Command;

fn pmvm(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pmvm"))
        .args(args)
        .output()
        .expect("pmvm runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A real file to use as -kernel where the kernel is not what is being tested.
fn kernel() -> String {
    env!("CARGO_BIN_EXE_pmvm").to_string()
}

fn expect_error(args: &[&str], needle: &str) {
    let (code, stdout, stderr) = pmvm(args);
    assert_ne!(code, 0, "{args:?} should fail; stderr: {stderr}");
    assert!(
        stdout.is_empty(),
        "{args:?}: nothing on stdout, got {stdout}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?}: one line on stderr, got {stderr:?}"
    );
    assert!(lines[0].starts_with("pmvm: "), "{args:?}: {stderr}");
    assert!(
        lines[0].contains(needle),
        "{args:?}: expected {needle:?} in {stderr:?}"
    );
}

#[test]
fn unknown_option() {
    expect_error(
        &["-kernel", &kernel(), "-frobnicate"],
        "-frobnicate: invalid option",
    );
}

#[test]
fn unsupported_qemu_options_are_refused_by_name() {
    for opt in ["-spice", "-usb", "-hda"] {
        expect_error(
            &["-kernel", &kernel(), opt, "x"],
            &format!("{opt}: option not supported"),
        );
    }
    // Networking is implemented: an unknown backend is named instead.
    expect_error(
        &["-kernel", &kernel(), "-net", "x"],
        "-net x: network backend 'x' is not supported by pmvm; use user or tap",
    );
}

#[test]
fn drive_refusals_name_the_fix() {
    // Options checked before any file is opened: one line each, naming what to use instead.
    expect_error(
        &["-kernel", &kernel(), "-drive", "if=virtio"],
        "file= is missing or empty",
    );
    expect_error(
        &["-kernel", &kernel(), "-drive", "x"],
        "parameter 'x' is not supported",
    );
    expect_error(
        &["-kernel", &kernel(), "-drive", "file=a.img,format=qcow2"],
        "qemu-img convert -O raw a.img",
    );
    expect_error(
        &["-kernel", &kernel(), "-drive", "file=a.img,if=none"],
        "use if=virtio",
    );
    expect_error(
        &["-kernel", &kernel(), "-drive", "file=a.img,cache=bogus"],
        "expected writeback, writethrough, none, directsync or unsafe",
    );
    expect_error(
        &["-kernel", &kernel(), "-drive", "file=a.img,serial=x"],
        "parameter 'serial'",
    );
    // The seed's form parses: it fails only later, at opening the image that is not there.
    let (code, _, stderr) = pmvm(&[
        "-kernel",
        &kernel(),
        "-drive",
        "file=/nonexistent/f27.raw,format=raw,index=0,media=disk",
    ]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("/nonexistent/f27.raw: cannot open the image"),
        "{stderr}"
    );
}

#[test]
fn malformed_sizes() {
    expect_error(&["-kernel", &kernel(), "-m", "12X"], "-m: size=12X");
    expect_error(
        &["-kernel", &kernel(), "-m", "4G,slots=2,maxmem=lots"],
        "maxmem=lots",
    );
    expect_error(
        &[
            "-kernel",
            &kernel(),
            "-object",
            "memory-backend-ram,id=m,size=-1",
        ],
        "size=-1",
    );
}

#[test]
fn zero_cpus_and_zero_memory() {
    expect_error(&["-kernel", &kernel(), "-smp", "0"], "-smp: 0 CPUs");
    expect_error(&["-kernel", &kernel(), "-m", "0"], "-m: memory size 0");
}

#[test]
fn missing_kernel_and_initrd_files() {
    expect_error(
        &["-kernel", "/nonexistent/vmlinuz"],
        "-kernel '/nonexistent/vmlinuz'",
    );
    expect_error(
        &["-kernel", &kernel(), "-initrd", "/nonexistent/initrd"],
        "-initrd '/nonexistent/initrd'",
    );
    // Without -kernel pmvm boots firmware: a -bios that is missing is named.
    expect_error(
        &["-m", "512M", "-bios", "/nonexistent/bios.bin"],
        "-bios '/nonexistent/bios.bin': could not load the BIOS",
    );
}

#[test]
fn unbalanced_append_quoting() {
    expect_error(
        &[
            "-kernel",
            &kernel(),
            "-append",
            "console=ttyS0 foo=\"bar baz",
        ],
        "unbalanced double quote",
    );
}

#[test]
fn missing_option_argument() {
    expect_error(&["-kernel"], "-kernel: requires an argument");
}

#[test]
fn nvdimm_needs_machine_option() {
    expect_error(
        &[
            "-kernel",
            &kernel(),
            "-m",
            "512M,slots=2,maxmem=4G",
            "-object",
            "memory-backend-ram,id=m,size=256M",
            "-device",
            "nvdimm,id=n,memdev=m",
        ],
        "nvdimm is not enabled",
    );
}

#[test]
fn help_and_version_succeed() {
    let (code, out, _) = pmvm(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("-device nvdimm"));
    let (code, out, _) = pmvm(&["-version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("pmvm version "));
}

#[test]
fn daemonize_refuses_stdio() {
    expect_error(
        &["-kernel", &kernel(), "-daemonize"],
        "-daemonize cannot be used with stdio",
    );
}

#[test]
fn sandbox_option_in_help_and_sub_options_refused_by_name() {
    let (_, out, _) = pmvm(&["--help"]);
    assert!(out.contains("-sandbox on|off"), "{out}");
    expect_error(
        &["-kernel", &kernel(), "-sandbox", "on,obsolete=deny"],
        "-sandbox: sub-option 'obsolete' is not supported",
    );
    expect_error(
        &["-kernel", &kernel(), "-sandbox", "sometimes"],
        "'sometimes'",
    );
}
