//! The 36-byte ACPI system description table header, OEM identities and checksums.

use zerocopy::little_endian::U32;
use zerocopy::{Immutable, IntoBytes, KnownLayout};

/// Identity fields written into the headers of the tables this crate builds.
///
/// The defaults ([`OemIds::qemu`]) are QEMU's, so that tables (and golden tests) compare
/// byte for byte with QEMU's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OemIds {
    /// OEM ID (6 bytes, space padded), e.g. `*b"BOCHS "`.
    pub oem_id: [u8; 6],
    /// OEM table ID for the NFIT (8 bytes, space padded), e.g. `*b"BXPC    "`.
    /// The NVDIMM SSDT always uses [`crate::SSDT_OEM_TABLE_ID`] (`"NVDIMM  "`), like QEMU.
    pub oem_table_id: [u8; 8],
    /// OEM revision.
    pub oem_revision: u32,
    /// Creator (ASL compiler) ID, e.g. `*b"BXPC"`.
    pub creator_id: [u8; 4],
    /// Creator revision.
    pub creator_revision: u32,
}

impl OemIds {
    /// QEMU's identities: OEM `"BOCHS "`, table `"BXPC    "`, OEM revision 1, creator `"BXPC"` rev 1.
    pub const fn qemu() -> Self {
        OemIds {
            oem_id: *b"BOCHS ",
            oem_table_id: *b"BXPC    ",
            oem_revision: 1,
            creator_id: *b"BXPC",
            creator_revision: 1,
        }
    }
}

impl Default for OemIds {
    fn default() -> Self {
        Self::qemu()
    }
}

/// Standard ACPI table header (ACPI 6.5 §5.2.6), 36 bytes.
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, IntoBytes, Immutable, KnownLayout)]
pub(crate) struct SdtHeader {
    pub signature: [u8; 4],
    pub length: U32,
    pub revision: u8,
    pub checksum: u8,
    pub oem_id: [u8; 6],
    pub oem_table_id: [u8; 8],
    pub oem_revision: U32,
    pub creator_id: [u8; 4],
    pub creator_revision: U32,
}
const _: () = assert!(size_of::<SdtHeader>() == 36);

/// Offset of the checksum byte in the header.
const CHECKSUM_OFFSET: usize = 9;

/// Builds a complete table: header (with `table_id`), then `body`, length and checksum filled in.
pub(crate) fn build_table(
    signature: [u8; 4],
    revision: u8,
    oem: &OemIds,
    table_id: [u8; 8],
    body: &[u8],
) -> Vec<u8> {
    let total = size_of::<SdtHeader>() + body.len();
    let header = SdtHeader {
        signature,
        // Tables built here are at most a few hundred KiB (bounded by the slot count), far below
        // 4 GiB; saturate rather than wrap if that ever changes.
        length: U32::new(u32::try_from(total).unwrap_or(u32::MAX)),
        revision,
        checksum: 0,
        oem_id: oem.oem_id,
        oem_table_id: table_id,
        oem_revision: U32::new(oem.oem_revision),
        creator_id: oem.creator_id,
        creator_revision: U32::new(oem.creator_revision),
    };
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body);
    out[CHECKSUM_OFFSET] = checksum_fix(&out);
    out
}

/// The byte that makes the 8-bit sum of `bytes` (with that byte counted as 0) zero.
fn checksum_fix(bytes: &[u8]) -> u8 {
    let sum = bytes.iter().fold(0u8, |acc, b| acc.wrapping_add(*b));
    0u8.wrapping_sub(sum)
}

/// True if the 8-bit sum of all bytes of `table` is zero (a valid ACPI table checksum).
pub fn checksum_ok(table: &[u8]) -> bool {
    table.iter().fold(0u8, |acc, b| acc.wrapping_add(*b)) == 0
}
