//! Reading a label storage area the way the Linux kernel does.

use crate::index::{IndexHeader, IndexProblem, bit_is_set, validate_index};
use crate::label::{Label, label_checksum_ok};
use crate::layout::{Geometry, INDEX_HEADER_SIZE, LabelVersion, best_seq, geometry};

/// A validated index block: header plus its bitmap bytes (offset 72 up to the block end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexBlock {
    /// Decoded header.
    pub header: IndexHeader,
    /// Bytes 72..index_size of the block: the free bitmap and its zero padding.
    pub free: Vec<u8>,
}

impl IndexBlock {
    /// Whether `slot` is marked free (bit set). Slots `>= nslot` are never free.
    pub fn is_free(&self, slot: u32) -> bool {
        slot < self.header.nslot && bit_is_set(&self.free, slot)
    }

    /// Number of free slots below `nslot` (`nd_label_nfree`).
    pub fn nfree(&self) -> u32 {
        (0..self.header.nslot)
            .filter(|&s| bit_is_set(&self.free, s))
            .count() as u32
    }

    /// Slots below `nslot` whose free bit is clear, in increasing order.
    pub fn used_slots(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.header.nslot).filter(|&s| !bit_is_set(&self.free, s))
    }

    /// Bitmap bits at or above `nslot` that are set (Linux leaves them clear;
    /// ndctl's init sets whole 64-bit words).
    pub fn stray_bits(&self) -> u32 {
        let total = (self.free.len() as u64 * 8).min(u64::from(u32::MAX)) as u32;
        (self.header.nslot..total)
            .filter(|&s| bit_is_set(&self.free, s))
            .count() as u32
    }
}

/// A label the current index marks in use and that passes the kernel's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveLabel {
    /// Slot it is stored in.
    pub slot: u32,
    /// Decoded label.
    pub label: Label,
}

/// Why an in-use slot does not hold an acceptable label (the kernel skips it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LabelProblem {
    /// The label's `slot` field names another slot.
    #[error("slot field says {found}")]
    SlotMismatch {
        /// Value of the slot field.
        found: u32,
    },
    /// `dpa` or `rawsize` is not a multiple of 4 KiB.
    #[error("dpa {dpa:#x} / rawsize {rawsize:#x} not 4 KiB aligned")]
    Unaligned {
        /// Stored dpa.
        dpa: u64,
        /// Stored rawsize.
        rawsize: u64,
    },
    /// v1.2 label checksum mismatch.
    #[error("label checksum {stored:#018x} does not match computed {computed:#018x}")]
    BadChecksum {
        /// Stored value.
        stored: u64,
        /// Computed value.
        computed: u64,
    },
}

/// An in-use slot whose label the kernel would ignore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedLabel {
    /// Slot number.
    pub slot: u32,
    /// What is wrong (every problem found).
    pub problems: Vec<LabelProblem>,
}

/// A parsed label storage area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelArea {
    /// Layout derived from the LSA size and the detected label size.
    pub geometry: Geometry,
    /// Label format (from the label size that validated).
    pub version: LabelVersion,
    /// Which block (0 or 1) is current, chosen by `best_seq`.
    pub current: usize,
    /// The current index block.
    pub current_index: IndexBlock,
    /// The other block, if it is valid too.
    pub other_index: Option<IndexBlock>,
    /// Labels in use and valid, in slot order.
    pub labels: Vec<ActiveLabel>,
    /// In-use slots whose contents the kernel would skip.
    pub rejected: Vec<RejectedLabel>,
}

impl LabelArea {
    /// The block the next update writes (`1 - current`).
    pub fn next(&self) -> usize {
        1 - self.current
    }

    /// Free slots in the current index (the kernel's in-memory next index is a copy of it).
    pub fn nfree(&self) -> u32 {
        self.current_index.nfree()
    }

    /// What Linux shows in `available_slots`: one free slot is always held back.
    pub fn available_slots(&self) -> u32 {
        self.nfree().saturating_sub(1)
    }
}

/// Why [`parse`] found no labels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Smaller than the minimum LSA (two index blocks and two 256-byte labels).
    #[error("label area is {0} bytes; the minimum is 1024 (use label-size of at least 128K)")]
    TooSmall(usize),
    /// Neither block validates with 128- nor 256-byte labels.
    #[error("no valid namespace index block (the area is not initialised or is damaged)")]
    NoValidIndex,
}

/// Parse an LSA: probe 128- then 256-byte labels, validate both index
/// blocks, pick the current one with `best_seq`, and collect the labels the
/// current free bitmap marks in use.
pub fn parse(area: &[u8]) -> Result<LabelArea, ParseError> {
    if area.len() < crate::layout::LABEL_AREA_MIN_SIZE {
        return Err(ParseError::TooSmall(area.len()));
    }
    for version in [LabelVersion::V1_1, LabelVersion::V1_2] {
        if let Some(a) = parse_with(area, version) {
            return Ok(a);
        }
    }
    Err(ParseError::NoValidIndex)
}

fn read_block(area: &[u8], geo: &Geometry, i: usize) -> Option<IndexBlock> {
    let isz = geo.index_size as usize;
    let raw = area.get(i * isz..(i + 1) * isz)?;
    Some(IndexBlock {
        header: IndexHeader::decode(raw)?,
        free: raw.get(INDEX_HEADER_SIZE..)?.to_vec(),
    })
}

/// Parse assuming one label version; `None` if no index block validates with it.
pub fn parse_with(area: &[u8], version: LabelVersion) -> Option<LabelArea> {
    let ls = version.label_size() as u64;
    let geo = geometry(area.len() as u64, ls)?;
    let mut blocks = [None, None];
    for (i, slot) in blocks.iter_mut().enumerate() {
        if validate_index(area, i, ls).is_empty() {
            *slot = read_block(area, &geo, i);
        }
    }
    let current = match (&blocks[0], &blocks[1]) {
        (None, None) => return None,
        (Some(_), None) => 0,
        (None, Some(_)) => 1,
        (Some(a), Some(b)) => {
            let best = best_seq(a.header.seq, b.header.seq);
            usize::from(best == b.header.seq & 3)
        }
    };
    let [b0, b1] = blocks;
    let (cur, other) = if current == 0 { (b0, b1) } else { (b1, b0) };
    let current_index = cur?;
    let mut out = LabelArea {
        geometry: geo,
        version,
        current,
        current_index,
        other_index: other,
        labels: Vec::new(),
        rejected: Vec::new(),
    };
    let used: Vec<u32> = out.current_index.used_slots().collect();
    for slot in used {
        let Some(raw) = slot_bytes(area, &geo, slot) else {
            continue;
        };
        let Some(label) = Label::decode(raw) else {
            continue;
        };
        let problems = label_problems(raw, &label, slot);
        if problems.is_empty() {
            out.labels.push(ActiveLabel { slot, label });
        } else {
            out.rejected.push(RejectedLabel { slot, problems });
        }
    }
    Some(out)
}

/// The bytes of slot `slot` (label-size long), if inside the area.
pub(crate) fn slot_bytes<'a>(area: &'a [u8], geo: &Geometry, slot: u32) -> Option<&'a [u8]> {
    let start = usize::try_from(geo.slot_offset(slot)).ok()?;
    area.get(start..start.checked_add(geo.label_size as usize)?)
}

/// The kernel's `slot_valid` checks for a label read from `slot`.
pub fn label_problems(raw: &[u8], label: &Label, slot: u32) -> Vec<LabelProblem> {
    let mut p = Vec::new();
    if label.slot != slot {
        p.push(LabelProblem::SlotMismatch { found: label.slot });
    }
    if !(label.dpa | label.rawsize).is_multiple_of(4096) {
        p.push(LabelProblem::Unaligned {
            dpa: label.dpa,
            rawsize: label.rawsize,
        });
    }
    if raw.len() >= 256 && !label_checksum_ok(raw) {
        let computed =
            crate::fletcher::fletcher64_zeroed(&raw[..256], crate::label::LABEL_CHECKSUM_OFFSET);
        p.push(LabelProblem::BadChecksum {
            stored: label.checksum,
            computed,
        });
    }
    p
}

/// Problems of both index blocks assuming `label_size`, for diagnostics.
pub fn index_problems(area: &[u8], label_size: u64) -> [Vec<IndexProblem>; 2] {
    [
        validate_index(area, 0, label_size),
        validate_index(area, 1, label_size),
    ]
}
