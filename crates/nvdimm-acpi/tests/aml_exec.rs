//! Executes the generated AML in ACPICA's own interpreter (acpiexec, 64-bit integers) with
//! the checks in `tests/aml/exec_test.asl` (see the comment there for how the mailbox echo
//! works without a VMM).

use std::process::Command;

use nvdimm_acpi::{OemIds, build_nvdimm_ssdt};

fn tool(name: &str) -> &str {
    if let Err(e) = Command::new(name).arg("-v").output() {
        panic!("{name} not found ({e}): install acpica-tools (apt-get install acpica-tools)");
    }
    name
}

#[test]
fn acpiexec_runs_dsm_and_fit_paths() {
    let dir = std::env::temp_dir().join(format!("nvdimm-acpi-exec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ssdt = build_nvdimm_ssdt(256, 0x7FF0_0000, 0x0A18, &OemIds::qemu()).unwrap();
    std::fs::write(dir.join("nvdimm.aml"), &ssdt).unwrap();
    let asl = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/aml/exec_test.asl");
    std::fs::copy(asl, dir.join("exec_test.asl")).unwrap();
    let out = Command::new(tool("iasl"))
        .current_dir(&dir)
        .arg("exec_test.asl")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "iasl failed on exec_test.asl:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = Command::new(tool("acpiexec"))
        .current_dir(&dir)
        .args(["-b", "evaluate \\PMVT", "nvdimm.aml", "exec_test.aml"])
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        log.contains("[Integer] = 0000000000000000"),
        "PMVT did not return 0 (the value is the failed check, see exec_test.asl):\n{log}"
    );
    assert!(!log.contains("AE_"), "ACPICA reported an exception:\n{log}");
}
