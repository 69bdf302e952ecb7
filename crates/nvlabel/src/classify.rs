//! What a label area currently holds, for start-up safety decisions.

use crate::layout::LabelVersion;
use crate::parse::parse;

/// Contents of a would-be label area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AreaState {
    /// All bytes zero: safe to use as a label area (Linux treats it as label-less).
    Blank,
    /// A valid namespace index exists.
    Labels {
        /// Label format in use.
        version: LabelVersion,
        /// Slot count from the current index.
        nslot: u32,
        /// Labels in use and valid.
        active: usize,
    },
    /// Neither blank nor labels: most likely guest data (a file system that
    /// ran label-less over the whole backend). Using it as a label area would
    /// hide it from the guest and the guest's label writes would corrupt it.
    Foreign,
}

/// Classify `area`. Areas smaller than the 1024-byte minimum are `Blank` when
/// all zero and `Foreign` otherwise.
pub fn classify(area: &[u8]) -> AreaState {
    if area.iter().all(|&b| b == 0) {
        return AreaState::Blank;
    }
    match parse(area) {
        Ok(a) => AreaState::Labels {
            version: a.version,
            nslot: a.current_index.header.nslot,
            active: a.labels.len(),
        },
        Err(_) => AreaState::Foreign,
    }
}
