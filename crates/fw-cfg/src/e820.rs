//! The `etc/e820` file: the guest's memory map as the firmware should report it.
//!
//! SeaBIOS (`src/fw/paravirt.c`, `qemu_early_e820`) reads this file before anything else
//! and, when it is present, takes RAM and reserved ranges from it instead of probing CMOS.
//! The format is QEMU's (`hw/i386/e820_memory_layout.h`): a packed array of 20-byte
//! entries {le64 address, le64 length, le32 type}, with no count (the directory gives the
//! file size).

/// Memory usable by the OS.
pub const E820_RAM: u32 = 1;
/// Reserved (firmware, MMIO holes the OS must not use as RAM).
pub const E820_RESERVED: u32 = 2;
/// ACPI tables the OS may reclaim after reading them.
pub const E820_ACPI: u32 = 3;
/// ACPI non-volatile storage.
pub const E820_NVS: u32 = 4;
/// Unusable memory.
pub const E820_UNUSABLE: u32 = 5;
/// Persistent memory (ACPI 6 type 7).
pub const E820_PMEM: u32 = 7;

/// Bytes of one entry.
pub const ENTRY_LEN: usize = 20;

/// One e820 range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub len: u64,
    pub kind: u32,
}

impl E820Entry {
    pub fn new(addr: u64, len: u64, kind: u32) -> Self {
        Self { addr, len, kind }
    }
}

/// The `etc/e820` bytes for `entries`, in the given order.
pub fn encode(entries: &[E820Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY_LEN);
    for e in entries {
        out.extend_from_slice(&e.addr.to_le_bytes());
        out.extend_from_slice(&e.len.to_le_bytes());
        out.extend_from_slice(&e.kind.to_le_bytes());
    }
    out
}

/// Parses `etc/e820` bytes; `None` when the length is not a multiple of 20.
pub fn decode(bytes: &[u8]) -> Option<Vec<E820Entry>> {
    if !bytes.len().is_multiple_of(ENTRY_LEN) {
        return None;
    }
    let le64 = |b: &[u8]| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        u64::from_le_bytes(a)
    };
    Some(
        bytes
            .chunks_exact(ENTRY_LEN)
            .map(|c| E820Entry {
                addr: le64(&c[0..8]),
                len: le64(&c[8..16]),
                kind: u32::from_le_bytes([c[16], c[17], c[18], c[19]]),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_two_entries() {
        let bytes = encode(&[
            E820Entry::new(0, 0x9fc00, E820_RAM),
            E820Entry::new(0x1_0000_0000, 0x4000_0000, E820_PMEM),
        ]);
        let want: Vec<u8> = [
            &[0u8; 8][..],
            &[0x00, 0xfc, 0x09, 0, 0, 0, 0, 0],
            &[1, 0, 0, 0],
            &[0, 0, 0, 0, 1, 0, 0, 0],
            &[0, 0, 0, 0x40, 0, 0, 0, 0],
            &[7, 0, 0, 0],
        ]
        .concat();
        assert_eq!(bytes, want);
        assert_eq!(decode(&bytes).unwrap().len(), 2);
        assert_eq!(decode(&bytes[..19]), None);
    }
}
