//! Namespace index block (`struct nd_namespace_index`): 72-byte header + free bitmap.

use crate::bytes::{le_u16, le_u32, le_u64, put_u16, put_u32, put_u64};
use crate::fletcher::fletcher64_zeroed;
use crate::layout::{INDEX_HEADER_SIZE, NSINDEX_SIGNATURE};

/// Offset of the checksum inside an index block.
pub const INDEX_CHECKSUM_OFFSET: usize = 64;

/// Decoded index block header (all fields as stored; nothing validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexHeader {
    /// Signature, `"NAMESPACE_INDEX\0"` when valid.
    pub sig: [u8; 16],
    /// Reserved flags (0).
    pub flags: [u8; 3],
    /// Encoded label size: v1.2 readers use `1 << (7 + labelsize)`.
    pub labelsize: u8,
    /// Sequence number (low 2 bits used).
    pub seq: u32,
    /// Offset of this block in the LSA.
    pub myoff: u64,
    /// Size of this block.
    pub mysize: u64,
    /// Offset of the other block.
    pub otheroff: u64,
    /// Offset of label slot 0.
    pub labeloff: u64,
    /// Number of label slots.
    pub nslot: u32,
    /// Major version (1).
    pub major: u16,
    /// Minor version (1 or 2).
    pub minor: u16,
    /// Fletcher-64 of the whole block with this field zeroed.
    pub checksum: u64,
}

impl IndexHeader {
    /// Decode the first 72 bytes of `raw`; `None` if shorter.
    pub fn decode(raw: &[u8]) -> Option<IndexHeader> {
        let h = raw.get(..INDEX_HEADER_SIZE)?;
        let mut sig = [0u8; 16];
        sig.copy_from_slice(&h[0..16]);
        Some(IndexHeader {
            sig,
            flags: [h[16], h[17], h[18]],
            labelsize: h[19],
            seq: le_u32(h, 20),
            myoff: le_u64(h, 24),
            mysize: le_u64(h, 32),
            otheroff: le_u64(h, 40),
            labeloff: le_u64(h, 48),
            nslot: le_u32(h, 56),
            major: le_u16(h, 60),
            minor: le_u16(h, 62),
            checksum: le_u64(h, 64),
        })
    }

    /// Write the header into the first 72 bytes of `out` (checksum written as stored).
    pub fn encode(&self, out: &mut [u8]) {
        if let Some(h) = out.get_mut(..INDEX_HEADER_SIZE) {
            h[0..16].copy_from_slice(&self.sig);
            h[16..19].copy_from_slice(&self.flags);
            h[19] = self.labelsize;
            put_u32(h, 20, self.seq);
            put_u64(h, 24, self.myoff);
            put_u64(h, 32, self.mysize);
            put_u64(h, 40, self.otheroff);
            put_u64(h, 48, self.labeloff);
            put_u32(h, 56, self.nslot);
            put_u16(h, 60, self.major);
            put_u16(h, 62, self.minor);
            put_u64(h, 64, self.checksum);
        }
    }

    /// `major * 100 + minor`, as Linux compares versions.
    pub fn version(&self) -> u32 {
        u32::from(self.major) * 100 + u32::from(self.minor)
    }

    /// Label size this header implies: `1 << (7 + labelsize)` for version >= 1.2,
    /// else 128. `None` when the shift does not fit in 32 bits.
    pub fn implied_label_size(&self) -> Option<u64> {
        if self.version() >= 102 {
            1u32.checked_shl(7 + u32::from(self.labelsize))
                .map(u64::from)
        } else {
            Some(128)
        }
    }

    /// Whether labels under this index use the v1.1 interleave-set cookie
    /// (major 1, minor 1); otherwise the v1.2 cookie applies.
    pub fn uses_cookie1(&self) -> bool {
        self.major == 1 && self.minor == 1
    }
}

/// One reason an index block is invalid, in the order Linux checks them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexProblem {
    /// The block does not start with `"NAMESPACE_INDEX\0"`.
    #[error("signature is not NAMESPACE_INDEX")]
    BadSignature,
    /// The version/labelsize fields imply a different label size.
    #[error("implies {implied:?}-byte labels but the area is read with {probed}-byte labels")]
    LabelSizeMismatch {
        /// Label size implied by the header (`None`: nonsense labelsize field).
        implied: Option<u64>,
        /// Label size being probed.
        probed: u64,
    },
    /// Stored checksum differs from the Fletcher-64 of the block.
    #[error("checksum {stored:#018x} does not match computed {computed:#018x}")]
    BadChecksum {
        /// Stored value.
        stored: u64,
        /// Computed value.
        computed: u64,
    },
    /// Sequence number with low 2 bits zero.
    #[error("sequence number {0:#x} is invalid (low 2 bits must be 1, 2 or 3)")]
    BadSeq(u32),
    /// `myoff` is not this block's offset.
    #[error("myoff {found:#x} should be {expected:#x}")]
    BadMyoff {
        /// Stored value.
        found: u64,
        /// Required value.
        expected: u64,
    },
    /// `otheroff` is not the other block's offset.
    #[error("otheroff {found:#x} should be {expected:#x}")]
    BadOtheroff {
        /// Stored value.
        found: u64,
        /// Required value.
        expected: u64,
    },
    /// `labeloff` is not `2 * index size`.
    #[error("labeloff {found:#x} should be {expected:#x}")]
    BadLabeloff {
        /// Stored value.
        found: u64,
        /// Required value.
        expected: u64,
    },
    /// `mysize` outside `[72, index size]`.
    #[error("mysize {found:#x} is outside [72, {max:#x}]")]
    BadMysize {
        /// Stored value.
        found: u64,
        /// Index block size.
        max: u64,
    },
    /// `nslot` labels do not fit after the two index blocks.
    #[error("nslot {nslot} does not fit: at most {max} slots")]
    BadNslot {
        /// Stored value.
        nslot: u32,
        /// Largest value that fits.
        max: u64,
    },
    /// The area is too small to hold index blocks for this label size.
    #[error("label area of {lsa_size} bytes is too small for {label_size}-byte labels")]
    AreaTooSmall {
        /// LSA size.
        lsa_size: u64,
        /// Label size probed.
        label_size: u64,
    },
}

/// Validate index block `block` (0 or 1) of `area` assuming `label_size`-byte
/// labels, the way Linux `__nd_label_validate` does, but collecting every
/// problem instead of stopping at the first. Empty result: the block is valid.
pub fn validate_index(area: &[u8], block: usize, label_size: u64) -> Vec<IndexProblem> {
    let lsa_size = area.len() as u64;
    let Some(isize_) = crate::layout::sizeof_namespace_index(lsa_size, label_size) else {
        return vec![IndexProblem::AreaTooSmall {
            lsa_size,
            label_size,
        }];
    };
    let block = block.min(1);
    let start = isize_ as usize * block;
    // sizeof_namespace_index guarantees 2 * isize_ <= lsa_size.
    let Some(raw) = area.get(start..start + isize_ as usize) else {
        return vec![IndexProblem::AreaTooSmall {
            lsa_size,
            label_size,
        }];
    };
    let Some(h) = IndexHeader::decode(raw) else {
        return vec![IndexProblem::AreaTooSmall {
            lsa_size,
            label_size,
        }];
    };
    let mut p = Vec::new();
    if h.sig != NSINDEX_SIGNATURE {
        p.push(IndexProblem::BadSignature);
    }
    let implied = h.implied_label_size();
    if implied != Some(label_size) {
        p.push(IndexProblem::LabelSizeMismatch {
            implied,
            probed: label_size,
        });
    }
    let computed = fletcher64_zeroed(raw, INDEX_CHECKSUM_OFFSET);
    if computed != h.checksum {
        p.push(IndexProblem::BadChecksum {
            stored: h.checksum,
            computed,
        });
    }
    if h.seq & 3 == 0 {
        p.push(IndexProblem::BadSeq(h.seq));
    }
    let my = isize_ * block as u64;
    if h.myoff != my {
        p.push(IndexProblem::BadMyoff {
            found: h.myoff,
            expected: my,
        });
    }
    let other = isize_ * (1 - block as u64);
    if h.otheroff != other {
        p.push(IndexProblem::BadOtheroff {
            found: h.otheroff,
            expected: other,
        });
    }
    if h.labeloff != 2 * isize_ {
        p.push(IndexProblem::BadLabeloff {
            found: h.labeloff,
            expected: 2 * isize_,
        });
    }
    if h.mysize > isize_ || h.mysize < INDEX_HEADER_SIZE as u64 {
        p.push(IndexProblem::BadMysize {
            found: h.mysize,
            max: isize_,
        });
    }
    let max = (lsa_size - 2 * isize_) / label_size;
    if u64::from(h.nslot) > max {
        p.push(IndexProblem::BadNslot {
            nslot: h.nslot,
            max,
        });
    }
    p
}

/// Test bit `slot` of a little-endian free bitmap (bit set = slot free).
/// Bits beyond the slice read as "not free".
pub fn bit_is_set(bitmap: &[u8], slot: u32) -> bool {
    bitmap
        .get(slot as usize / 8)
        .is_some_and(|b| b & (1 << (slot % 8)) != 0)
}

/// Set or clear bit `slot` of a little-endian bitmap; out-of-range bits are ignored.
pub fn set_bit(bitmap: &mut [u8], slot: u32, value: bool) {
    if let Some(b) = bitmap.get_mut(slot as usize / 8) {
        if value {
            *b |= 1 << (slot % 8);
        } else {
            *b &= !(1 << (slot % 8));
        }
    }
}
