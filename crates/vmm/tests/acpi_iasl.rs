//! pmvm's own ACPI tables (DSDT with every device fragment, FADT, MADT) disassemble with
//! ACPICA's iasl without errors, and the DSDT recompiles cleanly. Needs acpica-tools: the test
//! fails (it does not skip) when iasl is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use vmm::acpi::{aml_bytes, build_dsdt, build_fadt};
use vmm::devices::acpi_pm::AcpiPmAml;
use vmm::devices::memhp::MemoryHotplugAml;
use vmm::devices::serial::SerialAml;
use vmm::devices::virtio::mmio::VirtioMmioAml;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vmm-acpi-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn iasl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("iasl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("iasl not found ({e}): apt-get install acpica-tools (scripts/deps.sh)")
        });
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "iasl {args:?} failed:\n{log}");
    log
}

fn disassemble(dir: &Path, name: &str, table: &[u8], externals: &[&str]) -> String {
    std::fs::write(dir.join(format!("{name}.aml")), table).unwrap();
    let mut args: Vec<String> = Vec::new();
    for e in externals {
        args.push("-e".into());
        args.push(format!("{e}.aml"));
    }
    args.push("-d".into());
    args.push(format!("{name}.aml"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = iasl(dir, &args);
    assert!(!log.contains("Error"), "iasl -d {name}: {log}");
    std::fs::read_to_string(dir.join(format!("{name}.dsl"))).expect("disassembly")
}

#[test]
fn dsdt_with_every_device_disassembles_and_recompiles() {
    let dir = scratch("dsdt");
    let body = aml_bytes(&[
        &SerialAml,
        &MemoryHotplugAml { slots: 4 },
        &AcpiPmAml {
            nvdimm: true,
            memory_hotplug: true,
        },
        &VirtioMmioAml {
            index: 0,
            base: 0xe000_0000,
            gsi: 16,
        },
        &VirtioMmioAml {
            index: 1,
            base: 0xe000_1000,
            gsi: 17,
        },
    ]);
    let dsdt = build_dsdt(&body);
    let ssdt = nvdimm_acpi::build_nvdimm_ssdt(4, 0xfe00_0000, 0x0a18, &nvdimm_acpi::OemIds::qemu())
        .unwrap();
    std::fs::write(dir.join("ssdt.aml"), &ssdt).unwrap();
    let asl = disassemble(&dir, "dsdt", &dsdt, &["ssdt"]);
    for needle in [
        "Device (_SB.COM1)",
        "Device (_SB.PWRB)",
        "Device (_SB.GED)",
        "Method (_EVT, 1, Serialized)",
        "Notify (\\_SB.NVDR, 0x80)",
        "\\_SB.MHPC.MSCN ()",
        "Name (_S5, Package",
        "Device (_SB.MHPC)",
        "Device (MP03)",
        "Method (MCRS, 1, Serialized)",
        "PNP0C80",
        "Device (_SB.VR01)",
        "Name (_HID, \"LNRO0005\")",
        "Memory32Fixed (ReadWrite,",
        "0xE0001000,         // Address Base",
        "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )",
    ] {
        assert!(asl.contains(needle), "missing {needle:?} in:\n{asl}");
    }
    // The disassembly must compile again without errors (iasl's semantic checks).
    let log = iasl(&dir, &["-p", "recompiled", "dsdt.dsl"]);
    assert!(log.contains(" 0 Errors"), "recompile: {log}");
}

#[test]
fn fadt_and_madt_disassemble() {
    let dir = scratch("fadt");
    let fadt = build_fadt(0xe0100);
    let text = disassemble(&dir, "facp", &fadt, &[]);
    assert!(text.contains("Hardware Reduced (V5) : 1"), "{text}");
    assert!(text.contains("Reset Register Supported (V2) : 1"), "{text}");
    let madt = vmm::acpi::build_madt(2);
    let text = disassemble(&dir, "apic", &madt, &[]);
    assert!(text.contains("Interrupt Source Override"), "{text}");
    assert!(text.contains("Local Apic Address : FEE00000"), "{text}");
}
