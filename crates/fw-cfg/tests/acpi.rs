//! The table loader end to end: build_acpi's files and script, run by the interpreter at
//! arbitrary bases, give a valid ACPI table set.

use fw_cfg::acpi::{AcpiBlobs, AcpiTableSet, build_acpi};
use fw_cfg::interp::{self, Zones, check_acpi};
use fw_cfg::table_loader::{self, ACPI_RSDP_FILE, ACPI_TABLES_FILE, Command, LOADER_FILE};
use fw_cfg::{FwCfg, VecMem, sum8};
use proptest::prelude::*;

fn table(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; 36];
    t[0..4].copy_from_slice(sig);
    t[4..8].copy_from_slice(&((36 + body.len()) as u32).to_le_bytes());
    t[8] = 2;
    t[9] = 0x5a; // a wrong checksum: build_acpi must fix it
    t[10..16].copy_from_slice(b"PMVM  ");
    t.extend_from_slice(body);
    t
}

fn fadt(len: usize) -> Vec<u8> {
    let mut f = table(b"FACP", &vec![0u8; len - 36]);
    // Stale host addresses in the pointer fields: build_acpi must overwrite them.
    f[36..44].fill(0xee);
    if len >= 148 {
        f[132..148].fill(0xee);
    }
    f
}

fn facs() -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[0..4].copy_from_slice(b"FACS");
    f[4] = 64;
    f
}

fn run(blobs: &AcpiBlobs, zones: Zones) -> interp::Loaded {
    let files = |n: &str| match n {
        ACPI_TABLES_FILE => Some(blobs.tables.clone()),
        ACPI_RSDP_FILE => Some(blobs.rsdp.clone()),
        _ => None,
    };
    interp::run(&blobs.loader.to_bytes(), files, zones).unwrap()
}

/// Table bytes with the fields build_acpi rewrites masked out.
fn masked(t: &[u8]) -> Vec<u8> {
    let mut t = t.to_vec();
    t[9] = 0;
    if &t[0..4] == b"FACP" {
        t[36..44].fill(0);
        if t.len() >= 148 {
            t[132..148].fill(0);
        }
    }
    t
}

#[test]
fn qemu_like_set_at_default_bases() {
    let mut set = AcpiTableSet::new(*b"PMVM  ", *b"PMVMACPI", 1);
    set.dsdt = Some(table(b"DSDT", b"\x10\x05_SB_"));
    set.fadt = Some(fadt(276));
    set.tables.push(table(b"APIC", &[0u8; 8]));
    set.tables.push(table(b"SSDT", &[1u8; 3]));
    let blobs = build_acpi(&set).unwrap();
    let loaded = run(&blobs, Zones::default());
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let view = check_acpi(&loaded).unwrap();
    assert_eq!(view.rsdp_addr, 0xf_0000);
    let sigs: Vec<_> = view.entries.iter().map(|t| t.signature).collect();
    assert_eq!(sigs, [*b"FACP", *b"APIC", *b"SSDT"]);
    let dsdt = view.dsdt.unwrap();
    assert_eq!(view.dsdt32, dsdt.addr, "SeaBIOS needs FADT.DSDT");
    assert_eq!(masked(&dsdt.bytes), masked(set.dsdt.as_ref().unwrap()));
    assert!(view.facs.is_none());
    // Script shape: 2 allocations, FADT DSDT + X_DSDT, 3 XSDT entries, RSDP pointer,
    // 5 table checksums (DSDT, FADT, APIC, SSDT, XSDT), 2 RSDP checksums.
    let c = blobs.loader.commands();
    assert_eq!(c.len(), 2 + 2 + 3 + 1 + 5 + 2);
    assert!(
        matches!(&c[0], Command::Allocate { file, align: 64, zone: 1 } if file == ACPI_TABLES_FILE)
    );
    assert!(
        matches!(&c[1], Command::Allocate { file, align: 16, zone: 2 } if file == ACPI_RSDP_FILE)
    );
    assert_eq!(blobs.loader.to_bytes().len(), c.len() * 128);

    // Installing publishes the three files.
    let mut fw = FwCfg::new(VecMem::new(0, 16));
    blobs.install(&mut fw).unwrap();
    assert_eq!(fw.file(ACPI_TABLES_FILE), Some(&blobs.tables[..]));
    assert_eq!(fw.file(LOADER_FILE).map(<[u8]>::len), Some(c.len() * 128));
}

#[test]
fn facs_is_first_and_64_aligned_and_32bit_dsdt_optional() {
    let mut set = AcpiTableSet::new(*b"PMVM  ", *b"PMVMACPI", 1);
    set.facs = Some(facs());
    set.dsdt = Some(table(b"DSDT", &[]));
    set.fadt = Some(fadt(244));
    set.dsdt_32bit = false;
    let blobs = build_acpi(&set).unwrap();
    assert_eq!(blobs.layout.facs, Some(0));
    let zones = Zones {
        high_base: 0x3fff_0001,
        high_limit: 0x4000_0000,
        ..Zones::default()
    };
    let loaded = run(&blobs, zones);
    let view = check_acpi(&loaded).unwrap();
    let facs = view.facs.unwrap();
    assert_eq!(facs.addr % 64, 0);
    assert_eq!(&facs.bytes[..4], b"FACS");
    assert_eq!(view.dsdt32, 0);
    assert!(view.dsdt.is_some());
    let f = &view.entries[0].bytes;
    assert_eq!(
        &f[132..140],
        &[0; 8],
        "X_FIRMWARE_CTRL stays 0 when FIRMWARE_CTRL is set"
    );
}

#[test]
fn acpi1_fadt_gets_32bit_dsdt() {
    let mut set = AcpiTableSet::new(*b"PMVM  ", *b"PMVMACPI", 1);
    set.dsdt = Some(table(b"DSDT", &[]));
    set.fadt = Some(fadt(116));
    set.dsdt_32bit = false;
    let blobs = build_acpi(&set).unwrap();
    let view = check_acpi(&run(&blobs, Zones::default())).unwrap();
    assert_eq!(view.dsdt.unwrap().addr, view.dsdt32);
}

#[test]
fn malformed_sets_are_refused() {
    let base = AcpiTableSet::new(*b"PMVM  ", *b"PMVMACPI", 1);
    let mut s = base.clone();
    s.dsdt = Some(table(b"DSDT", &[]));
    assert!(build_acpi(&s).is_err(), "DSDT without FADT");
    let mut s = base.clone();
    let mut t = table(b"SSDT", &[0; 4]);
    t[4] = 99;
    s.tables.push(t);
    assert!(build_acpi(&s).is_err(), "length field mismatch");
    let mut s = base.clone();
    s.tables.push(table(b"XSDT", &[]));
    assert!(build_acpi(&s).is_err());
    let mut s = base.clone();
    s.fadt = Some(table(b"APIC", &[0; 20]));
    assert!(build_acpi(&s).is_err(), "wrong FADT signature");
    let mut s = base;
    s.tables.push(vec![0; 10]);
    assert!(build_acpi(&s).is_err(), "short table");
}

#[test]
fn interpreter_rejects_like_seabios() {
    let mut l = table_loader::TableLoader::new();
    l.allocate("a", 16, table_loader::Zone::High).unwrap();
    l.add_pointer("a", "a", 6, 4).unwrap(); // runs past the 8-byte file
    l.add_checksum("a", 8, 0, 8).unwrap(); // offset past the end
    l.add_checksum("a", 0, 4, u32::MAX).unwrap(); // range wraps
    l.write_pointer("w", 0, 2, "a", 0).unwrap(); // 0x7ff00000 does not fit 2 bytes
    l.write_pointer("w", 0, 4, "a", 0).unwrap();
    let mut script = l.to_bytes();
    script.extend_from_slice(&table_loader::encode(&Command::Unknown(77)));
    let files = |n: &str| match n {
        "a" | "w" => Some(vec![0u8; 8]),
        _ => None,
    };
    let out = interp::run(&script, files, Zones::default()).unwrap();
    let bad: Vec<usize> = out.errors.iter().map(|e| e.0).collect();
    assert_eq!(bad, [1, 2, 3, 4]);
    assert_eq!(out.write_pointers.len(), 1);
    assert_eq!(out.write_pointers[0].value, 0x7ff0_0000);
}

fn arb_table() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![
            *b"APIC", *b"SSDT", *b"NFIT", *b"HPET", *b"MCFG", *b"SRAT",
        ]),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(sig, body)| table(&sig, &body))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_set_at_any_base_is_valid(
        with_facs in any::<bool>(),
        with_fadt in any::<bool>(),
        with_dsdt in any::<bool>(),
        fadt_len in prop::sample::select(vec![116usize, 148, 244, 276]),
        dsdt_body in prop::collection::vec(any::<u8>(), 0..500),
        tables in prop::collection::vec(arb_table(), 0..8),
        high in 0x10_0000u64..0xfff0_0000,
        fseg in 0u64..0xff00,
        dsdt_32bit in any::<bool>(),
    ) {
        let mut set = AcpiTableSet::new(*b"PMVM  ", *b"PMVMPROP", 7);
        set.fadt = with_fadt.then(|| fadt(fadt_len));
        set.dsdt = (with_fadt && with_dsdt).then(|| table(b"DSDT", &dsdt_body));
        set.facs = (with_fadt && with_facs).then(facs);
        set.tables = tables.clone();
        set.dsdt_32bit = dsdt_32bit;
        let blobs = build_acpi(&set).unwrap();
        let zones = Zones {
            high_base: high,
            high_limit: high + 0x10_0000,
            fseg_base: 0xf_0000 + fseg,
            fseg_limit: 0x10_0000,
        };
        let loaded = run(&blobs, zones);
        prop_assert!(loaded.errors.is_empty());
        let view = check_acpi(&loaded).unwrap();
        prop_assert_eq!(view.rsdp_addr % 16, 0);
        prop_assert!(view.rsdp_addr >= zones.fseg_base);
        // XSDT lists the FADT, then the tables in order, each intact but for checksums.
        let mut want: Vec<Vec<u8>> = set.fadt.iter().cloned().collect();
        want.extend(tables);
        prop_assert_eq!(view.entries.len(), want.len());
        for (got, want) in view.entries.iter().zip(&want) {
            prop_assert_eq!(masked(&got.bytes), masked(want));
            prop_assert_eq!(sum8(&got.bytes), 0);
        }
        match &set.dsdt {
            Some(d) => {
                let got = view.dsdt.as_ref().unwrap();
                prop_assert_eq!(masked(&got.bytes), masked(d));
                let want32 = dsdt_32bit || fadt_len < 148;
                prop_assert_eq!(view.dsdt32, if want32 { got.addr } else { 0 });
            }
            None => prop_assert!(view.dsdt.is_none()),
        }
        prop_assert_eq!(view.facs.is_some(), set.facs.is_some());
        if let Some(f) = &view.facs {
            prop_assert_eq!(f.addr % 64, 0);
        }
    }

    #[test]
    fn hostile_scripts_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        fw_cfg::fuzz_loader_script(&data);
    }

    #[test]
    fn hostile_mutations_of_a_real_script_never_panic(
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..16),
    ) {
        let mut set = AcpiTableSet::new(*b"PMVM  ", *b"PMVMPROP", 7);
        set.fadt = Some(fadt(276));
        set.dsdt = Some(table(b"DSDT", &[]));
        let blobs = build_acpi(&set).unwrap();
        let mut script = blobs.loader.to_bytes();
        for (at, v) in flips {
            let n = script.len();
            script[at % n] ^= v;
        }
        fw_cfg::fuzz_loader_script(&script);
    }
}
