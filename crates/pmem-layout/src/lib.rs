//! `pmem-layout`: the single source of truth for sizes and guest physical
//! layout, shared by the VMM (`pmvm`) and the manager (`pmctl`) so the two
//! can never disagree about where RAM, NVDIMMs and label areas live.
//!
//! Everything here is pure arithmetic (no I/O, no panics on user input):
//!
//! * [`parse_size`] / [`format_size`] / [`format_size_arg`]: QEMU
//!   `qemu_strtosz`-compatible size strings.
//! * [`RamLayout`], [`MachineMemory`], [`DeviceMemoryWindow`]: how the pc
//!   machine splits RAM around the 32-bit PCI hole and where the
//!   memory-device (hotplug) window starts.
//! * [`nvdimm_split`]: how a backend of `size` bytes is split into the
//!   guest-visible pmem part and the label storage area (labels at the end).
//! * [`DeviceMemory`]: slot and guest-physical address assignment for
//!   NVDIMM/pc-dimm devices, identical for cold plug and hotplug.
//! * [`guest_nvdimm_size`] / [`nvdimm_cli_args`]: oVirt-compatible sizing of a
//!   guest NVDIMM backed by a host device, and the exact arguments to use.
//!
//! Design notes live in `docs/memory-layout.md` and `docs/sizing.md`.

#![forbid(unsafe_code)]

mod cli_args;
mod error;
mod fuzz;
mod placement;
mod ram;
mod size;
mod sizing;
mod split;

pub use cli_args::{NvdimmArgs, NvdimmArgsSpec, escape_opt_value, nvdimm_cli_args};
pub use error::{LayoutError, SizingError};
pub use fuzz::fuzz_layout_plan;
pub use placement::{
    DeviceKind, DeviceMemory, MemoryDeviceRequest, PlacedDevice, Placement, SlotRule,
    alignment_warning,
};
pub use ram::{DeviceMemoryWindow, MachineMemory, RamLayout};
pub use size::{SizeError, Suffix, format_size, format_size_arg, parse_size};
pub use sizing::{GuestSizing, guest_nvdimm_size, minimum_device_size};
pub use split::{NvdimmSplit, check_label_size_property, nvdimm_split, nvdimm_split_named};

/// One kibibyte (1024 bytes).
pub const KIB: u64 = 1 << 10;
/// One mebibyte.
pub const MIB: u64 = 1 << 20;
/// One gibibyte.
pub const GIB: u64 = 1 << 30;
/// One tebibyte.
pub const TIB: u64 = 1 << 40;

/// Guest page size (x86 `TARGET_PAGE_SIZE`); `maxmem` must be a multiple of it.
pub const PAGE_SIZE: u64 = 4 * KIB;
/// QEMU `MIN_NAMESPACE_LABEL_SIZE`: smallest accepted `label-size` (128 KiB).
pub const MIN_LABEL_SIZE: u64 = 128 * KIB;
/// Linux x86_64 memory-block size (`memory_block_size_bytes`), the unit of
/// memory hot-plug. NVDIMM pmem must end on this boundary so later DIMM
/// hot-plug still lands on an aligned range (oVirt `HOTPLUG_MEMORY_FACTOR_X86_MB`).
pub const X86_MEMORY_BLOCK: u64 = 128 * MIB;
/// The fixed label-area size oVirt (and `pmctl`) gives every guest NVDIMM.
pub const OVIRT_LABEL_SIZE: u64 = 128 * KIB;
/// Alignment of the device-memory window base, and the per-slot address-space
/// allowance QEMU adds to the window ("assuming 1G page max alignment per slot").
pub const DEVICE_MEM_ALIGN: u64 = GIB;
/// QEMU `ACPI_MAX_RAM_SLOTS`: most memory slots a machine may declare.
pub const ACPI_MAX_RAM_SLOTS: u64 = 256;
/// Start of RAM above the 32-bit PCI hole (pc machine, non-AMD-1TiB case).
pub const ABOVE_4G_START: u64 = 4 * GIB;
/// QEMU pc: RAM at or above this size is split (`lowmem` before gigabyte align).
pub const PC_LOWMEM_SPLIT_THRESHOLD: u64 = 0xE000_0000;
/// QEMU pc (gigabyte_align): RAM kept below 4 GiB when the split happens.
pub const PC_BELOW_4G_SPLIT: u64 = 3 * GIB;
/// QEMU rounds the initial RAM size (`-m`) up to this granule.
pub const RAM_SIZE_GRANULE: u64 = 8 * KIB;

/// Round `v` down to a multiple of `align` (`align` must be non-zero).
/// Returns `v` unchanged when `align` is 0 (callers validate first).
pub const fn align_down(v: u64, align: u64) -> u64 {
    if align == 0 { v } else { v - v % align }
}

/// Round `v` up to a multiple of `align`; `None` on overflow or `align == 0`.
pub const fn align_up(v: u64, align: u64) -> Option<u64> {
    if align == 0 {
        return None;
    }
    let rem = v % align;
    if rem == 0 {
        Some(v)
    } else {
        v.checked_add(align - rem)
    }
}
