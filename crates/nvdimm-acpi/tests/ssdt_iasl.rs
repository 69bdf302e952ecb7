//! The NVDIMM SSDT disassembles (and re-compiles) with ACPICA's iasl and contains the
//! expected objects; golden hash for a 2-slot table.

use std::path::{Path, PathBuf};
use std::process::Command;

use nvdimm_acpi::mailbox::{FARG_LADDER, MAILBOX_SIZE, ODAT_LADDER};
use nvdimm_acpi::ssdt::{MAX_SLOTS, child_name};
use nvdimm_acpi::{OemIds, SsdtError, build_nvdimm_ssdt, checksum_ok, nvdr_aml};

const MBOX: u32 = 0x7FF0_0000;

fn iasl() -> &'static str {
    match Command::new("iasl").arg("-v").output() {
        Ok(_) => "iasl",
        Err(e) => panic!(
            "iasl not found ({e}): install acpica-tools (apt-get install acpica-tools) to run the \
             SSDT tests"
        ),
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nvdimm-acpi-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Disassembles `table` and returns (iasl output, ASL text).
fn disassemble(dir: &Path, table: &[u8]) -> (String, String) {
    let aml = dir.join("ssdt.aml");
    std::fs::write(&aml, table).expect("write aml");
    let out = Command::new(iasl())
        .current_dir(dir)
        .arg("-d")
        .arg(&aml)
        .output()
        .expect("run iasl");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "iasl -d failed:\n{log}");
    let asl = std::fs::read_to_string(dir.join("ssdt.dsl")).expect("iasl wrote ssdt.dsl");
    (log, asl)
}

#[test]
fn one_slot_disassembles_and_recompiles_cleanly() {
    let dir = scratch("one");
    let table = build_nvdimm_ssdt(1, MBOX, 0x0A18, &OemIds::qemu()).unwrap();
    assert!(checksum_ok(&table));
    let (log, asl) = disassemble(&dir, &table);
    assert!(!log.contains("Error"), "iasl -d reported errors:\n{log}");
    std::fs::write(dir.join("asl.txt"), &asl).unwrap();
    // Re-compile the disassembly: iasl's semantic checks (region limits, access widths, ...).
    let out = Command::new(iasl())
        .current_dir(&dir)
        .args(["-p", "recompiled", "ssdt.dsl"])
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "iasl could not recompile the disassembly:\n{log}"
    );
    assert!(
        log.contains("0 Errors, 0 Warnings"),
        "recompile errors/warnings:\n{log}"
    );
    for needle in [
        "DefinitionBlock (\"\", \"SSDT\", 2, \"BOCHS \", \"NVDIMM  \", 0x00000001)",
        "Scope (\\_SB)",
        "Device (NVDR)",
        "Name (_HID, \"ACPI0012\"",
        "OperationRegion (NRAM, SystemMemory, 0x7FF00000, 0x00021000)",
        "HDLE,   32",
        "REVS,   32",
        "FUNC,   32",
        "RLEN,   32",
        "OperationRegion (NPIO, SystemIO, 0x0A18, 0x04)",
        "NTFI,   32",
        "Method (NCAL, 5, Serialized)",
        "ToUUID (\"2f10e7a4-9e91-11e4-89d3-123b93f75cba\")",
        "ToUUID (\"648b9cf2-cda1-4312-8ad9-49c4af32bd62\")",
        "ToUUID (\"4309ac30-0d11-11e4-9191-0800200c9a66\")",
        "NTFI = 0x7FF00000",
        "Return (Mid (Local3, 0x04, (Local2 - 0x04)))",
        "Method (_DSM, 4, NotSerialized)",
        "Return (\\_SB.NVDR.NCAL (Arg0, Arg1, Arg2, Arg3, Zero))",
        "Method (_FIT, 0, Serialized)",
        "If ((Local4 == 0x0100))",
        "Device (NV00)",
        "Name (_ADR, One)",
        "Return (\\_SB.NVDR.NCAL (Arg0, Arg1, Arg2, Arg3, One))",
    ] {
        assert!(asl.contains(needle), "disassembly lacks {needle:?}:\n{asl}");
    }
    for (name, bytes) in FARG_LADDER.iter().chain(ODAT_LADDER.iter()) {
        let decl = format!("{name},   {}", bytes * 8);
        assert!(asl.contains(&decl), "disassembly lacks field {decl:?}");
        assert!(asl.contains("QWordAcc"), "ladder fields use QWord access");
    }
    assert!(!asl.contains("NV01"), "one slot means one child");
    assert!(
        !asl.contains("_STA"),
        "no _STA: every slot's device is always present"
    );
}

#[test]
fn many_slots_name_children_in_hex_and_disassemble() {
    let dir = scratch("many");
    let table = build_nvdimm_ssdt(MAX_SLOTS, MBOX, 0x0A18, &OemIds::qemu()).unwrap();
    assert!(checksum_ok(&table));
    let (log, asl) = disassemble(&dir, &table);
    assert!(!log.contains("Error"), "iasl -d reported errors:\n{log}");
    for (slot, name, adr) in [
        (0, "NV00", "One"),
        (9, "NV09", "0x0A"),
        (10, "NV0A", "0x0B"),
        (255, "NVFF", "0x0100"),
    ] {
        assert_eq!(child_name(slot).as_deref(), Some(name));
        let block = format!("Device ({name})\n            {{\n                Name (_ADR, {adr})");
        assert!(asl.contains(&block), "missing {block:?}");
    }
    assert_eq!(asl.matches("Name (_ADR, ").count(), 256);
}

#[test]
fn child_names_are_valid_aml_names() {
    for slot in 0..MAX_SLOTS {
        let n = child_name(slot).unwrap();
        assert_eq!(n.len(), 4);
        assert!(
            n.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
            "{n}"
        );
    }
    assert_eq!(child_name(MAX_SLOTS), None);
}

#[test]
fn bad_parameters_are_errors_not_panics() {
    let oem = OemIds::qemu();
    assert_eq!(
        build_nvdimm_ssdt(257, MBOX, 0x0A18, &oem),
        Err(SsdtError::TooManySlots { slots: 257 })
    );
    assert_eq!(
        nvdr_aml(1, MBOX + 8, 0x0A18),
        Err(SsdtError::MailboxUnaligned { gpa: MBOX + 8 })
    );
    assert_eq!(
        nvdr_aml(1, 0xFFFF_F000, 0x0A18),
        Err(SsdtError::MailboxAbove4G { gpa: 0xFFFF_F000 })
    );
    let top = u32::try_from((1u64 << 32) - MAILBOX_SIZE as u64).unwrap();
    assert!(
        nvdr_aml(1, top, 0x0A18).is_ok(),
        "a mailbox ending exactly at 4 GiB is fine"
    );
    let msg = SsdtError::TooManySlots { slots: 300 }.to_string();
    assert!(msg.contains("300") && msg.contains("slots="), "{msg}");
    assert!(
        build_nvdimm_ssdt(0, MBOX, 0x0A18, &oem).is_ok(),
        "zero slots: NVDR only"
    );
}

/// Golden bytes of a 2-slot SSDT (mailbox 0x7FF00000, port 0x0A18, QEMU OEM ids). The file was
/// produced by this crate after the iasl/acpiexec tests above passed; any change to the AML
/// must be deliberate: regenerate with `PMVM_BLESS=1 cargo test -p nvdimm-acpi`.
#[test]
fn golden_two_slot_ssdt() {
    let table = build_nvdimm_ssdt(2, MBOX, 0x0A18, &OemIds::qemu()).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/ssdt_2slot.aml");
    if std::env::var_os("PMVM_BLESS").is_some() {
        std::fs::write(path, &table).unwrap();
    }
    let golden = std::fs::read(path).expect("tests/golden/ssdt_2slot.aml");
    assert_eq!(table.len(), golden.len(), "SSDT length changed");
    assert!(table == golden, "SSDT bytes changed");
    assert_eq!(&table[..4], b"SSDT");
    assert_eq!(
        u32::from_le_bytes(table[4..8].try_into().unwrap()) as usize,
        table.len()
    );
}
