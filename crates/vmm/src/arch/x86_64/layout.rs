//! Guest-physical layout of the low, fixed-address structures pmvm owns.
//!
//! RAM, the PCI hole and the device-memory window for DIMMs/NVDIMMs are computed by
//! `pmem-layout` (shared with pmctl); this file only holds the fixed addresses below 1 MiB and in
//! the 32-bit hole. Every constant says what lives there and why the space is enough.

/// GDT: four 8-byte entries (null, code, data, TSS).
pub const GDT_ADDR: u64 = 0x500;
/// IDT: one zero entry; Linux installs its own before enabling interrupts.
pub const IDT_ADDR: u64 = 0x520;
/// PVH `hvm_start_info` (56 bytes) followed by the module list (one 32-byte entry).
pub const PVH_INFO_ADDR: u64 = 0x6000;
/// PVH module list (the initrd).
pub const PVH_MODLIST_ADDR: u64 = 0x6040;
/// Zero page (`boot_params`, 4 KiB) for the Linux 64-bit boot protocol.
pub const ZERO_PAGE_ADDR: u64 = 0x7000;
/// PVH memory map (up to 128 entries of 24 bytes = 3 KiB, below the stack page).
pub const PVH_MEMMAP_ADDR: u64 = 0x7000;
/// Initial stack pointer for the boot CPU.
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;
/// Identity page tables: PML4, PDPTE and one PD mapping the first 1 GiB with 2 MiB pages.
pub const PML4_ADDR: u64 = 0x9000;
pub const PDPTE_ADDR: u64 = 0xa000;
pub const PDE_ADDR: u64 = 0xb000;
/// Kernel command line (up to `CMDLINE_MAX` bytes, NUL included).
pub const CMDLINE_ADDR: u64 = 0x20000;
pub const CMDLINE_MAX: usize = 0x10000;
/// Start of the EBDA-like reserved area; everything from here to 1 MiB is E820-reserved.
pub const EBDA_START: u64 = 0x9fc00;
/// ACPI tables: RSDP at 0xe0000 then every other table (124 KiB is enough for 256 NVDIMM slots:
/// the NVDIMM SSDT costs ~120 bytes per slot).
pub const ACPI_START: u64 = 0xe0000;
pub const ACPI_END: u64 = 0xf_f000;
/// The BIOS reset vector F000:FFF0, where Linux's BIOS reboot method jumps (see
/// `reset_vector.rs`); in the last page below 1 MiB, which the ACPI tables never reach.
pub const RESET_VECTOR_ADDR: u64 = 0xf_fff0;
/// Where the kernel's high memory starts (bzImage protected-mode code and ELF loads go here).
pub const HIMEM_START: u64 = 0x10_0000;

/// The 32-bit PCI hole starts at 3 GiB when RAM is at least 3.5 GiB (QEMU pc's rule).
pub const MMIO_HOLE_START: u64 = 0xc000_0000;
/// virtio-mmio register windows (4 KiB each, up to 256, handed out by the device manager), in
/// the 32-bit hole above the
/// highest low-RAM end (0xe000_0000, QEMU pc's split) and far below the mailbox.
pub const VIRTIO_MMIO_BASE: u64 = 0xe000_0000;
/// The NVDIMM `_DSM` mailbox (see docs/acpi-nvdimm.md), in the hole, E820-reserved, below the
/// IOAPIC. It is a host-backed memory slot so AML accesses it without VM exits.
pub const NVDIMM_MAILBOX_ADDR: u64 = 0xfe00_0000;
/// IOAPIC and local APIC MMIO.
pub const IOAPIC_ADDR: u64 = 0xfec0_0000;
pub const LAPIC_ADDR: u64 = 0xfee0_0000;
/// KVM needs three pages for the TSS and one for the identity map (Intel); put them right below
/// the 4 GiB boundary, where nothing else lives.
pub const KVM_TSS_ADDR: u64 = 0xfffb_d000;
pub const KVM_IDENTITY_MAP_ADDR: u64 = 0xfffb_c000;
pub const FOUR_GIB: u64 = 0x1_0000_0000;

/// I/O ports of pmvm's own platform devices.
pub mod ports {
    /// COM1 (8250 UART), 8 ports.
    pub const COM1: u16 = 0x3f8;
    /// i8042 data and command/status ports.
    pub const I8042_DATA: u16 = 0x60;
    pub const I8042_CMD: u16 = 0x64;
    /// CMOS RTC index and data.
    pub const RTC: u16 = 0x70;
    /// ACPI sleep control (write SLP_TYP|SLP_EN), sleep status, reset register.
    pub const ACPI_SLEEP_CONTROL: u16 = 0x600;
    pub const ACPI_SLEEP_STATUS: u16 = 0x601;
    pub const ACPI_RESET: u16 = 0x602;
    /// Generic Event Device selector (32-bit, read-and-clear).
    pub const GED_EVENT: u16 = 0x610;
    /// Memory hotplug controller (pc-dimm), 0x18 ports like QEMU's.
    pub const MEMHP_BASE: u16 = 0x0a00;
    pub const MEMHP_LEN: u16 = 0x18;
    /// NVDIMM `_DSM` doorbell, 4 ports (QEMU's address).
    pub const NVDIMM_DOORBELL: u16 = 0x0a18;
}

/// Interrupt lines (GSIs on the in-kernel IOAPIC).
pub mod irqs {
    /// COM1.
    pub const COM1: u32 = 4;
    /// Generic Event Device: power button, NVDIMM and memory hotplug notifications.
    pub const GED: u32 = 5;
    /// Lines for virtio-mmio devices (one each, edge, shared by disks and network cards): the
    /// IOAPIC's lines above the ISA range first (no legacy device shares them), then ISA lines
    /// that no device pmvm models uses (10, 11; 14 and 15 belong to IDE, which pmvm has not).
    /// KVM's in-kernel IOAPIC has 24 lines.
    pub const VIRTIO_POOL: &[u32] = &[16, 17, 18, 19, 20, 21, 22, 23, 10, 11, 14, 15];
}
