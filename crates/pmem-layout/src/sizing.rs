//! oVirt-compatible sizing of a guest NVDIMM backed by a host device
//! (management-and-labels.md §1.4; design and numbers in docs/sizing.md).
//!
//! With `H` = 128 MiB (x86 memory block), `L` = 128 KiB (fixed label area)
//! and `A` = the device alignment (default `H`):
//!
//! ```text
//! s = align_down(dev, H)
//! q = align_down(s - L, A)        # what QEMU/pmvm will expose as pmem
//! if H % A == 0:   s -= q % H     # make pmem a whole number of blocks
//! elif A % H != 0: refuse
//! ```
//!
//! The guest pmem size is then computed with the very same [`nvdimm_split`]
//! that pmvm uses at start-up, so the manager and the VMM cannot disagree.
//! Keeping oVirt's exact formula (rather than a "tighter" one) also means a
//! device that oVirt once sized keeps its label at the same offset.

use crate::error::{LayoutError, SizingError};
use crate::split::nvdimm_split;
use crate::{
    OVIRT_LABEL_SIZE, PAGE_SIZE, X86_MEMORY_BLOCK, align_down, alignment_warning, format_size,
};

/// The result of [`guest_nvdimm_size`]. Invariants (property-tested):
/// `backend_size <= device_size`, `pmem_size % 128 MiB == 0`, `pmem_size > 0`,
/// `pmem_size + gap + label_size == backend_size`, and
/// `nvdimm_split(backend_size, 128 KiB, align).pmem_size == pmem_size`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GuestSizing {
    /// Host device (namespace/partition/file) size in bytes.
    pub device_size: u64,
    /// Effective alignment: the device's, else 128 MiB; at least 4 KiB.
    /// Pass it as the backend's `align=` so the VMM computes the same split.
    pub align: u64,
    /// The backend `size=` to pass.
    pub backend_size: u64,
    /// Guest-visible pmem bytes (a multiple of 128 MiB).
    pub pmem_size: u64,
    /// Label area offset inside the backend (`backend_size - 128 KiB`).
    pub label_offset: u64,
    /// Label area size (always 128 KiB).
    pub label_size: u64,
    /// Mapped bytes between pmem end and label start (unused).
    pub gap: u64,
    /// Device bytes after `backend_size`, never mapped.
    pub unused_tail: u64,
    /// Things the user should know (e.g. 1 GiB alignment caveats).
    pub warnings: Vec<String>,
}

/// Validate and normalise the alignment: power of two, at least a page.
fn effective_align(align: Option<u64>) -> Result<u64, SizingError> {
    let a = align.unwrap_or(X86_MEMORY_BLOCK);
    if a == 0 || !a.is_power_of_two() {
        return Err(SizingError::BadAlign { align: a });
    }
    // QEMU never aligns below the page size; for A | H the formula gives the
    // same size for any A <= 128 KiB, so clamping changes nothing else.
    Ok(a.max(PAGE_SIZE))
}

/// Smallest host device that [`guest_nvdimm_size`] accepts for `align`:
/// two blocks when `A` divides 128 MiB (oVirt always gives up one block),
/// else `A + 128 MiB` (one `A` unit of pmem plus room for the label).
pub fn minimum_device_size(align: Option<u64>) -> Result<u64, SizingError> {
    let a = effective_align(align)?;
    if X86_MEMORY_BLOCK.is_multiple_of(a) {
        Ok(2 * X86_MEMORY_BLOCK)
    } else {
        a.checked_add(X86_MEMORY_BLOCK)
            .ok_or(SizingError::BadAlign { align: a })
    }
}

/// Size a guest NVDIMM for a host device of `device_size` bytes whose
/// alignment is `align` (ndctl `align`; `None` = 128 MiB).
pub fn guest_nvdimm_size(device_size: u64, align: Option<u64>) -> Result<GuestSizing, SizingError> {
    const H: u64 = X86_MEMORY_BLOCK;
    const L: u64 = OVIRT_LABEL_SIZE;
    let a = effective_align(align)?;
    let minimum = minimum_device_size(Some(a))?;
    let too_small = SizingError::DeviceTooSmall {
        device_size,
        align: a,
        minimum,
    };

    let s0 = align_down(device_size, H);
    if s0 == 0 {
        return Err(too_small);
    }
    let q = align_down(s0 - L, a);
    let size = if H.is_multiple_of(a) {
        s0 - q % H
    } else if a % H != 0 {
        // Unreachable for powers of two, kept to mirror oVirt's refusal.
        return Err(SizingError::AlignMismatch { block: H, align: a });
    } else {
        s0
    };
    let split = match nvdimm_split(size, L, a) {
        Ok(s) => s,
        Err(LayoutError::MemdevTooSmall { .. }) => return Err(too_small),
        Err(e) => return Err(e.into()),
    };
    // Provable from the formula (pmem = (N-1)H, or a multiple of A >= H);
    // checked anyway so a logic slip can never hand out a misaligned size.
    if split.pmem_size % H != 0 || size > device_size {
        return Err(too_small);
    }

    let mut warnings = Vec::new();
    if a > H && size % a != 0 {
        warnings.push(format!(
            "align {}: the backend size {} is not a multiple of the alignment; a device-DAX \
             namespace may refuse such a mapping, and {} between pmem and label stay unused \
             (a 2 MiB-aligned namespace wastes less)",
            format_size(a),
            format_size(size),
            format_size(split.gap)
        ));
    }
    if let Some(w) = alignment_warning(a) {
        warnings.push(w);
    }
    Ok(GuestSizing {
        device_size,
        align: a,
        backend_size: size,
        pmem_size: split.pmem_size,
        label_offset: split.label_offset,
        label_size: L,
        gap: split.gap,
        unused_tail: device_size - size,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GIB, KIB, MIB};

    const DEV_16G_MINUS_2M: u64 = 17_177_772_032;

    #[test]
    fn ovirt_table_devdax_2m() {
        let g = guest_nvdimm_size(DEV_16G_MINUS_2M, Some(2 * MIB)).unwrap();
        assert_eq!(g.backend_size, 16_913_530_880);
        assert_eq!(g.backend_size / KIB, 16_517_120);
        assert_eq!(g.backend_size, 126 * 128 * MIB + 2 * MIB);
        assert_eq!(g.pmem_size, 16_128 * MIB);
        assert_eq!(g.label_offset, 16_913_399_808);
        assert_eq!(g.gap, 2 * MIB - 128 * KIB);
        assert!(g.warnings.is_empty());
    }

    #[test]
    fn ovirt_table_raw_no_align() {
        let g = guest_nvdimm_size(8 * GIB, None).unwrap();
        assert_eq!(g.align, 128 * MIB);
        assert_eq!(g.backend_size, 8 * GIB);
        assert_eq!(g.pmem_size, 8064 * MIB);
        assert_eq!(g.label_offset, 8 * GIB - 128 * KIB);
        assert_eq!(g.unused_tail, 0);
    }

    #[test]
    fn ovirt_table_devdax_1g() {
        let g = guest_nvdimm_size(DEV_16G_MINUS_2M, Some(GIB)).unwrap();
        assert_eq!(g.backend_size, 127 * 128 * MIB);
        assert_eq!(g.pmem_size, 15_360 * MIB);
        assert_eq!(g.label_offset, 127 * 128 * MIB - 128 * KIB);
        assert_eq!(g.warnings.len(), 1, "{:?}", g.warnings);
        assert!(
            g.warnings[0].starts_with("align 1 GiB: the backend size 16256 MiB is not a multiple")
        );
    }

    #[test]
    fn closed_form_for_small_aligns() {
        // A | H and A >= L: size = (N-1)H + A, pmem = (N-1)H.
        for a in [128 * KIB, 2 * MIB, 64 * MIB, 128 * MIB] {
            let g = guest_nvdimm_size(10 * 128 * MIB + 77, Some(a)).unwrap();
            assert_eq!(
                (g.backend_size, g.pmem_size),
                (9 * 128 * MIB + a, 9 * 128 * MIB),
                "A={a}"
            );
        }
        // A < L (4 KiB): size = (N-1)H + L.
        let g = guest_nvdimm_size(10 * 128 * MIB, Some(4 * KIB)).unwrap();
        assert_eq!(
            (g.backend_size, g.pmem_size, g.gap),
            (9 * 128 * MIB + 128 * KIB, 9 * 128 * MIB, 0)
        );
        // Sub-page alignment is treated as 4 KiB.
        assert_eq!(
            guest_nvdimm_size(10 * 128 * MIB, Some(512)).unwrap().align,
            4 * KIB
        );
    }

    #[test]
    fn tiny_devices() {
        let e = guest_nvdimm_size(100 * MIB, Some(2 * MIB)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "host device of 100 MiB is too small for a guest NVDIMM with align 2 MiB: it needs at least \
             256 MiB (pmem is a whole number of 128 MiB memory blocks, plus a 128 KiB label area); use a \
             larger namespace/partition"
        );
        assert!(guest_nvdimm_size(256 * MIB - 1, Some(2 * MIB)).is_err());
        assert_eq!(
            guest_nvdimm_size(256 * MIB, Some(2 * MIB))
                .unwrap()
                .pmem_size,
            128 * MIB
        );
        assert!(guest_nvdimm_size(0, None).is_err());
        assert!(guest_nvdimm_size(GIB + 127 * MIB, Some(GIB)).is_err());
        assert_eq!(
            guest_nvdimm_size(GIB + 128 * MIB, Some(GIB))
                .unwrap()
                .pmem_size,
            GIB
        );
        assert_eq!(minimum_device_size(Some(GIB)), Ok(GIB + 128 * MIB));
        assert_eq!(minimum_device_size(None), Ok(256 * MIB));
    }

    #[test]
    fn bad_align() {
        assert_eq!(
            guest_nvdimm_size(GIB, Some(3 * MIB)),
            Err(SizingError::BadAlign { align: 3 * MIB })
        );
        assert_eq!(
            guest_nvdimm_size(GIB, Some(0)),
            Err(SizingError::BadAlign { align: 0 })
        );
        assert!(guest_nvdimm_size(1 << 63, Some(1 << 63)).is_err());
        assert_eq!(
            guest_nvdimm_size(u64::MAX, Some(1 << 63))
                .unwrap()
                .pmem_size,
            1 << 63
        );
    }
}
