//! The virtio-mmio transport, register layout version 2 (virtio 1.2 section 4.2.2).
//!
//! Every register write comes from the guest and is hostile: widths and offsets are checked,
//! queue sizes and addresses go through virtio-queue's checks, the status machine refuses
//! features the device did not offer, and a queue that is not valid is never touched (the
//! device sets DEVICE_NEEDS_RESET instead). The transport owns the queues and the device's
//! lifecycle (`activate` at DRIVER_OK, `reset` at status 0 or DEVICE_NEEDS_RESET), so a device
//! implements only what is particular to it. Requests are processed by the device's I/O thread
//! (worker.rs), or on the vCPU thread at the QueueNotify write when no ioeventfd took it.

use std::os::fd::RawFd;

use super::{TRANSPORT_FEATURES, VirtioDevice};
use crate::bus::BusDevice;
use crate::memory::DmaMemory;
use acpi_tables::{Aml, AmlSink, aml};
use virtio_bindings::virtio_config::{
    VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FAILED,
    VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_NEEDS_RESET, VIRTIO_F_VERSION_1,
};
use virtio_bindings::virtio_mmio::*;
use virtio_queue::{Queue, QueueT};

/// Size of one device's register window (the bindings have offsets, not the window).
pub const WINDOW: u64 = 0x1000;
/// Offset of the QueueNotify register (where an ioeventfd can take the guest's notifies).
pub const QUEUE_NOTIFY: u64 = VIRTIO_MMIO_QUEUE_NOTIFY as u64;

/// MagicValue: "virt" (virtio 1.2 section 4.2.2; not in the bindings).
const MAGIC: u32 = 0x7472_6976;
/// Version: 2, the modern register layout (not in the bindings).
const VERSION: u32 = 2;
/// Vendor ID reported to the guest: "PMVM".
const VENDOR: u32 = u32::from_le_bytes(*b"PMVM");

/// What interrupts the guest: the VM's irqfd (`IrqLine`, as for the UART), a counter in tests.
pub type Interrupt = dyn vm_superio::Trigger<E = std::io::Error> + Send;

/// One virtio device and its transport state.
pub struct VirtioMmio {
    dev: Box<dyn VirtioDevice>,
    /// What the device may address: boot RAM and the memory devices (updated on hotplug).
    mem: DmaMemory,
    irq: Box<Interrupt>,
    queues: Vec<Queue>,
    queue_sel: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    status: u32,
    interrupt_status: u32,
    /// `activate` was called and `reset` not yet.
    activated: bool,
    /// ConfigGeneration: bumped when the device's configuration changes while it runs.
    config_generation: u32,
}

impl VirtioMmio {
    /// Puts `dev` behind a transport whose queues live in `mem`.
    pub fn new(dev: Box<dyn VirtioDevice>, mem: DmaMemory, irq: Box<Interrupt>) -> Self {
        let queues = dev
            .queue_max_sizes()
            .iter()
            .filter_map(|&max| Queue::new(max).ok())
            .collect();
        VirtioMmio {
            dev,
            mem,
            irq,
            queues,
            queue_sel: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            status: 0,
            interrupt_status: 0,
            activated: false,
            config_generation: 0,
        }
    }

    /// Number of queues (the I/O thread takes a notify eventfd for each).
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// The device's own event sources and their tokens ([`VirtioDevice::event_fds`]).
    pub fn device_event_fds(&self) -> Vec<(RawFd, u32)> {
        self.dev.event_fds()
    }

    fn device_features(&self) -> u64 {
        self.dev.features() | TRANSPORT_FEATURES
    }

    fn selected(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    /// Ends the device's session: `reset` pairs with the `activate` before it.
    fn deactivate(&mut self) {
        if self.activated {
            self.activated = false;
            self.dev.reset();
        }
    }

    fn reset(&mut self) {
        self.deactivate();
        for q in &mut self.queues {
            q.reset();
        }
        self.queue_sel = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.status = 0;
        self.interrupt_status = 0;
    }

    /// The device cannot go on: tell the driver (virtio 1.2 section 2.1.2) and tear the device
    /// down until the driver resets it.
    fn needs_reset(&mut self) {
        self.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
        self.deactivate();
        self.interrupt(VIRTIO_MMIO_INT_CONFIG);
    }

    fn set_status(&mut self, v: u32) {
        if v == 0 {
            self.reset();
            return;
        }
        let mut v = v;
        let newly = v & !self.status;
        if newly & VIRTIO_CONFIG_S_FEATURES_OK != 0 {
            let offered = self.device_features();
            let ok = self.driver_features & !offered == 0
                && self.driver_features & (1 << VIRTIO_F_VERSION_1) != 0;
            if !ok {
                // The driver reads FEATURES_OK back and gives up (virtio 1.2 section 3.1.1).
                v &= !VIRTIO_CONFIG_S_FEATURES_OK;
            }
        }
        // DRIVER_OK only after the features were accepted.
        if newly & VIRTIO_CONFIG_S_DRIVER_OK != 0
            && (self.status | v) & VIRTIO_CONFIG_S_FEATURES_OK == 0
        {
            v &= !VIRTIO_CONFIG_S_DRIVER_OK;
        }
        // Bits are only ever added until a reset; DEVICE_NEEDS_RESET stays once set.
        self.status |= v;
        if newly & v & VIRTIO_CONFIG_S_DRIVER_OK != 0 && self.live() && !self.activated {
            match self.dev.activate(self.driver_features) {
                Ok(()) => self.activated = true,
                Err(e) => {
                    tracing::warn!(
                        "virtio device {}: activation failed: {e}",
                        self.dev.device_id()
                    );
                    self.needs_reset();
                }
            }
        }
    }

    /// DRIVER_OK and neither FAILED nor DEVICE_NEEDS_RESET: the device may use its queues.
    fn live(&self) -> bool {
        self.status & VIRTIO_CONFIG_S_DRIVER_OK != 0
            && self.status & (VIRTIO_CONFIG_S_FAILED | VIRTIO_CONFIG_S_NEEDS_RESET) == 0
    }

    /// Sets `bit` in InterruptStatus and interrupts the guest.
    fn interrupt(&mut self, bit: u32) {
        self.interrupt_status |= bit;
        // A full eventfd counter still means "pending": nothing is lost.
        let _ = self.irq.trigger();
    }

    /// Processes queue `index` as a QueueNotify write would (the I/O thread's entry).
    pub fn notify_queue(&mut self, index: u32) {
        if !self.live() || !self.activated {
            return;
        }
        let Some(q) = self.queues.get_mut(index as usize) else {
            return;
        };
        if !q.ready() {
            return;
        }
        let mem = self.mem.snapshot();
        if !q.is_valid(&mem.mem) {
            // Rings outside guest memory or misaligned: tell the driver instead of touching them.
            self.needs_reset();
            return;
        }
        if self.dev.process_queue(index as usize, q, &mem.mem) {
            self.interrupt(VIRTIO_MMIO_INT_VRING);
        }
        self.config_change();
    }

    /// Tells the driver about a configuration change the device reports.
    fn config_change(&mut self) {
        if self.dev.take_config_change() {
            self.config_generation = self.config_generation.wrapping_add(1);
            self.interrupt(VIRTIO_MMIO_INT_CONFIG);
        }
    }

    /// Hands the event of `token` (one of the device's own fds) to the device, if it is live
    /// and every ready queue is valid (the I/O thread's entry).
    pub fn device_event(&mut self, token: u32) {
        if !self.live() || !self.activated {
            return;
        }
        let mem = self.mem.snapshot();
        if self
            .queues
            .iter()
            .any(|q| q.ready() && !q.is_valid(&mem.mem))
        {
            self.needs_reset();
            return;
        }
        if self.dev.handle_event(token, &mut self.queues, &mem.mem) {
            self.interrupt(VIRTIO_MMIO_INT_VRING);
        }
        self.config_change();
    }

    fn write_reg(&mut self, offset: u32, v: u32) {
        let configuring = self.status & VIRTIO_CONFIG_S_DRIVER_OK == 0;
        match offset {
            VIRTIO_MMIO_DEVICE_FEATURES_SEL => self.device_features_sel = v,
            VIRTIO_MMIO_DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            VIRTIO_MMIO_DRIVER_FEATURES => {
                let fixed = VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
                if self.status & fixed == VIRTIO_CONFIG_S_DRIVER {
                    match self.driver_features_sel {
                        0 => {
                            self.driver_features =
                                (self.driver_features & !0xffff_ffff) | u64::from(v)
                        }
                        1 => {
                            self.driver_features =
                                (self.driver_features & 0xffff_ffff) | (u64::from(v) << 32)
                        }
                        _ => {}
                    }
                }
            }
            VIRTIO_MMIO_QUEUE_SEL => self.queue_sel = v,
            VIRTIO_MMIO_QUEUE_NOTIFY => self.notify_queue(v),
            VIRTIO_MMIO_INTERRUPT_ACK => self.interrupt_status &= !v,
            VIRTIO_MMIO_STATUS => self.set_status(v),
            VIRTIO_MMIO_QUEUE_NUM
            | VIRTIO_MMIO_QUEUE_READY
            | VIRTIO_MMIO_QUEUE_DESC_LOW..=VIRTIO_MMIO_QUEUE_USED_HIGH
                if configuring =>
            {
                let Some(q) = self.selected() else { return };
                // A queue's layout is fixed once it is ready (virtio 1.2 section 4.2.2.3).
                if q.ready() && offset != VIRTIO_MMIO_QUEUE_READY {
                    return;
                }
                match offset {
                    // Sizes that are zero, above the maximum or not a power of two are ignored.
                    VIRTIO_MMIO_QUEUE_NUM => q.set_size(v as u16),
                    VIRTIO_MMIO_QUEUE_READY => q.set_ready(v == 1),
                    VIRTIO_MMIO_QUEUE_DESC_LOW => q.set_desc_table_address(Some(v), None),
                    VIRTIO_MMIO_QUEUE_DESC_HIGH => q.set_desc_table_address(None, Some(v)),
                    // The driver area (avail ring) and the device area (used ring).
                    VIRTIO_MMIO_QUEUE_AVAIL_LOW => q.set_avail_ring_address(Some(v), None),
                    VIRTIO_MMIO_QUEUE_AVAIL_HIGH => q.set_avail_ring_address(None, Some(v)),
                    VIRTIO_MMIO_QUEUE_USED_LOW => q.set_used_ring_address(Some(v), None),
                    VIRTIO_MMIO_QUEUE_USED_HIGH => q.set_used_ring_address(None, Some(v)),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn read_reg(&self, offset: u32) -> u32 {
        let q = self.queues.get(self.queue_sel as usize);
        match offset {
            VIRTIO_MMIO_MAGIC_VALUE => MAGIC,
            VIRTIO_MMIO_VERSION => VERSION,
            VIRTIO_MMIO_DEVICE_ID => self.dev.device_id(),
            VIRTIO_MMIO_VENDOR_ID => VENDOR,
            VIRTIO_MMIO_DEVICE_FEATURES => match self.device_features_sel {
                0 => self.device_features() as u32,
                1 => (self.device_features() >> 32) as u32,
                _ => 0,
            },
            VIRTIO_MMIO_QUEUE_NUM_MAX => q.map_or(0, |q| u32::from(q.max_size())),
            VIRTIO_MMIO_QUEUE_READY => q.map_or(0, |q| u32::from(q.ready())),
            VIRTIO_MMIO_INTERRUPT_STATUS => self.interrupt_status,
            VIRTIO_MMIO_STATUS => self.status,
            // Changes only when the device reports one (a network link going up or down).
            VIRTIO_MMIO_CONFIG_GENERATION => self.config_generation,
            _ => 0,
        }
    }
}

impl BusDevice for VirtioMmio {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        let config = u64::from(VIRTIO_MMIO_CONFIG);
        if offset >= config {
            self.dev.read_config(offset - config, data);
        } else if data.len() == 4 && offset.is_multiple_of(4) {
            // Below the config space: the offset fits u32.
            data.copy_from_slice(&self.read_reg(offset as u32).to_le_bytes());
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        // Register writes are 32 bits wide and aligned; the block config space is read-only.
        if offset < u64::from(VIRTIO_MMIO_CONFIG)
            && offset.is_multiple_of(4)
            && let Ok(b) = <[u8; 4]>::try_from(data)
        {
            self.write_reg(offset as u32, u32::from_le_bytes(b));
        }
    }
}

/// The DSDT fragment for one virtio-mmio device: `\_SB.VRnn`, `LNRO0005`, its register window
/// and its interrupt (edge, active high, exclusive).
pub struct VirtioMmioAml {
    pub index: u32,
    pub base: u64,
    pub gsi: u32,
}

impl Aml for VirtioMmioAml {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        aml::Device::new(
            format!("_SB_.VR{:02X}", self.index & 0xff).as_str().into(),
            vec![
                &aml::Name::new("_HID".into(), &"LNRO0005"),
                &aml::Name::new("_UID".into(), &self.index),
                &aml::Name::new(
                    "_CRS".into(),
                    &aml::ResourceTemplate::new(vec![
                        &aml::Memory32Fixed::new(true, self.base as u32, WINDOW as u32),
                        &aml::Interrupt::new(true, true, false, false, self.gsi),
                    ]),
                ),
            ],
        )
        .to_aml_bytes(sink);
    }
}

#[cfg(test)]
#[path = "mmio_tests.rs"]
mod tests;
