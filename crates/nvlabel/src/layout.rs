//! Slot arithmetic: index block size and number of label slots for an LSA size.
//!
//! Mirrors the sizing rules of Linux `drivers/nvdimm/label.c` and ndctl's copy
//! (see docs/labels.md): `I(n) = align_up(72 + ceil(n/8), 256)`,
//! `nslot = (lsa - 2 * 256 * (I(lsa/ls) / 256)) / ls`, index size = `I(nslot)`,
//! valid when `2 * I(nslot) <= lsa - nslot * ls` and `nslot >= 2`.

/// Size of the fixed index block header (`struct nd_namespace_index` without the bitmap).
pub const INDEX_HEADER_SIZE: usize = 72;
/// Index blocks are padded to a multiple of this (`NSINDEX_ALIGN`).
pub const NSINDEX_ALIGN: usize = 256;
/// Smallest label storage area Linux accepts (`ND_LABEL_MIN_SIZE`): 2 index blocks + 2 labels.
pub const LABEL_AREA_MIN_SIZE: usize = 1024;
/// Signature at the start of every index block.
pub const NSINDEX_SIGNATURE: [u8; 16] = *b"NAMESPACE_INDEX\0";

/// Label format version; it fixes the label size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LabelVersion {
    /// Index minor 1, 128-byte labels (ndctl init-labels default).
    V1_1,
    /// Index minor 2, 256-byte labels with checksum, type and abstraction GUIDs
    /// (what the Linux kernel writes on a blank area).
    V1_2,
}

impl LabelVersion {
    /// Size in bytes of one label slot.
    pub const fn label_size(self) -> usize {
        match self {
            LabelVersion::V1_1 => 128,
            LabelVersion::V1_2 => 256,
        }
    }

    /// Index block `minor` field written for this version (major is always 1).
    pub const fn minor(self) -> u16 {
        match self {
            LabelVersion::V1_1 => 1,
            LabelVersion::V1_2 => 2,
        }
    }

    /// The version whose labels are `label_size` bytes, if any.
    pub const fn from_label_size(label_size: usize) -> Option<LabelVersion> {
        match label_size {
            128 => Some(LabelVersion::V1_1),
            256 => Some(LabelVersion::V1_2),
            _ => None,
        }
    }
}

impl std::fmt::Display for LabelVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LabelVersion::V1_1 => "1.1",
            LabelVersion::V1_2 => "1.2",
        })
    }
}

impl std::str::FromStr for LabelVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "1.1" | "v1.1" => Ok(LabelVersion::V1_1),
            "1.2" | "v1.2" => Ok(LabelVersion::V1_2),
            other => Err(format!("unknown label version {other:?}: use 1.1 or 1.2")),
        }
    }
}

/// Index block size needed to describe `nslot` slots: `align_up(72 + ceil(nslot/8), 256)`.
pub const fn index_size_for_slots(nslot: u64) -> u64 {
    let raw = INDEX_HEADER_SIZE as u64 + nslot.div_ceil(8);
    raw.div_ceil(NSINDEX_ALIGN as u64) * NSINDEX_ALIGN as u64
}

/// Number of label slots an LSA of `lsa_size` bytes holds with `label_size`-byte
/// labels (`nvdimm_num_label_slots`). Zero when `label_size` is zero or the
/// area is too small for the index blocks. Not validated; see [`geometry`].
pub fn num_label_slots(lsa_size: u64, label_size: u64) -> u64 {
    if label_size == 0 {
        return 0;
    }
    let tmp = lsa_size / label_size;
    let n = index_size_for_slots(tmp) / NSINDEX_ALIGN as u64;
    lsa_size.saturating_sub(2 * NSINDEX_ALIGN as u64 * n) / label_size
}

/// Size of one index block for this LSA and label size (`sizeof_namespace_index`),
/// or `None` when the area is too small to host two index blocks and two labels.
pub fn sizeof_namespace_index(lsa_size: u64, label_size: u64) -> Option<u64> {
    let nslot = num_label_slots(lsa_size, label_size);
    let space = lsa_size.checked_sub(nslot.checked_mul(label_size)?)?;
    let size = index_size_for_slots(nslot) * 2;
    (size <= space && nslot >= 2).then_some(size / 2)
}

/// The derived layout of a label storage area for one label size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Total LSA size in bytes.
    pub lsa_size: u64,
    /// Label slot size (128 or 256).
    pub label_size: u64,
    /// Size of each of the two index blocks.
    pub index_size: u64,
    /// Offset of label slot 0 (`2 * index_size`).
    pub label_offset: u64,
    /// Number of label slots.
    pub nslot: u32,
}

impl Geometry {
    /// Offset of slot `slot` inside the LSA.
    pub fn slot_offset(&self, slot: u32) -> u64 {
        self.label_offset + u64::from(slot) * self.label_size
    }

    /// Bytes of the free bitmap that cover `nslot` slots.
    pub fn bitmap_bytes(&self) -> u64 {
        u64::from(self.nslot).div_ceil(8)
    }
}

/// Layout of an LSA of `lsa_size` bytes holding `label_size`-byte labels, or
/// `None` if the area is too small (minimum 1024 bytes for 256-byte labels).
pub fn geometry(lsa_size: u64, label_size: u64) -> Option<Geometry> {
    let index_size = sizeof_namespace_index(lsa_size, label_size)?;
    let nslot = u32::try_from(num_label_slots(lsa_size, label_size)).ok()?;
    Some(Geometry {
        lsa_size,
        label_size,
        index_size,
        label_offset: 2 * index_size,
        nslot,
    })
}

/// Next sequence number (`nd_inc_seq`): 1 -> 2 -> 3 -> 1, 0 stays 0.
pub const fn inc_seq(seq: u32) -> u32 {
    match seq & 3 {
        1 => 2,
        2 => 3,
        3 => 1,
        _ => 0,
    }
}

/// The kernel's `best_seq`: which of two sequence numbers (low 2 bits) is newer.
pub const fn best_seq(a: u32, b: u32) -> u32 {
    let a = a & 3;
    let b = b & 3;
    if a == 0 || a == b {
        b
    } else if b == 0 {
        a
    } else if inc_seq(a) == b {
        b
    } else {
        a
    }
}
