//! The virtio-mmio transport, register layout version 2 (virtio 1.2 section 4.2.2).
//!
//! Every register write comes from the guest and is hostile: widths and offsets are checked,
//! queue sizes and addresses go through virtio-queue's checks, the status machine refuses
//! features the device did not offer, and a queue that is not valid is never touched (the
//! device sets DEVICE_NEEDS_RESET instead). Requests are processed on the vCPU thread at the
//! QueueNotify write.

use super::{F_RING_INDIRECT_DESC, F_VERSION_1, VirtioDevice};
use crate::bus::BusDevice;
use crate::memory::DmaMemory;
use acpi_tables::{Aml, AmlSink, aml};
use virtio_queue::{Queue, QueueT};

/// Size of one device's register window.
pub const WINDOW: u64 = 0x1000;
/// Offset of the QueueNotify register (where an ioeventfd can take the guest's notifies).
pub const QUEUE_NOTIFY: u64 = 0x050;

const MAGIC: u32 = 0x7472_6976; // "virt"
const VERSION: u32 = 2;
/// Vendor ID reported to the guest: "PMVM".
const VENDOR: u32 = u32::from_le_bytes(*b"PMVM");

mod reg {
    pub const MAGIC: u64 = 0x000;
    pub const VERSION: u64 = 0x004;
    pub const DEVICE_ID: u64 = 0x008;
    pub const VENDOR_ID: u64 = 0x00c;
    pub const DEVICE_FEATURES: u64 = 0x010;
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    pub const DRIVER_FEATURES: u64 = 0x020;
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    pub const QUEUE_SEL: u64 = 0x030;
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    pub const QUEUE_NUM: u64 = 0x038;
    pub const QUEUE_READY: u64 = 0x044;
    pub const QUEUE_NOTIFY: u64 = 0x050;
    pub const INTERRUPT_STATUS: u64 = 0x060;
    pub const INTERRUPT_ACK: u64 = 0x064;
    pub const STATUS: u64 = 0x070;
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    pub const CONFIG_GENERATION: u64 = 0x0fc;
    pub const CONFIG: u64 = 0x100;
}

/// Device status bits (virtio 1.2 section 2.1).
pub mod status {
    pub const ACKNOWLEDGE: u32 = 1;
    pub const DRIVER: u32 = 2;
    pub const DRIVER_OK: u32 = 4;
    pub const FEATURES_OK: u32 = 8;
    pub const DEVICE_NEEDS_RESET: u32 = 0x40;
    pub const FAILED: u32 = 0x80;
}

/// InterruptStatus bits.
const INT_VRING: u32 = 1;
const INT_CONFIG: u32 = 2;

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
        }
    }

    fn device_features(&self) -> u64 {
        self.dev.features() | F_VERSION_1 | F_RING_INDIRECT_DESC
    }

    fn selected(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    fn reset(&mut self) {
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

    fn set_status(&mut self, v: u32) {
        if v == 0 {
            self.reset();
            return;
        }
        let mut v = v;
        let newly = v & !self.status;
        if newly & status::FEATURES_OK != 0 {
            let offered = self.device_features();
            let ok =
                self.driver_features & !offered == 0 && self.driver_features & F_VERSION_1 != 0;
            if !ok {
                // The driver reads FEATURES_OK back and gives up (virtio 1.2 section 3.1.1).
                v &= !status::FEATURES_OK;
            }
        }
        // DRIVER_OK only after the features were accepted.
        if newly & status::DRIVER_OK != 0 && (self.status | v) & status::FEATURES_OK == 0 {
            v &= !status::DRIVER_OK;
        }
        // Bits are only ever added until a reset; DEVICE_NEEDS_RESET stays once set.
        self.status |= v;
    }

    fn driver_ok(&self) -> bool {
        self.status & status::DRIVER_OK != 0
            && self.status & (status::FAILED | status::DEVICE_NEEDS_RESET) == 0
    }

    /// Sets `bit` in InterruptStatus and interrupts the guest.
    fn interrupt(&mut self, bit: u32) {
        self.interrupt_status |= bit;
        // A full eventfd counter still means "pending": nothing is lost.
        let _ = self.irq.trigger();
    }

    /// Processes queue `index` as a QueueNotify write would (the I/O thread's entry).
    pub fn notify_queue(&mut self, index: u32) {
        self.notify(index);
    }

    fn notify(&mut self, index: u32) {
        if !self.driver_ok() {
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
            self.status |= status::DEVICE_NEEDS_RESET;
            self.interrupt(INT_CONFIG);
            return;
        }
        if self.dev.process_queue(index as usize, q, &mem.mem) {
            self.interrupt(INT_VRING);
        }
    }

    fn write_reg(&mut self, offset: u64, v: u32) {
        let configuring = self.status & status::DRIVER_OK == 0;
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = v,
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            reg::DRIVER_FEATURES => {
                let fixed = status::DRIVER | status::FEATURES_OK;
                if self.status & fixed == status::DRIVER {
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
            reg::QUEUE_SEL => self.queue_sel = v,
            reg::QUEUE_NOTIFY => self.notify(v),
            reg::INTERRUPT_ACK => self.interrupt_status &= !v,
            reg::STATUS => self.set_status(v),
            reg::QUEUE_NUM | reg::QUEUE_READY | reg::QUEUE_DESC_LOW..=reg::QUEUE_DEVICE_HIGH
                if configuring =>
            {
                let Some(q) = self.selected() else { return };
                // A queue's layout is fixed once it is ready (virtio 1.2 section 4.2.2.3).
                if q.ready() && offset != reg::QUEUE_READY {
                    return;
                }
                match offset {
                    // Sizes that are zero, above the maximum or not a power of two are ignored.
                    reg::QUEUE_NUM => q.set_size(v as u16),
                    reg::QUEUE_READY => q.set_ready(v == 1),
                    reg::QUEUE_DESC_LOW => q.set_desc_table_address(Some(v), None),
                    reg::QUEUE_DESC_HIGH => q.set_desc_table_address(None, Some(v)),
                    reg::QUEUE_DRIVER_LOW => q.set_avail_ring_address(Some(v), None),
                    reg::QUEUE_DRIVER_HIGH => q.set_avail_ring_address(None, Some(v)),
                    reg::QUEUE_DEVICE_LOW => q.set_used_ring_address(Some(v), None),
                    reg::QUEUE_DEVICE_HIGH => q.set_used_ring_address(None, Some(v)),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn read_reg(&self, offset: u64) -> u32 {
        let q = self.queues.get(self.queue_sel as usize);
        match offset {
            reg::MAGIC => MAGIC,
            reg::VERSION => VERSION,
            reg::DEVICE_ID => self.dev.device_id(),
            reg::VENDOR_ID => VENDOR,
            reg::DEVICE_FEATURES => match self.device_features_sel {
                0 => self.device_features() as u32,
                1 => (self.device_features() >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX => q.map_or(0, |q| u32::from(q.max_size())),
            reg::QUEUE_READY => q.map_or(0, |q| u32::from(q.ready())),
            reg::INTERRUPT_STATUS => self.interrupt_status,
            reg::STATUS => self.status,
            // The configuration never changes while the device runs.
            reg::CONFIG_GENERATION => 0,
            _ => 0,
        }
    }
}

impl BusDevice for VirtioMmio {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if offset >= reg::CONFIG {
            self.dev.read_config(offset - reg::CONFIG, data);
        } else if data.len() == 4 && offset.is_multiple_of(4) {
            data.copy_from_slice(&self.read_reg(offset).to_le_bytes());
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        // Register writes are 32 bits wide and aligned; the block config space is read-only.
        if offset < reg::CONFIG
            && offset.is_multiple_of(4)
            && let Ok(b) = <[u8; 4]>::try_from(data)
        {
            self.write_reg(offset, u32::from_le_bytes(b));
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
