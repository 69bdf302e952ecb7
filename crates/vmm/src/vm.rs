//! Building a VM from its configuration and running it until poweroff, reset or quit.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};

use kvm_bindings::{KVM_PIT_SPEAKER_DUMMY, kvm_pit_config};
use kvm_ioctls::{Kvm, VmFd};
use vm_config::{DeviceConfig, PersistenceDomain, SerialConfig, VmConfig};
use vmm_sys_util::eventfd::EventFd;

use crate::acpi::{self, AcpiInput};
use crate::arch::x86_64::boot::{BootSpec, load_kernel};
use crate::arch::x86_64::layout::{
    KVM_IDENTITY_MAP_ADDR, KVM_TSS_ADDR, VIRTIO_MMIO_BASE, irqs, ports,
};
use crate::arch::x86_64::{cpu, regs};
use crate::bus::{Buses, MmioBus};
use crate::console;
use crate::devices::acpi_pm::{AcpiPm, AcpiPmAml, Ged, GedNotifier};
use crate::devices::i8042::I8042;
use crate::devices::memhp::{MemoryHotplug, MemoryHotplugAml};
use crate::devices::nvdimm::backend::Backend;
use crate::devices::nvdimm::controller::NvdimmController;
use crate::devices::nvdimm::{Nvdimm, label_safety};
use crate::devices::serial::{Serial, SerialAml};
use crate::devices::virtio::block::Block;
use crate::devices::virtio::mmio::{self, VirtioMmio, VirtioMmioAml};
use crate::devices::virtio::worker::IoWorker;
use crate::devices::{EventSink, IrqLine, VmEvent};
use crate::error::{Error, Result};
use crate::memory::{
    DmaMemory, GuestRam, RamSplit, create_guest_memory, e820_map, register_memory,
};
use crate::monitor::Monitor;
use crate::vcpu::{RunState, VcpuControl, spawn_vcpu};
use qmp::ShutdownCause;

/// How a guest run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    Poweroff,
    Reset,
    Quit,
    /// A vCPU failed (the reason was logged).
    Crash,
}

/// A built VM, ready to run.
pub struct Vm {
    // Field order matters for drop: vCPU fds and the VM fd go before the memory they map.
    vcpus: Vec<kvm_ioctls::VcpuFd>,
    /// The VM file descriptor (hotplug adds memory slots through it).
    pub vm_fd: Arc<VmFd>,
    _mem: GuestRam,
    bus: Arc<Buses>,
    events_tx: EventSink,
    events_rx: Receiver<VmEvent>,
    /// vCPU run state (QMP stop/cont).
    pub control: Arc<VcpuControl>,
    /// Raises power-button and hotplug events.
    pub ged: GedNotifier,
    /// The NVDIMM root device, when `-machine nvdimm=on`.
    pub nvdimm: Option<Arc<Mutex<NvdimmController>>>,
    /// The memory-hotplug controller (RAM DIMM slots).
    pub memhp: Arc<Mutex<MemoryHotplug>>,
    /// Cold-plugged RAM DIMMs (kept alive with the VM).
    pub ram_dimms: Vec<Nvdimm>,
    /// Slots and addresses of memory devices (hotplug plugs into it).
    pub device_memory: pmem_layout::DeviceMemory,
    /// Next free KVM memory slot.
    pub next_slot: u32,
    /// What virtio devices may address (hotplug adds memory devices to it).
    pub dma: DmaMemory,
    /// The disks' I/O threads (stopped and joined when the VM stops).
    io_workers: Vec<IoWorker>,
}

/// The cold-plugged memory devices.
struct MemoryDevices {
    layout: pmem_layout::DeviceMemory,
    nvdimms: Vec<Nvdimm>,
    /// pc-dimms: same mapping code, no label area, announced through ACPI memory hotplug.
    ram_dimms: Vec<Nvdimm>,
}

/// Opens every backend, checks the label areas and builds the cold-plugged devices.
fn build_memory_devices(cfg: &VmConfig) -> Result<MemoryDevices> {
    let (layout, plans) = vm_config::plan_devices(cfg).map_err(|e| Error::Config(e.to_string()))?;
    let (mut nvdimms, mut ram_dimms) = (Vec::new(), Vec::new());
    for (plan, dev) in plans.into_iter().zip(&cfg.devices) {
        let backend_cfg = cfg
            .backend(&plan.memdev)
            .ok_or_else(|| Error::Config(format!("memdev '{}' not found", plan.memdev)))?;
        let backend = Arc::new(Backend::open(
            backend_cfg,
            cfg.require_persistence && matches!(dev, DeviceConfig::Nvdimm(_)),
        )?);
        let dimm = Nvdimm { plan, backend };
        match dev {
            DeviceConfig::Nvdimm(_) => {
                label_safety::check(&dimm, cfg.force_label_area)?;
                nvdimms.push(dimm);
            }
            DeviceConfig::PcDimm(_) => ram_dimms.push(dimm),
        }
    }
    Ok(MemoryDevices {
        layout,
        nvdimms,
        ram_dimms,
    })
}

fn irq_line(vm: &VmFd, gsi: u32) -> Result<IrqLine> {
    let evt = EventFd::new(libc::EFD_NONBLOCK).map_err(|e| Error::io("eventfd", e))?;
    vm.register_irqfd(&evt, gsi).map_err(Error::Kvm)?;
    Ok(IrqLine(evt))
}

fn serial_output(cfg: &SerialConfig) -> Result<Option<Box<dyn Write + Send>>> {
    Ok(match cfg {
        SerialConfig::Stdio => Some(Box::new(std::io::stdout())),
        SerialConfig::File(p) => Some(Box::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| Error::io(format!("-serial file:{}", p.display()), e))?,
        )),
        SerialConfig::None => None,
    })
}

/// Opens every `-drive` and puts a virtio-blk device for it on the MMIO bus and in the DSDT,
/// each with an I/O thread fed by an ioeventfd on its QueueNotify register (returned; they stop
/// when dropped). Without ioeventfd support the vCPU that notifies does the I/O.
fn add_drives(
    vm: &VmFd,
    dma: &DmaMemory,
    cfg: &VmConfig,
    mmio: &mut MmioBus,
    dsdt: &mut Vec<u8>,
) -> Result<Vec<IoWorker>> {
    let mut workers = Vec::new();
    for (n, d) in cfg.drives.iter().enumerate() {
        let (block, warnings) = Block::open(d, n)?;
        for w in warnings {
            eprintln!("{w}");
        }
        eprintln!("pmvm: {}", block.describe(d));
        let n = n as u32;
        let base = VIRTIO_MMIO_BASE + u64::from(n) * mmio::WINDOW;
        let gsi = irqs::VIRTIO_FIRST + n;
        let dev = VirtioMmio::new(Box::new(block), dma.clone(), Box::new(irq_line(vm, gsi)?));
        let dev = Arc::new(Mutex::new(dev));
        match io_worker(vm, &dev, base, &d.id) {
            Ok(w) => workers.push(w),
            Err(e) => tracing::warn!("-drive {}: no I/O thread ({e}); vCPUs do its I/O", d.id),
        }
        if !mmio.insert(base, mmio::WINDOW, dev) {
            return Err(Error::Config(format!(
                "-drive {}: no room for its MMIO window",
                d.id
            )));
        }
        dsdt.extend(acpi::aml_bytes(&[&VirtioMmioAml {
            index: n,
            base,
            gsi,
        }]));
    }
    Ok(workers)
}

/// An ioeventfd on queue 0's notify (a 4-byte write of 0) and the thread that serves it.
fn io_worker(
    vm: &VmFd,
    dev: &Arc<Mutex<VirtioMmio>>,
    base: u64,
    id: &str,
) -> std::result::Result<IoWorker, String> {
    let evt = EventFd::new(libc::EFD_NONBLOCK).map_err(|e| e.to_string())?;
    let rx = evt.try_clone().map_err(|e| e.to_string())?;
    // The thread first: an ioeventfd nobody reads would swallow the guest's notifies. If KVM
    // then refuses the ioeventfd, dropping the worker stops it and the MMIO path stays.
    let worker =
        IoWorker::start(format!("io-{id}"), dev.clone(), rx, 0).map_err(|e| e.to_string())?;
    let addr = kvm_ioctls::IoEventAddress::Mmio(base + mmio::QUEUE_NOTIFY);
    vm.register_ioevent(&evt, &addr, 0u32)
        .map_err(|e| e.to_string())?;
    Ok(worker)
}

impl Vm {
    /// Builds the VM: KVM objects, memory, devices, ACPI, kernel, vCPUs.
    pub fn build(kvm: &Kvm, cfg: &VmConfig) -> Result<Vm> {
        let t0 = std::time::Instant::now();
        let vm = kvm.create_vm().map_err(Error::Kvm)?;
        vm.set_tss_address(KVM_TSS_ADDR as usize)
            .map_err(Error::Kvm)?;
        vm.set_identity_map_address(KVM_IDENTITY_MAP_ADDR)
            .map_err(Error::Kvm)?;
        vm.create_irq_chip().map_err(Error::Kvm)?;
        let pit = kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        vm.create_pit2(pit).map_err(Error::Kvm)?;

        tracing::debug!("KVM VM created after {:?}", t0.elapsed());
        let ram = pmem_layout::RamLayout::new(cfg.memory.size);
        let split = RamSplit {
            below_4g: ram.below_4g,
            above_4g: ram.above_4g,
        };
        let mailbox_size = if cfg.machine.nvdimm {
            nvdimm_acpi::MAILBOX_SIZE as u64
        } else {
            0
        };
        let mem = create_guest_memory(split, mailbox_size)?;
        let mut next_slot = register_memory(&vm, &mem)?;
        let devs = build_memory_devices(cfg)?;
        let (device_memory, dimms) = (devs.layout, devs.nvdimms);
        for d in &dimms {
            d.map_into_guest(&vm, next_slot)?;
            next_slot += 1;
            eprintln!("pmvm: {}", d.describe());
        }
        let memhp = Arc::new(Mutex::new(MemoryHotplug::new(cfg.memory.slots)));
        for d in &devs.ram_dimms {
            if let Some(w) = d.memory_block_warning() {
                eprintln!("{w}");
            }
            d.map_into_guest(&vm, next_slot)?;
            next_slot += 1;
            if let Ok(mut m) = memhp.lock() {
                m.plug(d.plan.slot, d.plan.gpa, d.plan.size, d.plan.node, false);
            }
        }

        // virtio devices may address boot RAM and every memory device (O_DIRECT into a DAX
        // file, page cache in a DIMM).
        let dma = DmaMemory::new(&mem);
        for d in dimms.iter().chain(&devs.ram_dimms) {
            dma.add(d.plan.gpa, d.plan.size, &d.backend)?;
        }
        tracing::debug!("memory and devices mapped after {:?}", t0.elapsed());
        let (tx, rx) = channel();
        let sink = EventSink(tx);
        let mut buses = Buses::default();
        let bus = &mut buses.pio;
        let mut dsdt: Vec<u8> = Vec::new();
        if let Some(out) = serial_output(&cfg.serial)? {
            let serial = Arc::new(Mutex::new(Serial::new(irq_line(&vm, irqs::COM1)?, out)));
            bus.insert(ports::COM1, 8, serial.clone());
            if cfg.serial == SerialConfig::Stdio {
                console::attach(serial, sink.clone());
            }
            dsdt.extend(acpi::aml_bytes(&[&SerialAml]));
        }
        bus.insert(
            ports::I8042_DATA,
            5,
            Arc::new(Mutex::new(I8042::new(sink.clone()))),
        );
        bus.insert(
            ports::RTC,
            2,
            Arc::new(Mutex::new(crate::devices::rtc::Rtc::default())),
        );
        bus.insert(
            ports::ACPI_SLEEP_CONTROL,
            3,
            Arc::new(Mutex::new(AcpiPm::new(sink.clone()))),
        );
        let (ged_dev, ged) = Ged::new(irq_line(&vm, irqs::GED)?);
        bus.insert(ports::GED_EVENT, 4, Arc::new(Mutex::new(ged_dev)));
        let memory_hotplug = cfg.memory.slots > 0;
        if memory_hotplug {
            bus.insert(ports::MEMHP_BASE, ports::MEMHP_LEN, memhp.clone());
            dsdt.extend(acpi::aml_bytes(&[&MemoryHotplugAml {
                slots: cfg.memory.slots,
            }]));
        }
        dsdt.extend(acpi::aml_bytes(&[&AcpiPmAml {
            nvdimm: cfg.machine.nvdimm,
            memory_hotplug,
        }]));

        let mut extra_tables = Vec::new();
        let nvdimm = if cfg.machine.nvdimm {
            let persistence = cfg.machine.nvdimm_persistence.map(|p| match p {
                PersistenceDomain::Cpu => nvdimm_acpi::Persistence::Cpu,
                PersistenceDomain::MemCtrl => nvdimm_acpi::Persistence::MemCtrl,
            });
            let ctl = NvdimmController::new(mem.clone(), dimms, persistence);
            if cfg.memory.slots > 0 {
                extra_tables.push(ctl.ssdt(cfg.memory.slots)?);
            }
            extra_tables.extend(ctl.nfit());
            let ctl = Arc::new(Mutex::new(ctl));
            bus.insert(nvdimm_acpi::DOORBELL_PORT, 4, ctl.clone());
            Some(ctl)
        } else {
            None
        };

        let io_workers = add_drives(&vm, &dma, cfg, &mut buses.mmio, &mut dsdt)?;

        let rsdp = acpi::write_tables(
            &mem,
            &AcpiInput {
                cpus: cfg.cpus,
                dsdt_body: &dsdt,
                extra_tables: &extra_tables,
            },
        )?;
        crate::arch::x86_64::reset_vector::write_reset_vector(&mem)?;
        let e820 = e820_map(split, mailbox_size);
        let entry = load_kernel(
            &mem,
            &BootSpec {
                kernel: &cfg.kernel,
                initrd: cfg.initrd.as_deref(),
                cmdline: &cfg.append,
                e820: &e820,
                low_ram_end: split.below_4g,
                rsdp_addr: rsdp,
            },
        )?;

        tracing::debug!("kernel loaded after {:?}", t0.elapsed());
        let base_cpuid = kvm
            .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
            .map_err(Error::Kvm)?;
        let mut vcpus = Vec::with_capacity(cfg.cpus as usize);
        for i in 0..cfg.cpus {
            let vcpu = vm.create_vcpu(u64::from(i)).map_err(Error::Kvm)?;
            vcpu.set_cpuid2(&cpu::vcpu_cpuid(&base_cpuid, i, cfg.cpus))
                .map_err(Error::Kvm)?;
            cpu::setup_msrs(&vcpu)?;
            regs::setup_fpu(&vcpu)?;
            cpu::setup_lint(&vcpu)?;
            if i == 0 {
                regs::setup_regs(&vcpu, entry.entry, entry.mode)?;
                regs::setup_sregs(&mem, &vcpu, entry.mode)?;
            }
            vcpus.push(vcpu);
        }
        tracing::debug!("VM built in {:?}", t0.elapsed());
        Ok(Vm {
            vcpus,
            vm_fd: Arc::new(vm),
            _mem: mem,
            bus: Arc::new(buses),
            events_tx: sink,
            events_rx: rx,
            control: VcpuControl::new(if cfg.start_paused {
                RunState::Paused
            } else {
                RunState::Running
            }),
            ged,
            nvdimm,
            memhp,
            ram_dimms: devs.ram_dimms,
            device_memory,
            next_slot,
            dma,
            io_workers,
        })
    }

    /// Number of vCPUs.
    pub fn vcpu_count(&self) -> usize {
        self.vcpus.len()
    }

    /// A sender for events into this VM's control loop.
    pub fn event_sink(&self) -> EventSink {
        self.events_tx.clone()
    }

    /// Runs the guest until it powers off, resets or is told to quit.
    pub fn run(mut self) -> Result<ExitReason> {
        let count = self.vcpus.len();
        let control = self.control.clone();
        let mut handles = Vec::with_capacity(count);
        for (i, vcpu) in self.vcpus.drain(..).enumerate() {
            let h = spawn_vcpu(
                i as u32,
                vcpu,
                self.bus.clone(),
                control.clone(),
                self.events_tx.clone(),
            )
            .map_err(|e| Error::io("cannot start a vCPU thread", e))?;
            handles.push(h);
        }
        tracing::debug!("vCPUs started");
        let reason = match self.events_rx.recv() {
            Ok(VmEvent::Poweroff) => ExitReason::Poweroff,
            Ok(VmEvent::Reset) => ExitReason::Reset,
            Ok(VmEvent::Quit) => ExitReason::Quit,
            Ok(VmEvent::Crash) | Err(_) => ExitReason::Crash,
        };
        let t_stop = std::time::Instant::now();
        control.set(RunState::Stopping, count);
        for h in handles {
            let _ = h.join();
        }
        // The disks' I/O threads end after the vCPUs (nothing notifies any more), so the
        // images are unlocked before a reset rebuilds the VM.
        self.io_workers.clear();
        tracing::debug!("vCPUs stopped in {:?}", t_stop.elapsed());
        Ok(reason)
    }
}

/// Runs the configured VM, rebooting it on reset unless `-no-reboot`, with the QMP and human
/// monitors the command line asks for. Returns the process exit status.
pub fn run_vm(cfg: &VmConfig) -> Result<i32> {
    let kvm = Kvm::new().map_err(Error::KvmOpen)?;
    if cfg.sandbox {
        crate::seccomp::enable().map_err(|e| Error::Config(format!("-sandbox: {e}")))?;
    }
    crate::vcpu::install_kick_handler()
        .map_err(|e| Error::io("cannot install the vCPU kick handler", e))?;
    let monitor = Monitor::new(cfg.clone());
    crate::signals::start(&monitor).map_err(|e| Error::io("cannot start the signal thread", e))?;
    let monitor_on_stdio = monitor.start_servers()?;
    if cfg.serial == SerialConfig::Stdio && !monitor_on_stdio {
        console::enable_raw_mode();
        console::start_stdin_reader();
    }
    crate::seccomp::enter(crate::seccomp::ThreadKind::Main);
    let result = loop {
        let vm = match Vm::build(&kvm, &monitor.config()) {
            Ok(vm) => vm,
            Err(e) => break Err(e),
        };
        monitor.attach(&vm);
        let reason = vm.run();
        monitor.detach();
        match reason {
            Ok(ExitReason::Reset) => {
                monitor.emit(qmp::Event::reset(true, ShutdownCause::GuestReset));
                if monitor.quit_requested() {
                    monitor.emit(qmp::Event::shutdown(false, monitor.quit_cause()));
                    break Ok(0);
                }
                if cfg.no_reboot {
                    monitor.emit(qmp::Event::shutdown(true, ShutdownCause::GuestReset));
                    break Ok(0);
                }
                tracing::info!("guest reset: rebooting");
            }
            Ok(ExitReason::Poweroff) => {
                monitor.emit(qmp::Event::shutdown(true, ShutdownCause::GuestShutdown));
                break Ok(0);
            }
            Ok(ExitReason::Quit) => {
                monitor.emit(qmp::Event::shutdown(false, monitor.quit_cause()));
                break Ok(0);
            }
            Ok(ExitReason::Crash) => {
                monitor.emit(qmp::Event::shutdown(false, ShutdownCause::HostError));
                break Err(Error::Vcpu {
                    cpu: 0,
                    what: "the guest stopped on an unrecoverable vCPU error (see above)".into(),
                });
            }
            Err(e) => break Err(e),
        }
    };
    monitor.shutdown();
    console::restore_terminal();
    result
}
