//! The device manager: the one owner of everything a device takes from the machine.
//!
//! It holds the two buses, hands out KVM memory slots, interrupt lines (GSIs) and virtio-mmio
//! register windows, collects each device's DSDT fragment, and plugs memory devices (NVDIMMs
//! and pc-dimms) through one path, [`DeviceManager::plug_memory_device`], used both by the
//! start-up path (cold plug) and by the monitor's `device_add` (hot plug): the same layout
//! code, the same checks, the same slot and address state, so a device plugged either way
//! gives the guest the same bytes (`tests/cold_hot_plug.rs` checks it).
//!
//! Adding a device model is one file under `devices/` plus one registration here:
//! [`DeviceManager::add_pio_device`] for a port-I/O device, [`DeviceManager::add_virtio`] for
//! a virtio device (its window, GSI, ioeventfds, I/O thread and `LNRO0005` AML come with it).

mod alloc;
mod error;

use std::sync::{Arc, Mutex, MutexGuard};

use acpi_tables::Aml;
use kvm_ioctls::VmFd;
use qmp::{MemoryDeviceInfo, PcdimmDeviceInfo};
use vm_config::{BackendConfig, DeviceConfig, DevicePlan, VmConfig};
use vmm_sys_util::eventfd::EventFd;

use crate::acpi;
use crate::arch::x86_64::layout::{VIRTIO_MMIO_BASE, irqs, ports};
use crate::bus::{BusDevice, Buses};
use crate::devices::acpi_pm::{
    AcpiPm, AcpiPmAml, GED_MEMORY_HOTPLUG, GED_NVDIMM_HOTPLUG, Ged, GedNotifier,
};
use crate::devices::memhp::{MemoryHotplug, MemoryHotplugAml};
use crate::devices::nvdimm::backend::Backend;
use crate::devices::nvdimm::controller::NvdimmController;
use crate::devices::nvdimm::{Nvdimm, label_safety};
use crate::devices::virtio::VirtioDevice;
use crate::devices::virtio::mmio::{self, VirtioMmio, VirtioMmioAml};
use crate::devices::virtio::worker::IoWorker;
use crate::devices::{EventSink, IrqLine};
use crate::memory::{DmaMemory, GuestRam};
pub use alloc::{GsiAllocator, SlotAllocator, WindowAllocator};
pub use error::DeviceError;

type Result<T> = std::result::Result<T, DeviceError>;

/// Whether a memory device arrives before the guest runs or while it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plug {
    /// On the command line (or rebuilt after a reset): no event, the guest finds it at boot.
    Cold,
    /// From the monitor: the guest is told through the GED.
    Hot,
}

/// A memory device the guest has, with how it came.
struct Plugged {
    plan: DevicePlan,
    nvdimm: bool,
    hot: bool,
}

/// Number of virtio-mmio register windows (4 KiB each, from `VIRTIO_MMIO_BASE`).
const VIRTIO_WINDOWS: u64 = 256;

/// Owns the buses, the allocators and every device of one VM.
pub struct DeviceManager {
    vm: Arc<VmFd>,
    buses: Arc<Buses>,
    sink: EventSink,
    slots: SlotAllocator,
    gsis: GsiAllocator,
    windows: WindowAllocator,
    /// DSDT body: every device's AML fragment in registration order.
    dsdt: Vec<u8>,
    /// Slots and guest addresses of memory devices (pmem-layout, shared with pmctl).
    layout: pmem_layout::DeviceMemory,
    plugged: Vec<Plugged>,
    /// The NVDIMM root device, when `-machine nvdimm=on`.
    nvdimm: Option<Arc<Mutex<NvdimmController>>>,
    /// pc-dimms (their mappings live as long as the VM).
    ram_dimms: Vec<Nvdimm>,
    memhp: Arc<Mutex<MemoryHotplug>>,
    ged: Option<GedNotifier>,
    /// What virtio devices may address; memory devices join it when plugged.
    dma: DmaMemory,
    io_workers: Vec<IoWorker>,
    /// Read-only memory (the firmware image), alive as long as the VM that maps it.
    roms: Vec<vm_memory::mmap::MmapRegion>,
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl DeviceManager {
    /// A device manager for `cfg` on `vm`, whose boot RAM `mem` took KVM slots below
    /// `first_free_slot` (of `max_slots` the host allows).
    pub fn new(
        vm: Arc<VmFd>,
        mem: GuestRam,
        sink: EventSink,
        cfg: &VmConfig,
        first_free_slot: u32,
        max_slots: u32,
    ) -> Result<DeviceManager> {
        let layout = vm_config::device_memory(&cfg.memory)?;
        let nvdimm = cfg.machine.nvdimm.then(|| {
            let persistence = cfg.machine.nvdimm_persistence.map(|p| match p {
                vm_config::PersistenceDomain::Cpu => nvdimm_acpi::Persistence::Cpu,
                vm_config::PersistenceDomain::MemCtrl => nvdimm_acpi::Persistence::MemCtrl,
            });
            Arc::new(Mutex::new(NvdimmController::new(
                mem.clone(),
                Vec::new(),
                persistence,
            )))
        });
        Ok(DeviceManager {
            dma: DmaMemory::new(&mem),
            vm,
            buses: Arc::new(Buses::default()),
            sink,
            slots: SlotAllocator::new(first_free_slot, max_slots),
            gsis: GsiAllocator::new(irqs::VIRTIO_POOL),
            windows: WindowAllocator::new(VIRTIO_MMIO_BASE, mmio::WINDOW, VIRTIO_WINDOWS),
            dsdt: Vec::new(),
            layout,
            plugged: Vec::new(),
            nvdimm,
            ram_dimms: Vec::new(),
            memhp: Arc::new(Mutex::new(MemoryHotplug::new(cfg.memory.slots))),
            ged: None,
            io_workers: Vec::new(),
            roms: Vec::new(),
        })
    }

    /// The buses, for the vCPU threads.
    pub fn buses(&self) -> Arc<Buses> {
        self.buses.clone()
    }

    /// The VM's event channel.
    pub fn event_sink(&self) -> EventSink {
        self.sink.clone()
    }

    /// An interrupt line: an eventfd registered with KVM as an irqfd for `gsi`.
    pub fn irq_line(&self, gsi: u32) -> Result<IrqLine> {
        let evt =
            EventFd::new(libc::EFD_NONBLOCK).map_err(|source| DeviceError::Irq { gsi, source })?;
        self.vm
            .register_irqfd(&evt, gsi)
            .map_err(|e| DeviceError::Irq {
                gsi,
                source: std::io::Error::from_raw_os_error(e.errno()),
            })?;
        Ok(IrqLine(evt))
    }

    /// Puts a port-I/O device at `[base, base + len)` and its AML (if any) into the DSDT.
    pub fn add_pio_device(
        &mut self,
        name: &str,
        base: u16,
        len: u16,
        dev: Arc<Mutex<dyn BusDevice>>,
        aml: Option<&dyn Aml>,
    ) -> Result<()> {
        self.buses
            .pio
            .insert(u64::from(base), u64::from(len), dev)
            .map_err(|source| DeviceError::Claim {
                device: name.to_string(),
                source,
            })?;
        if let Some(aml) = aml {
            self.dsdt.extend(acpi::aml_bytes(&[aml]));
        }
        Ok(())
    }

    /// Maps `bytes` read-only at guest address `gpa` (a firmware image) in a KVM memory slot
    /// of its own. `bytes.len()` must be a multiple of the page size. Guest writes to it are
    /// dropped (they exit to the MMIO bus, where nothing claims them).
    pub fn map_rom(&mut self, id: &str, gpa: u64, bytes: &[u8]) -> Result<()> {
        use vm_memory::VolatileMemory;
        let len = bytes.len();
        let rom_err = |cause: String| DeviceError::RomMemory {
            id: id.to_string(),
            len,
            cause,
        };
        let region = vm_memory::mmap::MmapRegion::new(len).map_err(|e| rom_err(e.to_string()))?;
        region
            .get_slice(0, len)
            .map_err(|e| rom_err(e.to_string()))?
            .copy_from(bytes);
        let slot = self.slots.alloc()?;
        let mem_region = kvm_bindings::kvm_userspace_memory_region {
            slot,
            flags: kvm_bindings::KVM_MEM_READONLY,
            guest_phys_addr: gpa,
            memory_size: len as u64,
            userspace_addr: region.as_ptr() as u64,
        };
        // SAFETY: [userspace_addr, +len) is the anonymous mapping `region` owns; it is kept in
        // `self.roms` as long as the device manager, which the VM (and its fd) does not outlive.
        if let Err(source) = unsafe { self.vm.set_user_memory_region(mem_region) } {
            self.slots.free(slot);
            return Err(DeviceError::Map {
                id: id.to_string(),
                slot,
                source,
            });
        }
        self.roms.push(region);
        Ok(())
    }

    /// The platform devices every VM has: UART (when a serial backend is given), i8042 (its
    /// reset line), RTC, ACPI power management, the GED, memory hotplug (with `slots`) and the
    /// NVDIMM root device (with `nvdimm=on`). Returns the UART for the console.
    pub fn add_platform_devices(
        &mut self,
        cfg: &VmConfig,
        serial_out: Option<Box<dyn std::io::Write + Send>>,
    ) -> Result<Option<Arc<Mutex<crate::devices::serial::Serial>>>> {
        use crate::devices::{i8042::I8042, rtc::Rtc, serial::Serial, serial::SerialAml};
        let serial = match serial_out {
            Some(out) => {
                let serial = Arc::new(Mutex::new(Serial::new(self.irq_line(irqs::COM1)?, out)));
                self.add_pio_device("COM1", ports::COM1, 8, serial.clone(), Some(&SerialAml))?;
                Some(serial)
            }
            None => None,
        };
        let i8042 = Arc::new(Mutex::new(I8042::new(self.sink.clone())));
        self.add_pio_device("i8042", ports::I8042_DATA, 5, i8042, None)?;
        self.add_pio_device(
            "RTC",
            ports::RTC,
            2,
            Arc::new(Mutex::new(Rtc::default())),
            None,
        )?;
        let pm = Arc::new(Mutex::new(AcpiPm::new(self.sink.clone())));
        self.add_pio_device("ACPI PM", ports::ACPI_SLEEP_CONTROL, 3, pm, None)?;
        let (ged_dev, ged) = Ged::new(self.irq_line(irqs::GED)?);
        self.add_pio_device(
            "GED",
            ports::GED_EVENT,
            4,
            Arc::new(Mutex::new(ged_dev)),
            None,
        )?;
        self.ged = Some(ged);
        let memory_hotplug = cfg.memory.slots > 0;
        if memory_hotplug {
            let aml = MemoryHotplugAml {
                slots: cfg.memory.slots,
            };
            let memhp = self.memhp.clone();
            self.add_pio_device(
                "memory hotplug",
                ports::MEMHP_BASE,
                ports::MEMHP_LEN,
                memhp,
                Some(&aml),
            )?;
        }
        let pm_aml = AcpiPmAml {
            nvdimm: cfg.machine.nvdimm,
            memory_hotplug,
        };
        self.dsdt.extend(acpi::aml_bytes(&[&pm_aml]));
        if let Some(ctl) = self.nvdimm.clone() {
            self.add_pio_device("NVDIMM root", nvdimm_acpi::DOORBELL_PORT, 4, ctl, None)?;
        }
        Ok(serial)
    }

    /// Opens the backend of every memory device of the command line and plugs them, in order.
    pub fn plug_configured_memory_devices(&mut self, cfg: &VmConfig) -> Result<()> {
        for (index, dev) in cfg.devices.iter().enumerate() {
            let backend_cfg = cfg
                .backend(dev.memdev())
                .ok_or_else(|| DeviceError::MissingMemdev(dev.memdev().to_string()))?;
            let backend = Arc::new(Backend::open(
                backend_cfg,
                cfg.require_persistence && matches!(dev, DeviceConfig::Nvdimm(_)),
            )?);
            let force = cfg.force_label_area;
            self.plug_memory_device(dev, backend_cfg, backend, index, Plug::Cold, force)?;
        }
        Ok(())
    }

    /// Plugs a memory device (`-device nvdimm|pc-dimm` or `device_add`): places it with the
    /// shared layout code, checks an NVDIMM's label area, maps it into a free KVM memory slot,
    /// lets virtio devices address it, and hands it to the NVDIMM root device or the memory
    /// hotplug controller. A hot plug then tells the guest through the GED. A failure leaves
    /// nothing behind (placement, slot). `index` names a device without `id=` (`#devN`).
    pub fn plug_memory_device(
        &mut self,
        dev: &DeviceConfig,
        backend_cfg: &BackendConfig,
        backend: Arc<Backend>,
        index: usize,
        plug: Plug,
        force_label_area: bool,
    ) -> Result<DevicePlan> {
        let is_nvdimm = matches!(dev, DeviceConfig::Nvdimm(_));
        if is_nvdimm && self.nvdimm.is_none() {
            return Err(DeviceError::NvdimmDisabled);
        }
        let plan = vm_config::plan_device(&mut self.layout, dev, backend_cfg, index)?;
        let id = plan.id.clone();
        match self.map_memory_device(Nvdimm { plan, backend }, is_nvdimm, plug, force_label_area) {
            Ok(plan) => Ok(plan),
            Err(e) => {
                let _ = self.layout.forget(&id);
                Err(e)
            }
        }
    }

    fn map_memory_device(
        &mut self,
        dimm: Nvdimm,
        is_nvdimm: bool,
        plug: Plug,
        force_label_area: bool,
    ) -> Result<DevicePlan> {
        if is_nvdimm {
            label_safety::check(&dimm, force_label_area)?;
        }
        let slot = self.slots.alloc()?;
        if let Err(source) = dimm.map_into_guest(&self.vm, slot) {
            self.slots.free(slot);
            return Err(DeviceError::Map {
                id: dimm.plan.id.clone(),
                slot,
                source,
            });
        }
        let plan = dimm.plan.clone();
        if let Err(e) = self.dma.add(plan.gpa, plan.size, &dimm.backend) {
            // The guest still gets the memory; only virtio buffers placed in it fail.
            tracing::warn!("{}: virtio devices cannot address it: {e}", plan.id);
        }
        let hot = plug == Plug::Hot;
        let event = if is_nvdimm {
            let prefix = if hot { "pmvm: hotplug: " } else { "pmvm: " };
            eprintln!("{prefix}{}", dimm.describe());
            if let Some(ctl) = &self.nvdimm {
                lock(ctl).add(dimm);
            }
            GED_NVDIMM_HOTPLUG
        } else {
            if let Some(w) = dimm.memory_block_warning() {
                eprintln!("{w}");
            }
            lock(&self.memhp).plug(plan.slot, plan.gpa, plan.size, plan.node, hot);
            self.ram_dimms.push(dimm);
            GED_MEMORY_HOTPLUG
        };
        self.plugged.push(Plugged {
            plan: plan.clone(),
            nvdimm: is_nvdimm,
            hot,
        });
        if hot
            && let Some(ged) = &self.ged
            && let Err(e) = ged.notify(event)
        {
            tracing::warn!("cannot notify the guest of the new memory device: {e}");
        }
        Ok(plan)
    }

    /// Puts a virtio device behind a virtio-mmio transport: a register window and an interrupt
    /// line from the pools, an I/O thread fed by an ioeventfd on its QueueNotify register, and
    /// its `LNRO0005` node in the DSDT. Returns the window's base address.
    /// `option` and `id` name the device in messages (`-drive drive0`) and its I/O thread
    /// (`io-drive0`).
    pub fn add_virtio(
        &mut self,
        option: &str,
        id: &str,
        dev: Box<dyn VirtioDevice>,
    ) -> Result<u64> {
        let device = format!("{option} {id}");
        let (index, base) = self.windows.alloc().ok_or_else(|| DeviceError::NoWindow {
            device: device.clone(),
            max: VIRTIO_WINDOWS,
        })?;
        let gsi = self.gsis.alloc().ok_or_else(|| DeviceError::NoIrqLine {
            device: device.clone(),
            max: irqs::VIRTIO_POOL.len(),
        })?;
        let irq = self.irq_line(gsi)?;
        let transport = Arc::new(Mutex::new(VirtioMmio::new(
            dev,
            self.dma.clone(),
            Box::new(irq),
        )));
        match io_worker(&self.vm, &transport, base, id) {
            Ok(w) => self.io_workers.push(w),
            Err(e) => tracing::warn!("{option} {id}: no I/O thread ({e}); vCPUs do its I/O"),
        }
        self.buses
            .mmio
            .insert(base, mmio::WINDOW, transport)
            .map_err(|source| DeviceError::Claim { device, source })?;
        let aml = VirtioMmioAml {
            index: index as u32,
            base,
            gsi,
        };
        self.dsdt.extend(acpi::aml_bytes(&[&aml]));
        Ok(base)
    }

    /// The DSDT body (every device's AML).
    pub fn dsdt_body(&self) -> &[u8] {
        &self.dsdt
    }

    /// The tables devices add beside the DSDT: the NVDIMM SSDT (with memory slots) and the
    /// NFIT (when NVDIMMs exist at boot, as QEMU does).
    pub fn extra_tables(
        &self,
        slots: u32,
    ) -> std::result::Result<Vec<Vec<u8>>, crate::acpi::AcpiError> {
        let mut tables = Vec::new();
        if let Some(ctl) = &self.nvdimm {
            let ctl = lock(ctl);
            if slots > 0 {
                tables.push(ctl.ssdt(slots)?);
            }
            tables.extend(ctl.nfit());
        }
        Ok(tables)
    }

    /// The GED (power button and hotplug events); present once platform devices are added.
    pub fn ged(&self) -> Option<&GedNotifier> {
        self.ged.as_ref()
    }

    /// The NVDIMM root device.
    pub fn nvdimm(&self) -> Option<&Arc<Mutex<NvdimmController>>> {
        self.nvdimm.as_ref()
    }

    /// QMP `query-memory-devices`: every memory device in address-allocation order.
    pub fn memory_devices(&self) -> Vec<MemoryDeviceInfo> {
        self.layout
            .iter()
            .filter_map(|placed| self.plugged.iter().find(|p| p.plan.id == placed.id))
            .map(|p| {
                let info = PcdimmDeviceInfo {
                    id: p.plan.named.then(|| p.plan.id.clone()),
                    addr: p.plan.gpa,
                    size: p.plan.size,
                    slot: i64::from(p.plan.slot),
                    node: i64::from(p.plan.node),
                    memdev: format!("/objects/{}", p.plan.memdev),
                    hotplugged: p.hot,
                    hotpluggable: true,
                };
                if p.nvdimm {
                    MemoryDeviceInfo::Nvdimm(info)
                } else {
                    MemoryDeviceInfo::Dimm(info)
                }
            })
            .collect()
    }

    /// Stops and joins the virtio I/O threads (after the vCPUs stopped: nothing notifies any
    /// more), so images are unlocked before a reset rebuilds the VM.
    pub fn stop_io(&mut self) {
        self.io_workers.clear();
    }
}

/// The thread that serves the device, and an ioeventfd per queue on its QueueNotify register
/// (a 4-byte write of the queue index). `IoWorker::start` starts the thread before registering:
/// an ioeventfd nobody reads would swallow the guest's notifies; a queue KVM refuses stays on
/// the MMIO path (the vCPU that notifies does the work).
fn io_worker(
    vm: &VmFd,
    dev: &Arc<Mutex<VirtioMmio>>,
    base: u64,
    id: &str,
) -> std::result::Result<IoWorker, String> {
    let addr = kvm_ioctls::IoEventAddress::Mmio(base + mmio::QUEUE_NOTIFY);
    IoWorker::start(format!("io-{id}"), dev.clone(), |queue, evt| {
        Ok(vm.register_ioevent(evt, &addr, queue)?)
    })
    .map_err(|e| e.to_string())
}
