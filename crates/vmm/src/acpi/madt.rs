//! The MADT: one local APIC per vCPU, the IOAPIC, the ISA IRQ 0 -> GSI 2 override (KVM's PIT
//! is wired to IOAPIC pin 2) and the LINT1 NMI. acpi_tables 0.2.1 has no override entry, so the
//! structures are typed here.

use acpi_tables::sdt::Sdt;
use zerocopy::{FromBytes, Immutable, IntoBytes};

use super::oem::{OEM_ID, OEM_REVISION, OEM_TABLE_ID};
use crate::arch::x86_64::layout::{IOAPIC_ADDR, LAPIC_ADDR};

#[repr(C, packed)]
#[derive(Clone, Copy, Default, IntoBytes, Immutable, FromBytes)]
struct LocalApic {
    kind: u8,
    length: u8,
    processor_uid: u8,
    apic_id: u8,
    flags: u32,
}

#[repr(C, packed)]
#[derive(Clone, Copy, Default, IntoBytes, Immutable, FromBytes)]
struct IoApic {
    kind: u8,
    length: u8,
    id: u8,
    reserved: u8,
    address: u32,
    gsi_base: u32,
}

#[repr(C, packed)]
#[derive(Clone, Copy, Default, IntoBytes, Immutable, FromBytes)]
struct InterruptOverride {
    kind: u8,
    length: u8,
    bus: u8,
    source: u8,
    gsi: u32,
    flags: u16,
}

#[repr(C, packed)]
#[derive(Clone, Copy, Default, IntoBytes, Immutable, FromBytes)]
struct LocalApicNmi {
    kind: u8,
    length: u8,
    processor_uid: u8,
    flags: u16,
    lint: u8,
}

const _: () = assert!(size_of::<LocalApic>() == 8);
const _: () = assert!(size_of::<IoApic>() == 12);
const _: () = assert!(size_of::<InterruptOverride>() == 10);
const _: () = assert!(size_of::<LocalApicNmi>() == 6);

/// MADT flag: the platform also has dual 8259 PICs.
const PCAT_COMPAT: u32 = 1;

/// Builds the MADT for `cpus` vCPUs.
pub fn build_madt(cpus: u32) -> Vec<u8> {
    let mut madt = Sdt::new(*b"APIC", 44, 5, OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    madt.write_u32(36, LAPIC_ADDR as u32);
    madt.write_u32(40, PCAT_COMPAT);
    for cpu in 0..cpus.min(255) {
        madt.append(LocalApic {
            kind: 0,
            length: 8,
            processor_uid: cpu as u8,
            apic_id: cpu as u8,
            flags: 1,
        });
    }
    madt.append(IoApic {
        kind: 1,
        length: 12,
        id: 0,
        reserved: 0,
        address: IOAPIC_ADDR as u32,
        gsi_base: 0,
    });
    madt.append(InterruptOverride {
        kind: 2,
        length: 10,
        bus: 0,
        source: 0,
        gsi: 2,
        flags: 0,
    });
    madt.append(LocalApicNmi {
        kind: 4,
        length: 6,
        processor_uid: 0xff,
        flags: 0,
        lint: 1,
    });
    madt.as_slice().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_two_cpus() {
        let m = build_madt(2);
        assert_eq!(m.len(), 44 + 2 * 8 + 12 + 10 + 6);
        assert_eq!(&m[0..4], b"APIC");
        assert_eq!(m.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
        assert_eq!(&m[36..44], &[0x00, 0x00, 0xe0, 0xfe, 1, 0, 0, 0]);
        assert_eq!(&m[44..52], &[0, 8, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&m[52..60], &[0, 8, 1, 1, 1, 0, 0, 0]);
        assert_eq!(
            &m[60..72],
            &[1, 12, 0, 0, 0x00, 0x00, 0xc0, 0xfe, 0, 0, 0, 0]
        );
        assert_eq!(&m[72..82], &[2, 10, 0, 0, 2, 0, 0, 0, 0, 0]);
        assert_eq!(&m[82..88], &[4, 6, 0xff, 0, 0, 1]);
    }
}
