//! The fixed ("well-known") fw_cfg selector keys.
//!
//! Numbers from QEMU's `include/standard-headers/linux/qemu_fw_cfg.h`; SeaBIOS
//! (`src/fw/paravirt.c`) reads `SIGNATURE`, `ID`, `NOGRAPHIC` (16-bit), `NB_CPUS` (16-bit),
//! `MAX_CPUS` (16-bit, as `etc/max-cpus`), `BOOT_MENU` (16-bit, as `etc/show-boot-menu`),
//! `NUMA` and `FILE_DIR`. Integers in these items are little-endian, except in the file
//! directory, which is big-endian.

/// "QEMU", four bytes.
pub const SIGNATURE: u16 = 0x00;
/// le32 feature bits: [`ID_TRADITIONAL`] | [`ID_DMA`].
pub const ID: u16 = 0x01;
pub const UUID: u16 = 0x02;
pub const RAM_SIZE: u16 = 0x03;
/// le16: 1 when the machine has no display (SeaBIOS then uses the serial console).
pub const NOGRAPHIC: u16 = 0x04;
/// le16: the number of CPUs present at boot.
pub const NB_CPUS: u16 = 0x05;
pub const MACHINE_ID: u16 = 0x06;
pub const KERNEL_ADDR: u16 = 0x07;
pub const KERNEL_SIZE: u16 = 0x08;
pub const KERNEL_CMDLINE: u16 = 0x09;
pub const INITRD_ADDR: u16 = 0x0a;
pub const INITRD_SIZE: u16 = 0x0b;
pub const BOOT_DEVICE: u16 = 0x0c;
pub const NUMA: u16 = 0x0d;
/// le16: 1 to show the boot menu.
pub const BOOT_MENU: u16 = 0x0e;
/// le16: the most CPUs the machine may ever have.
pub const MAX_CPUS: u16 = 0x0f;
pub const KERNEL_ENTRY: u16 = 0x10;
pub const KERNEL_DATA: u16 = 0x11;
pub const INITRD_DATA: u16 = 0x12;
pub const CMDLINE_ADDR: u16 = 0x13;
pub const CMDLINE_SIZE: u16 = 0x14;
pub const CMDLINE_DATA: u16 = 0x15;
pub const SETUP_ADDR: u16 = 0x16;
pub const SETUP_SIZE: u16 = 0x17;
pub const SETUP_DATA: u16 = 0x18;
/// The file directory (maintained by [`crate::FwCfg`]; not settable).
pub const FILE_DIR: u16 = 0x19;
/// The key of the first file; file `i` of the sorted directory is `FILE_FIRST + i`.
pub const FILE_FIRST: u16 = 0x20;
/// Selector bit of the historical write channel; ignored when selecting.
pub const WRITE_CHANNEL: u16 = 0x4000;
/// Selector bit of the architecture-local key space (x86: legacy ACPI, SMBIOS, e820...).
pub const ARCH_LOCAL: u16 = 0x8000;

/// `ID` bit: the traditional (selector + data port) interface.
pub const ID_TRADITIONAL: u32 = 1 << 0;
/// `ID` bit: the DMA interface.
pub const ID_DMA: u32 = 1 << 1;
