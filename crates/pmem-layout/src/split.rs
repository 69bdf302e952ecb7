//! Splitting an NVDIMM backend into guest pmem and label storage area.
//!
//! ```text
//! backend mapping (size S, label size L, backend alignment A)
//! 0                         P = align_down(S - L, A)   S - L              S
//! |---- pmem (guest-visible) ----|---- unused gap ----|---- label area ----|
//! ```
//!
//! This is QEMU's `nvdimm_prepare_memory_region` arithmetic (qemu-nvdimm.md
//! §2.3), written independently. Both pmvm (to map the device) and pmctl (to
//! size host devices and to find labels offline) use it.

use crate::error::LayoutError;
use crate::{MIN_LABEL_SIZE, align_down};

/// Result of [`nvdimm_split`]; all values are offsets/lengths inside the
/// backend mapping (add the backend's `offset=` for file offsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NvdimmSplit {
    /// Guest-visible pmem bytes `[0, pmem_size)`; what NFIT/SRAT report.
    pub pmem_size: u64,
    /// Start of the label storage area (`S - L`; `S` when there is no label).
    pub label_offset: u64,
    /// Label storage area length (0 = label-less NVDIMM).
    pub label_size: u64,
    /// Bytes between pmem end and label start, mapped by no one.
    pub gap: u64,
}

/// Validate an explicitly given `label-size=` property: QEMU rejects every
/// value below 128 KiB, including an explicit 0 (omit the property instead).
pub fn check_label_size_property(value: u64) -> Result<(), LayoutError> {
    if value < MIN_LABEL_SIZE {
        Err(LayoutError::LabelTooSmall { label: value })
    } else {
        Ok(())
    }
}

/// [`nvdimm_split_named`] without a backend id in the error message.
pub fn nvdimm_split(
    backend_size: u64,
    label_size: u64,
    align: u64,
) -> Result<NvdimmSplit, LayoutError> {
    nvdimm_split_named("(unnamed)", backend_size, label_size, align)
}

/// Split a backend of `backend_size` bytes with a label area of `label_size`
/// bytes (0 = none) and backend alignment `align` (power of two: the
/// backend's `align=` or page size, whichever is larger).
///
/// Rules: `label_size` is 0 or >= 128 KiB; `align` is a power of two; the
/// pmem part must be non-empty (QEMU); and, when a label area is requested,
/// the backend must be at least `label_size + 128 KiB` (project rule, so the
/// pmem part is never a sliver).
pub fn nvdimm_split_named(
    memdev: &str,
    backend_size: u64,
    label_size: u64,
    align: u64,
) -> Result<NvdimmSplit, LayoutError> {
    if align == 0 || !align.is_power_of_two() {
        return Err(LayoutError::BadAlign { align });
    }
    if label_size != 0 {
        check_label_size_property(label_size)?;
    }
    // Smallest backend that works: label + one aligned pmem unit, and (with
    // labels) label + 128 KiB.
    let mut needed = label_size.saturating_add(align);
    if label_size != 0 {
        needed = needed.max(label_size.saturating_add(MIN_LABEL_SIZE));
    }
    let too_small = || LayoutError::MemdevTooSmall {
        memdev: memdev.to_owned(),
        size: backend_size,
        label: label_size,
        align,
        needed,
    };
    if backend_size <= label_size || (label_size != 0 && backend_size < needed) {
        return Err(too_small());
    }
    let label_offset = backend_size - label_size;
    let pmem_size = align_down(label_offset, align);
    if pmem_size == 0 {
        return Err(too_small());
    }
    Ok(NvdimmSplit {
        pmem_size,
        label_offset,
        label_size,
        gap: label_offset - pmem_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GIB, KIB, MIB};

    #[test]
    fn qemu_doc_examples() {
        // 4 GiB file, L = 128 KiB, A = 4 KiB -> P = 4 GiB - 128 KiB, no gap.
        let s = nvdimm_split(4 * GIB, 128 * KIB, 4 * KIB).unwrap();
        assert_eq!(
            s,
            NvdimmSplit {
                pmem_size: 4 * GIB - 128 * KIB,
                label_offset: 4 * GIB - 128 * KIB,
                label_size: 128 * KIB,
                gap: 0
            }
        );
        // Same with align=2M -> P = 4 GiB - 2 MiB, gap = 2 MiB - 128 KiB.
        let s = nvdimm_split(4 * GIB, 128 * KIB, 2 * MIB).unwrap();
        assert_eq!(s.pmem_size, 4 * GIB - 2 * MIB);
        assert_eq!(s.gap, 2 * MIB - 128 * KIB);
        assert_eq!(s.label_offset, 4 * GIB - 128 * KIB);
        // memory-backend-ram 128 MiB, L = 128 KiB (A = 2 MiB) -> 126 MiB.
        assert_eq!(
            nvdimm_split(128 * MIB, 128 * KIB, 2 * MIB)
                .unwrap()
                .pmem_size,
            126 * MIB
        );
        // Seed: size=4G, label-size=2M, file backend (4 KiB pages).
        let s = nvdimm_split(4 * GIB, 2 * MIB, 4 * KIB).unwrap();
        assert_eq!(
            (s.pmem_size, s.label_offset, s.gap),
            (0xFFE0_0000, 0xFFE0_0000, 0)
        );
    }

    #[test]
    fn label_less() {
        let s = nvdimm_split(4 * GIB + 5, 0, 4 * KIB).unwrap();
        assert_eq!(
            s,
            NvdimmSplit {
                pmem_size: 4 * GIB,
                label_offset: 4 * GIB + 5,
                label_size: 0,
                gap: 5
            }
        );
        assert!(nvdimm_split(4095, 0, 4 * KIB).is_err());
    }

    #[test]
    fn label_size_errors() {
        let e = nvdimm_split(GIB, 64 * KIB, 4 * KIB).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Property 'nvdimm.label-size' (0x10000) is required at least 0x20000; use label-size=128K \
             (or larger), or omit label-size for an NVDIMM without labels"
        );
        assert!(check_label_size_property(0).is_err());
        assert!(check_label_size_property(128 * KIB).is_ok());
    }

    #[test]
    fn too_small_messages() {
        let e = nvdimm_split_named("mem1", 2 * MIB, 2 * MIB, 4 * KIB).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the size of memdev mem1 (0x200000) is too small to contain nvdimm label (0x200000) and \
             aligned PMEM (0x1000); use size=2176K or larger, or a smaller label-size=/align="
        );
        // QEMU would accept 128K label + 4K pmem; the project rule wants label + 128 KiB.
        assert!(nvdimm_split(132 * KIB, 128 * KIB, 4 * KIB).is_err());
        assert!(nvdimm_split(256 * KIB, 128 * KIB, 4 * KIB).is_ok());
        // Alignment larger than what is left: P = 0.
        let e = nvdimm_split(4 * MIB, 128 * KIB, 4 * MIB).unwrap_err();
        assert!(
            matches!(e, LayoutError::MemdevTooSmall { needed, .. } if needed == 4 * MIB + 128 * KIB)
        );
        assert!(matches!(
            nvdimm_split(GIB, 0, 3 * KIB),
            Err(LayoutError::BadAlign { .. })
        ));
        assert!(matches!(
            nvdimm_split(GIB, 0, 0),
            Err(LayoutError::BadAlign { .. })
        ));
    }
}
