//! The raw view `ndctl read-labels` uses: best-effort, no validation.

use crate::index::IndexHeader;
use crate::label::Label;
use crate::layout::{INDEX_HEADER_SIZE, NSINDEX_ALIGN, sizeof_namespace_index};

/// ndctl's label-size guess: look at the 72-byte headers at offsets 0 and 256
/// (fixed, whatever the real index size), count major 1 / minor 1 versus
/// minor 2, and pick 256-byte labels only if minor 2 wins.
pub fn vote_label_size(area: &[u8]) -> u64 {
    let (mut v1, mut v2) = (0, 0);
    for off in [0, NSINDEX_ALIGN] {
        let Some(h) = area.get(off..).and_then(IndexHeader::decode) else {
            break;
        };
        if h.major == 1 {
            match h.minor {
                1 => v1 += 1,
                2 => v2 += 1,
                _ => {}
            }
        }
    }
    if v2 > v1 { 256 } else { 128 }
}

/// What `ndctl read-labels` sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawView {
    /// Label size from [`vote_label_size`].
    pub label_size: u64,
    /// Index block size for that label size.
    pub index_size: u64,
    /// Headers at offsets 0 and `index_size`, unvalidated.
    pub index: Vec<IndexHeader>,
    /// `(slot, label)` for every slot, up to the end of the area, whose
    /// `slot` field equals its position. The free bitmap is not consulted,
    /// so freed (stale) labels appear too.
    pub labels: Vec<(u32, Label)>,
}

/// Build the raw view; `None` when the area is too small for the voted label size.
pub fn raw_view(area: &[u8]) -> Option<RawView> {
    let label_size = vote_label_size(area);
    let index_size = sizeof_namespace_index(area.len() as u64, label_size)?;
    let isz = usize::try_from(index_size).ok()?;
    let lsz = label_size as usize;
    let mut index = Vec::new();
    for off in [0, isz] {
        match area
            .get(off..off + INDEX_HEADER_SIZE)
            .and_then(IndexHeader::decode)
        {
            Some(h) => index.push(h),
            None => break,
        }
    }
    let mut labels = Vec::new();
    let mut off = 2 * isz;
    let mut slot: u32 = 0;
    while let Some(raw) = area.get(off..off + lsz) {
        if let Some(l) = Label::decode(raw)
            && l.slot == slot
        {
            labels.push((slot, l));
        }
        off += lsz;
        slot = slot.wrapping_add(1);
    }
    Some(RawView {
        label_size,
        index_size,
        index,
        labels,
    })
}
