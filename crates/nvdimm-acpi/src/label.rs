//! What the `_DSM` dispatcher needs from the VMM: the label areas and the current FIT.

/// A failed label-area access. The dispatcher answers the guest with status 4 (hardware error)
/// and the VMM should log the error.
#[derive(Debug, thiserror::Error)]
pub enum LabelIoError {
    /// The range is outside the label area (the dispatcher checks bounds first, so this means
    /// the implementation's `label_size` and its storage disagree).
    #[error("label area access at {offset:#x}+{len:#x} is outside the {size:#x}-byte label area")]
    OutOfRange {
        /// Offset of the access.
        offset: u32,
        /// Length of the access.
        len: usize,
        /// Label area size.
        size: u32,
    },
    /// The label area is read-only.
    #[error("label area is read-only (backend opened readonly=on); label writes are refused")]
    ReadOnly,
    /// Host I/O failed (e.g. msync of the label pages).
    #[error("label area I/O failed at offset {offset:#x}: {source}")]
    Io {
        /// Offset of the access.
        offset: u32,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// The label storage area of one NVDIMM (the last `label-size` bytes of its backend).
pub trait LabelArea {
    /// Size in bytes (`label-size=`).
    fn label_size(&self) -> u32;
    /// True if writes must be refused (read-only backend): function 6 returns status 1.
    fn read_only(&self) -> bool;
    /// Reads `out.len()` bytes at `offset`. The dispatcher guarantees
    /// `offset + out.len() <= label_size()` and `out.len() <= MAX_XFER`.
    fn read(&self, offset: u32, out: &mut [u8]) -> Result<(), LabelIoError>;
    /// Writes `data` at `offset` (same guarantees as [`LabelArea::read`]); must be durable
    /// (flushed) when it returns if the backend promises persistence.
    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), LabelIoError>;
}

/// An occupied NVDIMM slot as the dispatcher sees it.
pub struct DimmRef<'a> {
    /// The label area, or `None` for a DIMM without `label-size` (function-0 bitmap 0, every
    /// other function status 1).
    pub labels: Option<&'a mut dyn LabelArea>,
}

/// The VMM's view of its NVDIMMs, queried once per doorbell.
pub trait DsmTarget {
    /// The DIMM with NFIT device handle `handle` (= slot + 1), or `None` for an empty slot or
    /// an unknown handle (function 0 then returns bitmap 0, other functions status 2).
    fn dimm(&mut self, handle: u32) -> Option<DimmRef<'_>>;
    /// The current FIT (e.g. cached [`crate::build_fit`] output, rebuilt on hotplug).
    fn fit(&self) -> &[u8];
}

/// A label area in memory (tests, fuzzing, and VMM unit tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemLabelArea {
    /// The label bytes.
    pub data: Vec<u8>,
    /// Refuse writes.
    pub read_only: bool,
}

impl MemLabelArea {
    /// A zero-filled writable area of `size` bytes.
    pub fn new(size: u32) -> Self {
        MemLabelArea {
            data: vec![0; size as usize],
            read_only: false,
        }
    }

    fn range(&self, offset: u32, len: usize) -> Result<std::ops::Range<usize>, LabelIoError> {
        let start = offset as usize;
        let err = || LabelIoError::OutOfRange {
            offset,
            len,
            size: self.label_size(),
        };
        let end = start.checked_add(len).ok_or_else(err)?;
        if end > self.data.len() {
            return Err(err());
        }
        Ok(start..end)
    }
}

impl LabelArea for MemLabelArea {
    fn label_size(&self) -> u32 {
        u32::try_from(self.data.len()).unwrap_or(u32::MAX)
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn read(&self, offset: u32, out: &mut [u8]) -> Result<(), LabelIoError> {
        let r = self.range(offset, out.len())?;
        out.copy_from_slice(&self.data[r]);
        Ok(())
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), LabelIoError> {
        if self.read_only {
            return Err(LabelIoError::ReadOnly);
        }
        let r = self.range(offset, data.len())?;
        self.data[r].copy_from_slice(data);
        Ok(())
    }
}
