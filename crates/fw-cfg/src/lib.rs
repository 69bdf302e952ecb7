//! QEMU's firmware configuration interface (fw_cfg), as a pure crate: no KVM, no file
//! descriptors, no threads.
//!
//! Why: SeaBIOS (and OVMF, and Linux's `qemu_fw_cfg` driver) learn everything about the
//! machine they run on through fw_cfg: the signature that says "this is QEMU-like", the CPU
//! count, the e820 map, the boot order, and the ACPI tables, which the firmware assembles
//! itself by running a small "linker/loader" script. Booting an installed OS from its disk,
//! or an installer from an ISO, through SeaBIOS therefore needs a faithful fw_cfg first.
//!
//! What is here:
//!
//! - [`FwCfg`]: the device as a state machine driven by port accesses ([`FwCfg::pio_read`],
//!   [`FwCfg::pio_write`]) on the x86 I/O window `0x510..0x51c`, with the DMA interface
//!   operating on a [`GuestMem`] the embedder provides;
//! - [`table_loader`]: the BIOS linker/loader script (builder, encoder, parser) and
//!   [`acpi::build_acpi`], which lays out ACPI tables into `etc/acpi/tables` and
//!   `etc/acpi/rsdp` with the commands that relocate and checksum them;
//! - [`interp`]: what the firmware does with that script, so tests can check the result;
//! - [`e820`] and [`bootorder`]: encoders for the `etc/e820` and `bootorder` files.
//!
//! Public sources the protocol facts come from (read for facts; nothing here is copied):
//! QEMU `docs/specs/fw_cfg.rst`, `hw/nvram/fw_cfg.c`,
//! `include/standard-headers/linux/qemu_fw_cfg.h`, `hw/acpi/bios-linker-loader.c`; SeaBIOS
//! `src/fw/paravirt.c`, `src/fw/romfile_loader.{h,c}`, `src/boot.c`. Details and the
//! integration plan: `docs/fw-cfg.md`.
//!
//! Everything a guest can reach is treated as hostile: no guest input panics, allocates
//! in proportion to a guest-chosen number, or loops more than a bounded number of times
//! per byte actually moved.
#![forbid(unsafe_code)]

pub mod acpi;
pub mod bootorder;
mod device;
pub mod e820;
mod fuzz;
pub mod interp;
pub mod keys;
pub mod table_loader;

pub use device::{
    DMA_SIGNATURE, FwCfg, FwCfgError, MAX_FILES, MAX_NAME_LEN, PORT_BASE, PORT_COUNT, dma_ctl,
    port_offset,
};
pub use fuzz::{fuzz_loader_script, fuzz_ports};

/// Guest-physical memory as the DMA interface sees it. The vmm implements it over its
/// guest memory; tests use a small vector.
///
/// Both methods take `&self` (guest memory is shared with running vCPUs; implementations
/// use interior mutability). A failing access must not have side effects the device relies
/// on: the device treats any error as "set the DMA error bit and stop".
pub trait GuestMem {
    /// Copies `buf.len()` bytes at `gpa` into `buf`.
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestMemError>;
    /// Copies `data` to `gpa`.
    fn write(&self, gpa: u64, data: &[u8]) -> Result<(), GuestMemError>;
}

impl<T: GuestMem + ?Sized> GuestMem for &T {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestMemError> {
        (**self).read(gpa, buf)
    }
    fn write(&self, gpa: u64, data: &[u8]) -> Result<(), GuestMemError> {
        (**self).write(gpa, data)
    }
}

impl<T: GuestMem + ?Sized> GuestMem for std::sync::Arc<T> {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestMemError> {
        (**self).read(gpa, buf)
    }
    fn write(&self, gpa: u64, data: &[u8]) -> Result<(), GuestMemError> {
        (**self).write(gpa, data)
    }
}

/// A guest-physical range that is not (entirely) backed by memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("guest range {gpa:#x}+{len:#x} is not backed by memory")]
pub struct GuestMemError {
    pub gpa: u64,
    pub len: u64,
}

/// A flat guest memory of `len` bytes at `base`, for tests, fuzzing and examples.
#[derive(Debug, Clone)]
pub struct VecMem {
    base: u64,
    bytes: std::cell::RefCell<Vec<u8>>,
}

impl VecMem {
    /// `len` zero bytes at `base`.
    pub fn new(base: u64, len: usize) -> Self {
        Self {
            base,
            bytes: std::cell::RefCell::new(vec![0; len]),
        }
    }

    /// The whole backing store.
    pub fn snapshot(&self) -> Vec<u8> {
        self.bytes.borrow().clone()
    }

    fn range(&self, gpa: u64, len: usize) -> Result<std::ops::Range<usize>, GuestMemError> {
        let err = GuestMemError {
            gpa,
            len: len as u64,
        };
        let start = gpa.checked_sub(self.base).ok_or(err)?;
        let start = usize::try_from(start).map_err(|_| err)?;
        let end = start.checked_add(len).ok_or(err)?;
        if end > self.bytes.borrow().len() {
            return Err(err);
        }
        Ok(start..end)
    }
}

impl GuestMem for VecMem {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestMemError> {
        let r = self.range(gpa, buf.len())?;
        buf.copy_from_slice(&self.bytes.borrow()[r]);
        Ok(())
    }
    fn write(&self, gpa: u64, data: &[u8]) -> Result<(), GuestMemError> {
        let r = self.range(gpa, data.len())?;
        self.bytes.borrow_mut()[r].copy_from_slice(data);
        Ok(())
    }
}

/// The 8-bit sum of `bytes` (ACPI tables are valid when the sum of their bytes is 0).
pub fn sum8(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b))
}
