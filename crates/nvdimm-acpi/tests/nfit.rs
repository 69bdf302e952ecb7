//! NFIT/FIT: QEMU golden table byte for byte, identities, and the hotplug rule.

use nvdimm_acpi::nfit::{DEVICE_FIT_SIZE, NFIT_HEADER_SIZE, caps_entry};
use nvdimm_acpi::{
    NvdimmAcpiInfo, OemIds, Persistence, build_fit, build_nfit, checksum_ok, device_fit_entries,
};
use proptest::prelude::*;

/// `tests/data/acpi/x86/pc/NFIT.dimmpxm` from QEMU, as transcribed in qemu-nvdimm.md §3.7.
const QEMU_NFIT_DIMMPXM: &str = "\
4e46 4954 f000 0000 01d5 424f 4348 5320 \
4258 5043 2020 2020 0100 0000 4258 5043 \
0100 0000 0000 0000 0000 3800 0400 0300 \
0000 0000 0200 0000 79d3 f066 f3b4 7440 \
ac43 0d33 18b7 8cdb 0000 0008 0100 0000 \
0000 0008 0000 0000 0880 0000 0000 0000 \
0100 3000 0200 0000 0000 0000 0400 0500 \
0000 0008 0000 0000 0000 0000 0000 0000 \
0000 0000 0000 0000 0000 0100 0000 0000 \
0400 5000 0500 8680 0100 0100 0000 0000 \
0000 0000 0000 0000 5734 1200 0103 0000 \
0000 0000 0000 0000 0000 0000 0000 0000 \
0000 0000 0000 0000 0000 0000 0000 0000 \
0000 0000 0000 0000 0000 0000 0000 0000 \
0700 1000 0100 0000 0300 0000 0000 0000";

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn dimm(slot: u32) -> NvdimmAcpiInfo {
    NvdimmAcpiInfo {
        slot,
        gpa: 0x1_0800_0000,
        pmem_size: 0x0800_0000,
        node: 2,
        unarmed: false,
    }
}

#[test]
fn reproduces_qemu_nfit_dimmpxm() {
    let golden = hex(QEMU_NFIT_DIMMPXM);
    assert_eq!(golden.len(), 240);
    let fit = build_fit(&[dimm(1)], Some(Persistence::Cpu));
    let nfit = build_nfit(&fit, &OemIds::qemu());
    assert_eq!(nfit.len(), 240);
    for (i, (a, b)) in nfit.iter().zip(&golden).enumerate() {
        assert_eq!(a, b, "byte {i:#x} differs: ours {a:#04x}, QEMU {b:#04x}");
    }
    assert!(checksum_ok(&nfit));
    assert_eq!(&nfit[NFIT_HEADER_SIZE..], &fit[..]);
}

#[test]
fn identities_follow_the_slot() {
    let d = NvdimmAcpiInfo {
        slot: 0,
        gpa: 0x1_0000_0000,
        pmem_size: 0x4000_0000,
        node: 0,
        unarmed: true,
    };
    let e = device_fit_entries(&d);
    assert_eq!(e.len(), DEVICE_FIT_SIZE);
    assert_eq!(e.len(), 184);
    let u16_at = |o: usize| u16::from_le_bytes([e[o], e[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(e[o..o + 4].try_into().unwrap());
    // SPA index 2, MemDev handle 1 / SPA 2 / DCR 3 / flags NOT_ARMED, DCR index 3, serial.
    assert_eq!(u16_at(4), 2);
    assert_eq!(u32_at(56 + 4), 1);
    assert_eq!((u16_at(56 + 12), u16_at(56 + 14)), (2, 3));
    assert_eq!(u16_at(56 + 44), 0x8);
    assert_eq!(u16_at(104 + 4), 3);
    assert_eq!(u16_at(104 + 6), 0x8086);
    assert_eq!(u32_at(104 + 24), 0x123456);
    assert_eq!(u16_at(104 + 28), 0x0301);
    // Linux's id string is be16(vendor)-be32(serial): "8680-56341200" for slot 0.
    let id = format!(
        "{:04x}-{:08x}",
        u16_at(104 + 6).swap_bytes(),
        u32_at(104 + 24).swap_bytes()
    );
    assert_eq!(id, "8680-56341200");
}

#[test]
fn persistence_parses_and_builds_caps() {
    assert_eq!("cpu".parse::<Persistence>(), Ok(Persistence::Cpu));
    assert_eq!("mem-ctrl".parse::<Persistence>(), Ok(Persistence::MemCtrl));
    let err = "flush".parse::<Persistence>().unwrap_err().to_string();
    assert!(
        err.contains("nvdimm-persistence=flush") && err.contains("mem-ctrl"),
        "{err}"
    );
    assert_eq!(
        caps_entry(Persistence::Cpu),
        hex("0700 1000 0100 0000 0300 0000 0000 0000")
    );
    assert_eq!(
        caps_entry(Persistence::MemCtrl),
        hex("0700 1000 0100 0000 0200 0000 0000 0000")
    );
    assert_eq!(Persistence::MemCtrl.to_string(), "mem-ctrl");
    assert_eq!(build_fit(&[], None), Vec::<u8>::new());
}

fn arb_dimm() -> impl Strategy<Value = NvdimmAcpiInfo> {
    (
        0u32..256,
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        any::<bool>(),
    )
        .prop_map(|(slot, gpa, pmem_size, node, unarmed)| NvdimmAcpiInfo {
            slot,
            gpa,
            pmem_size,
            node,
            unarmed,
        })
}

proptest! {
    /// Hotplug rule: adding devices never changes the bytes of devices already in the FIT;
    /// structure lengths walk the FIT exactly; the NFIT checksum is valid.
    #[test]
    fn fit_is_append_only(
        before in proptest::collection::vec(arb_dimm(), 0..8),
        added in proptest::collection::vec(arb_dimm(), 1..8),
        caps in proptest::option::of(prop_oneof![Just(Persistence::Cpu), Just(Persistence::MemCtrl)]),
    ) {
        let all: Vec<_> = before.iter().chain(&added).copied().collect();
        let fit = build_fit(&all, caps);
        let caps_len = if caps.is_some() { 16 } else { 0 };
        prop_assert_eq!(fit.len(), all.len() * DEVICE_FIT_SIZE + caps_len);
        for (i, d) in all.iter().enumerate() {
            let at = i * DEVICE_FIT_SIZE;
            prop_assert_eq!(&fit[at..at + DEVICE_FIT_SIZE], &device_fit_entries(d)[..]);
        }
        let old = build_fit(&before, caps);
        prop_assert_eq!(&fit[..before.len() * DEVICE_FIT_SIZE], &old[..before.len() * DEVICE_FIT_SIZE]);
        // Walk by the Length fields: SPA/MemDev/DCR per device, then caps.
        let mut off = 0;
        let mut types = Vec::new();
        while off < fit.len() {
            let len = usize::from(u16::from_le_bytes([fit[off + 2], fit[off + 3]]));
            types.push(u16::from_le_bytes([fit[off], fit[off + 1]]));
            prop_assert!(len > 0);
            off += len;
        }
        prop_assert_eq!(off, fit.len());
        let mut want: Vec<u16> = all.iter().flat_map(|_| [0u16, 1, 4]).collect();
        if caps.is_some() { want.push(7); }
        prop_assert_eq!(types, want);
        let nfit = build_nfit(&fit, &OemIds::qemu());
        prop_assert!(checksum_ok(&nfit));
        prop_assert_eq!(u32::from_le_bytes(nfit[4..8].try_into().unwrap()) as usize, nfit.len());
        prop_assert_eq!(nfit.len(), NFIT_HEADER_SIZE + fit.len());
    }
}
