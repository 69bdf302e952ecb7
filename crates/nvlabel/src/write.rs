//! Writing label areas: `init` (as `ndctl init-labels`) and label updates
//! following the kernel's protocol (never in place; next index gets seq+1).

use crate::bytes::put_u64;
use crate::fletcher::fletcher64_zeroed;
use crate::index::{INDEX_CHECKSUM_OFFSET, IndexHeader, set_bit};
use crate::label::Label;
use crate::layout::{
    Geometry, INDEX_HEADER_SIZE, LabelVersion, NSINDEX_SIGNATURE, geometry, inc_seq,
};
use crate::parse::{ParseError, parse};

/// Why a write was refused. The area is left unchanged in every error case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The area cannot hold two index blocks and two labels of this version.
    #[error(
        "label area of {size} bytes is too small for v{version} labels (minimum 1024 bytes; QEMU/pmvm use label-size=128K or more)"
    )]
    TooSmall {
        /// Area size.
        size: usize,
        /// Requested version.
        version: LabelVersion,
    },
    /// The area has no valid index to update.
    #[error("cannot update labels: {0}; initialise the area first (pmctl label init)")]
    NotInitialised(#[from] ParseError),
    /// No free slot beyond the one Linux keeps in reserve.
    #[error(
        "no free label slot: {nfree} free, and one is always kept for atomic updates; remove a label first"
    )]
    NoFreeSlot {
        /// Free slots left.
        nfree: u32,
    },
    /// The slot to free is not in use.
    #[error("slot {slot} is not in use (nslot {nslot}); nothing to remove")]
    SlotNotInUse {
        /// Requested slot.
        slot: u32,
        /// Number of slots.
        nslot: u32,
    },
}

/// Write a complete index block `i` into `area` from its header and bitmap.
fn write_index(area: &mut [u8], geo: &Geometry, i: usize, header: &IndexHeader, bitmap: &[u8]) {
    let isz = geo.index_size as usize;
    let Some(block) = area.get_mut(i * isz..(i + 1) * isz) else {
        return;
    };
    block.fill(0);
    let mut h = header.clone();
    h.checksum = 0;
    h.encode(block);
    let room = block
        .len()
        .saturating_sub(INDEX_HEADER_SIZE)
        .min(bitmap.len());
    block[INDEX_HEADER_SIZE..INDEX_HEADER_SIZE + room].copy_from_slice(&bitmap[..room]);
    let sum = fletcher64_zeroed(block, INDEX_CHECKSUM_OFFSET);
    put_u64(block, INDEX_CHECKSUM_OFFSET, sum);
}

fn fresh_header(geo: &Geometry, version: LabelVersion, i: usize, seq: u32) -> IndexHeader {
    IndexHeader {
        sig: NSINDEX_SIGNATURE,
        flags: [0; 3],
        labelsize: (version.label_size() >> 8) as u8,
        seq,
        myoff: geo.index_size * i as u64,
        mysize: geo.index_size,
        otheroff: geo.index_size * (1 - i as u64),
        labeloff: geo.label_offset,
        nslot: geo.nslot,
        major: 1,
        minor: version.minor(),
        checksum: 0,
    }
}

/// Initialise both index blocks the way `ndctl init-labels [-V 1.2]` does:
/// block 0 with seq 3 and block 1 with seq 2 (so block 0 is current), every
/// slot marked free, checksums set. Bitmap bits at or above `nslot` are left
/// clear as the kernel and the format require (ndctl's own copy sets whole
/// 64-bit words; both validate). Index padding is zeroed; the label slots are
/// not touched (exactly like ndctl: old labels stay but are all free).
/// Returns the slot count.
pub fn init(area: &mut [u8], version: LabelVersion) -> Result<u32, WriteError> {
    let geo =
        geometry(area.len() as u64, version.label_size() as u64).ok_or(WriteError::TooSmall {
            size: area.len(),
            version,
        })?;
    let mut bitmap = vec![0u8; geo.bitmap_bytes() as usize];
    for s in 0..geo.nslot {
        set_bit(&mut bitmap, s, true);
    }
    for i in 0..2 {
        let h = fresh_header(&geo, version, i, 3 - i as u32);
        write_index(area, &geo, i, &h, &bitmap);
    }
    Ok(geo.nslot)
}

/// Add `label` following the kernel's update protocol: take the first free
/// slot in (a copy of) the current index, write the label there with its
/// `slot` field set (and its checksum for v1.2), then write the other index
/// block with `seq = inc(current seq)`, making it current. Refuses when only
/// the one reserved slot is left. Returns the slot used.
pub fn add_label(area: &mut [u8], label: &Label) -> Result<u32, WriteError> {
    let parsed = parse(area)?;
    let cur = &parsed.current_index;
    let nfree = cur.nfree();
    if nfree <= 1 {
        return Err(WriteError::NoFreeSlot { nfree });
    }
    // nfree >= 2, so a free slot below nslot exists.
    let slot = (0..cur.header.nslot)
        .find(|&s| cur.is_free(s))
        .ok_or(WriteError::NoFreeSlot { nfree })?;
    let geo = parsed.geometry;
    let mut l = label.clone();
    l.slot = slot;
    let start = geo.slot_offset(slot) as usize;
    if let Some(dst) = area.get_mut(start..start + geo.label_size as usize) {
        l.encode(dst);
    }
    let mut bitmap = cur.free.clone();
    set_bit(&mut bitmap, slot, false);
    commit_next(area, &parsed, &bitmap);
    Ok(slot)
}

/// Free the label in `slot` (kernel protocol: mark it free in the next index
/// and write that index with seq+1). The label bytes stay, as on a real DIMM.
pub fn remove_label(area: &mut [u8], slot: u32) -> Result<(), WriteError> {
    let parsed = parse(area)?;
    let cur = &parsed.current_index;
    if slot >= cur.header.nslot || cur.is_free(slot) {
        return Err(WriteError::SlotNotInUse {
            slot,
            nslot: cur.header.nslot,
        });
    }
    let mut bitmap = cur.free.clone();
    set_bit(&mut bitmap, slot, true);
    commit_next(area, &parsed, &bitmap);
    Ok(())
}

fn commit_next(area: &mut [u8], parsed: &crate::parse::LabelArea, bitmap: &[u8]) {
    let next = parsed.next();
    let geo = parsed.geometry;
    let mut h = parsed.current_index.header.clone();
    h.seq = inc_seq(h.seq);
    h.myoff = geo.index_size * next as u64;
    h.otheroff = geo.index_size * parsed.current as u64;
    write_index(area, &geo, next, &h, bitmap);
}
