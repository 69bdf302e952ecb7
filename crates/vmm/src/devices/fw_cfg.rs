//! QEMU's firmware configuration device on ports 0x510-0x51b: a thin [`BusDevice`] wrapper
//! over the pure `fw-cfg` crate (which is fuzzed with hostile port sequences and DMA
//! descriptors; nothing here interprets guest input) and its view of guest memory for DMA.
//! DMA runs synchronously inside the port write, so the guest sees the status on return.

use fw_cfg::{FwCfg, GuestMem, GuestMemError};
use vm_memory::{Bytes, GuestAddress};

use crate::bus::BusDevice;
use crate::memory::GuestRam;

/// Guest RAM as fw_cfg's DMA sees it (boot RAM; the firmware's buffers live there).
pub struct FwCfgMem(pub GuestRam);

impl GuestMem for FwCfgMem {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestMemError> {
        self.0
            .read_slice(buf, GuestAddress(gpa))
            .map_err(|_| GuestMemError {
                gpa,
                len: buf.len() as u64,
            })
    }

    fn write(&self, gpa: u64, data: &[u8]) -> Result<(), GuestMemError> {
        self.0
            .write_slice(data, GuestAddress(gpa))
            .map_err(|_| GuestMemError {
                gpa,
                len: data.len() as u64,
            })
    }
}

/// The device on the port-I/O bus.
pub struct FwCfgDevice(pub FwCfg<FwCfgMem>);

impl BusDevice for FwCfgDevice {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        // `rep insb` on the data port (SeaBIOS reads items that way before it has seen the DMA
        // bit) reaches us as one exit with `count` bytes: that many 1-byte reads.
        if offset == fw_cfg::port_offset::DATA && data.len() > 1 {
            for b in data.iter_mut() {
                self.0.pio_read(offset, std::slice::from_mut(b));
            }
        } else {
            self.0.pio_read(offset, data);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        self.0.pio_write(offset, data);
    }
}
