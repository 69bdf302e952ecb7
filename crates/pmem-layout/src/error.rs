//! Error types. Each message starts with QEMU's own wording where QEMU has
//! one (so users and scripts recognise it), followed by `; ` and a hint that
//! names the option to change and a value that would work.

use thiserror::Error;

use crate::size::format_size_arg as arg;

/// Machine-memory, NVDIMM-split and placement errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LayoutError {
    /// `-m slots=` above [`crate::ACPI_MAX_RAM_SLOTS`].
    #[error("unsupported amount of memory slots: {slots}; use -m slots= between 1 and 256")]
    UnsupportedSlots {
        /// The requested slot count.
        slots: u64,
    },
    /// `-m maxmem=` not a multiple of the page size.
    #[error(
        "maximum memory size must by aligned to multiple of 4096 bytes; \
         -m maxmem=0x{maxmem:x} is not, use maxmem={} instead", arg(*.suggested)
    )]
    MaxmemUnaligned {
        /// The given maxmem.
        maxmem: u64,
        /// maxmem rounded up to 4 KiB (or down if that overflows).
        suggested: u64,
    },
    /// `maxmem` below the initial RAM size.
    #[error(
        "invalid value of maxmem: maximum memory size (0x{maxmem:x}) must be at least \
         the initial memory size (0x{ram:x}); raise -m maxmem= to at least {}", arg(*.ram)
    )]
    MaxmemBelowRam {
        /// The given maxmem.
        maxmem: u64,
        /// The initial RAM size.
        ram: u64,
    },
    /// `slots` given but `maxmem` equals the RAM size.
    #[error(
        "invalid value of maxmem: memory slots were specified but maximum memory size \
         (0x{maxmem:x}) is equal to the initial memory size (0x{ram:x}); raise -m maxmem= \
         above the RAM size by the total size of the memory devices (e.g. maxmem={})",
        arg(.ram.saturating_mul(2))
    )]
    SlotsButMaxmemEqualsRam {
        /// The given maxmem.
        maxmem: u64,
        /// The initial RAM size.
        ram: u64,
    },
    /// `slots` given without `maxmem`.
    #[error("slots specified but no max-size; add maxmem= to -m (e.g. -m {},slots={slots},maxmem={})",
        arg(*.ram), arg(.ram.saturating_mul(2)))]
    SlotsWithoutMaxmem {
        /// The initial RAM size.
        ram: u64,
        /// The slot count given.
        slots: u64,
    },
    /// RAM size overflows when rounded to QEMU's 8 KiB granule.
    #[error("ram size too large; -m 0x{ram:x} cannot be represented, use a smaller -m")]
    RamTooLarge {
        /// The requested RAM size.
        ram: u64,
    },
    /// The device-memory window would not fit in the 64-bit address space.
    #[error(
        "unsupported amount of maximum memory: 0x{maxmem:x}; the device-memory window \
         (maxmem - RAM + 1 GiB per slot) does not fit in the address space, lower -m maxmem= or slots="
    )]
    MaxmemTooLarge {
        /// The given maxmem.
        maxmem: u64,
    },
    /// No device-memory window (maxmem not above RAM) when a device is plugged.
    #[error(
        "the configuration is not prepared for memory devices (e.g., for memory hotplug), \
         consider specifying the maxmem option; for memory device '{id}' start with e.g. \
         -m {},slots={slots},maxmem={}", arg(*.ram), arg(*.suggested_maxmem)
    )]
    NotPrepared {
        /// The device being plugged.
        id: String,
        /// Current RAM size.
        ram: u64,
        /// A slot count that would fit this device.
        slots: u32,
        /// A maxmem that would fit this device.
        suggested_maxmem: u64,
    },
    /// The window exists but `slots=0`.
    #[error(
        "no slots where allocated, please specify the 'slots' option; e.g. -m ...,slots={needed}"
    )]
    NoSlotsAllocated {
        /// Slots needed for the devices so far plus this one.
        needed: u32,
    },
    /// Explicit `slot=` out of range.
    #[error(
        "invalid slot number {slot}, valid range is [0-{max}]; use slot= in that range, \
         omit slot= for automatic assignment, or raise -m slots="
    )]
    InvalidSlot {
        /// Requested slot.
        slot: u32,
        /// Highest valid slot (slots - 1).
        max: u32,
    },
    /// Explicit `slot=` already used.
    #[error("slot {slot} is busy; memory device '{holder}' uses it, pick another slot= or omit it")]
    SlotBusy {
        /// Requested slot.
        slot: u32,
        /// Id of the device occupying it.
        holder: String,
    },
    /// All slots used.
    #[error(
        "no free slots available; all {slots} slots of -m slots={slots} are in use, raise slots="
    )]
    NoFreeSlots {
        /// Total slots.
        slots: u32,
    },
    /// The QEMU NVDIMM guide's rule: slots >= RAM devices + memory devices.
    #[error(
        "-m slots={slots} is too small: 1 RAM + {devices} memory device(s) (including '{id}') \
         need at least slots={needed} (slots must be >= RAM devices + NVDIMM devices, \
         hot-plugged ones included)"
    )]
    SeedSlotsTooSmall {
        /// Device being plugged.
        id: String,
        /// Declared slots.
        slots: u32,
        /// Memory devices including this one.
        devices: u32,
        /// slots value that would work.
        needed: u32,
    },
    /// Capacity: sum of device region sizes would exceed maxmem - RAM.
    #[error(
        "not enough space, currently 0x{used:x} in use of total space for memory devices \
         0x{total:x}; -m maxmem={} is too small for RAM {} + memory devices {} (with '{id}' \
         of {}): need maxmem >= {}",
        arg(*.maxmem), arg(*.ram), arg(.used.saturating_add(*.size)), arg(*.size),
        arg(.ram.saturating_add(*.used).saturating_add(*.size))
    )]
    NotEnoughSpace {
        /// Device being plugged.
        id: String,
        /// Bytes already used by memory devices.
        used: u64,
        /// maxmem - RAM.
        total: u64,
        /// Region size of the new device.
        size: u64,
        /// RAM size.
        ram: u64,
        /// maxmem.
        maxmem: u64,
    },
    /// Placement alignment not a power of two (or zero).
    #[error("alignment 0x{align:x} must be a power of two; use align= 4K, 2M or 1G")]
    BadAlign {
        /// The alignment.
        align: u64,
    },
    /// Region size not a multiple of the alignment.
    #[error(
        "backend memory size must be multiple of 0x{align:x}; '{id}' has 0x{size:x}, \
         use {}", size_choices(*.size, *.align)
    )]
    SizeUnaligned {
        /// Device id.
        id: String,
        /// Region size.
        size: u64,
        /// Required alignment.
        align: u64,
    },
    /// Zero-sized region.
    #[error("memory device '{id}' has size 0; give its memory backend a non-zero size=")]
    ZeroSize {
        /// Device id.
        id: String,
    },
    /// Explicit `addr=` not aligned.
    #[error("address must be aligned to 0x{align:x} bytes; addr=0x{addr:x} is not, use e.g. addr=0x{:x} or omit addr=",
        crate::align_up(*.addr, *.align).unwrap_or(0))]
    AddrUnaligned {
        /// Requested address.
        addr: u64,
        /// Required alignment.
        align: u64,
    },
    /// Explicit `addr=` outside the window.
    #[error(
        "can't add memory device [0x{addr:x}:0x{size:x}], usable range for memory devices \
         [0x{base:x}:0x{window_size:x}]; choose addr= inside that range or omit addr="
    )]
    AddrOutOfRange {
        /// Requested address.
        addr: u64,
        /// Region size.
        size: u64,
        /// Window base.
        base: u64,
        /// Window size.
        window_size: u64,
    },
    /// Explicit `addr=` overlaps another device.
    #[error(
        "address range conflicts with memory device id='{other}'; choose another addr= or omit addr="
    )]
    AddrConflict {
        /// The device overlapped.
        other: String,
    },
    /// Device larger than the window from its aligned start.
    #[error("can't add memory device, device too big; '{id}' of {} does not fit the device-memory window, raise -m maxmem=",
        arg(*.size))]
    DeviceTooBig {
        /// Device id.
        id: String,
        /// Region size.
        size: u64,
    },
    /// No aligned gap large enough.
    #[error(
        "could not find position in guest address space for memory device - memory fragmented \
         due to alignments; '{id}' needs {} aligned to 0x{align:x}, raise -m maxmem= or use a smaller align=",
        arg(*.size)
    )]
    Fragmented {
        /// Device id.
        id: String,
        /// Region size.
        size: u64,
        /// Alignment.
        align: u64,
    },
    /// Device id reused.
    #[error("Duplicate ID '{id}' for device; give each memory device a unique id=")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// Unplug of an unknown id.
    #[error("Device '{id}' not found; see query-memory-devices for plugged ids")]
    UnknownId {
        /// The id.
        id: String,
    },
    /// NVDIMM unplug is refused, as by QEMU.
    #[error("nvdimm device hot unplug is not supported yet.; stop the guest to remove '{id}'")]
    NvdimmUnplug {
        /// The id.
        id: String,
    },
    /// `label-size` below 128 KiB.
    #[error(
        "Property 'nvdimm.label-size' (0x{label:x}) is required at least 0x20000; \
         use label-size=128K (or larger), or omit label-size for an NVDIMM without labels"
    )]
    LabelTooSmall {
        /// The given label size.
        label: u64,
    },
    /// Backend too small for label + aligned pmem (QEMU), or below the
    /// project rule "backend >= label-size + 128 KiB".
    #[error(
        "the size of memdev {memdev} (0x{size:x}) is too small to contain nvdimm label \
         (0x{label:x}) and aligned PMEM (0x{align:x}); use size={} or larger, or a smaller label-size=/align=",
        arg(*.needed)
    )]
    MemdevTooSmall {
        /// Backend id (or "(unnamed)").
        memdev: String,
        /// Backend size.
        size: u64,
        /// Label size.
        label: u64,
        /// Backend alignment.
        align: u64,
        /// Smallest size that would work.
        needed: u64,
    },
}

/// Errors of the oVirt-style guest sizing ([`crate::guest_nvdimm_size`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SizingError {
    /// The host device cannot hold one aligned memory block plus the label.
    #[error(
        "host device of {} is too small for a guest NVDIMM with align {}: it needs at least {} \
         (pmem is a whole number of 128 MiB memory blocks, plus a 128 KiB label area); \
         use a larger namespace/partition",
        crate::format_size(*.device_size), crate::format_size(*.align), crate::format_size(*.minimum)
    )]
    DeviceTooSmall {
        /// Host device size.
        device_size: u64,
        /// Effective alignment.
        align: u64,
        /// Smallest device that works.
        minimum: u64,
    },
    /// Alignment not a power of two.
    #[error(
        "alignment 0x{align:x} must be a power of two; check the device's ndctl 'align' (2M or 1G expected)"
    )]
    BadAlign {
        /// The alignment.
        align: u64,
    },
    /// oVirt's refusal when neither the block size nor the alignment divides the other.
    #[error(
        "Memory (0x{block:x}) or NVDIMM (0x{align:x}) alignment not a power of 2; the device cannot be sized"
    )]
    AlignMismatch {
        /// Memory block size.
        block: u64,
        /// Alignment.
        align: u64,
    },
    /// The device id is not a valid QEMU id.
    #[error(
        "invalid device id '{id}': ids must start with a letter and contain only letters, digits, '-', '.' and '_'"
    )]
    BadId {
        /// The id.
        id: String,
    },
    /// Internal consistency failure with [`crate::nvdimm_split`] (should not happen).
    #[error(transparent)]
    Split(#[from] LayoutError),
}

/// "size=X or size=Y" (the multiples of `align` around `size`), skipping 0.
fn size_choices(size: u64, align: u64) -> String {
    let down = crate::align_down(size, align);
    let up = crate::align_up(size, align);
    match (down, up) {
        (0, Some(u)) => format!("size={}", arg(u)),
        (d, Some(u)) => format!("size={} or size={}", arg(d), arg(u)),
        (d, None) => format!("size={}", arg(d)),
    }
}
