//! Building a VM from its configuration and running it until poweroff, reset or quit.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};

use kvm_bindings::{KVM_PIT_SPEAKER_DUMMY, kvm_pit_config};
use kvm_ioctls::Kvm;
use vm_config::{BootSource, DebugconConfig, SerialConfig, VmConfig};

use crate::acpi::{self, AcpiInput};
use crate::arch::x86_64::boot::{BootSpec, E820Entry, load_kernel};
use crate::arch::x86_64::firmware::{FirmwareImage, FirmwareSpec, build_fw_cfg};
use crate::arch::x86_64::layout::{KVM_IDENTITY_MAP_ADDR, KVM_TSS_ADDR};
use crate::arch::x86_64::{cpu, regs};
use crate::bus::Buses;
use crate::console;
use crate::device_manager::DeviceManager;
use crate::devices::net::NetDev;
use crate::devices::virtio::block::Block;
use crate::devices::{EventSink, VmEvent};
use crate::error::{Error, Result};
use crate::memory::{GuestRam, RamSplit, create_guest_memory, e820_map, register_memory};
use crate::vcpu::{RunState, VcpuControl, spawn_vcpu};
pub use crate::vm_handle::VmHandle;

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
    /// Every device, the buses and the allocators (the monitor plugs through it).
    devices: Arc<Mutex<DeviceManager>>,
    _mem: GuestRam,
    bus: Arc<Buses>,
    events_tx: EventSink,
    events_rx: Receiver<VmEvent>,
    /// vCPU run state (QMP stop/cont).
    control: Arc<VcpuControl>,
    /// The NICs' backends and link switches (monitor: `info network`, `set_link`, `hostfwd_*`).
    nets: Arc<Vec<NetDev>>,
}

/// The UART's output: its `-serial` backend, teed to the VNC text console when `-vnc` runs.
fn serial_output(cfg: &SerialConfig) -> Result<Option<Box<dyn Write + Send>>> {
    let backend: Option<Box<dyn Write + Send>> = match cfg {
        SerialConfig::Stdio => Some(Box::new(std::io::stdout())),
        SerialConfig::File(p) => Some(Box::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| Error::io(format!("-serial file:{}", p.display()), e))?,
        )),
        SerialConfig::None | SerialConfig::Vc => None,
    };
    if *cfg == SerialConfig::None {
        return Ok(None);
    }
    Ok(crate::vnc::serial_writer(backend))
}

/// Opens every `-drive` and registers a virtio-blk device for it; returns each drive's
/// virtio-mmio window base, in `cfg.drives` order.
fn add_drives(devices: &mut DeviceManager, cfg: &VmConfig) -> Result<Vec<u64>> {
    let mut bases = Vec::with_capacity(cfg.drives.len());
    for (n, d) in cfg.drives.iter().enumerate() {
        let (block, warnings) = Block::open(d, n)?;
        for w in warnings {
            eprintln!("{w}");
        }
        eprintln!("pmvm: {}", block.describe(d));
        bases.push(devices.add_virtio("-drive", &d.id, Box::new(block))?);
    }
    Ok(bases)
}

/// `-debugcon`: the firmware's debug port, when asked for (without it the port reads as
/// absent and SeaBIOS does not log at all).
fn add_debugcon(devices: &mut DeviceManager, cfg: &VmConfig) -> Result<()> {
    use crate::devices::debugcon::{DEBUGCON_PORT, Debugcon};
    let dev = match &cfg.debugcon {
        None => return Ok(()),
        Some(DebugconConfig::Stdio) => Debugcon::new(Box::new(std::io::stderr()), "firmware: "),
        Some(DebugconConfig::File(p)) => Debugcon::new(
            Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| Error::io(format!("-debugcon file:{}", p.display()), e))?,
            ),
            "",
        ),
    };
    devices.add_pio_device(
        "debugcon",
        DEBUGCON_PORT,
        1,
        Arc::new(Mutex::new(dev)),
        None,
    )?;
    Ok(())
}

/// Firmware boot: the image mapped below 4 GiB and aliased below 1 MiB, fw_cfg with the
/// machine's description and the ACPI tables for the firmware's table loader.
fn setup_firmware(
    devices: &mut DeviceManager,
    mem: &GuestRam,
    path: &std::path::Path,
    spec: &FirmwareSpec,
) -> Result<()> {
    let image = FirmwareImage::load(path)?;
    devices.map_rom("-bios", image.rom_gpa(), &image.bytes)?;
    image.copy_low_alias(mem)?;
    let fw = build_fw_cfg(mem, spec)?;
    devices.add_pio_device(
        "fw_cfg",
        fw_cfg::PORT_BASE,
        fw_cfg::PORT_COUNT,
        Arc::new(Mutex::new(crate::devices::fw_cfg::FwCfgDevice(fw))),
        None,
    )?;
    use crate::devices::reset_cf9::{RESET_CONTROL_PORT, ResetControl};
    let reset = ResetControl::new(devices.event_sink());
    devices.add_pio_device(
        "reset control",
        RESET_CONTROL_PORT,
        1,
        Arc::new(Mutex::new(reset)),
        None,
    )?;
    for d in &spec.cfg.drives {
        if vm_config::cdrom_without_mbr(d) {
            eprintln!(
                "pmvm: warning: -drive {}: {} has no MBR boot record (not an isohybrid ISO); \
                 the firmware sees pmvm's CD-ROMs as virtio disks and cannot boot it",
                d.id,
                d.file.display()
            );
        }
    }
    Ok(())
}

/// Opens every NIC's backend (user network, tap) and registers a virtio-net device for it.
fn add_nics(devices: &mut DeviceManager, cfg: &VmConfig) -> Result<Vec<NetDev>> {
    for w in &cfg.net_warnings {
        eprintln!("{w}");
    }
    let mut nets = Vec::with_capacity(cfg.nics.len());
    for nic in &cfg.nics {
        if let Some(n) = nic.model_notice() {
            eprintln!("{n}");
        }
        let (netdev, net) = NetDev::open(nic)?;
        eprintln!("pmvm: {}", netdev.describe());
        devices.add_virtio("-netdev", &nic.id, Box::new(net))?;
        nets.push(netdev);
    }
    Ok(nets)
}

impl Vm {
    /// Builds the VM: KVM objects, memory, devices, ACPI, kernel, vCPUs.
    pub fn build(kvm: &Kvm, cfg: &VmConfig) -> Result<Vm> {
        let t0 = std::time::Instant::now();
        let vm = kvm.create_vm().map_err(Error::kvm("KVM_CREATE_VM"))?;
        vm.set_tss_address(KVM_TSS_ADDR as usize)
            .map_err(Error::kvm("KVM_SET_TSS_ADDR"))?;
        vm.set_identity_map_address(KVM_IDENTITY_MAP_ADDR)
            .map_err(Error::kvm("KVM_SET_IDENTITY_MAP_ADDR"))?;
        vm.create_irq_chip()
            .map_err(Error::kvm("KVM_CREATE_IRQCHIP"))?;
        let pit = kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        vm.create_pit2(pit).map_err(Error::kvm("KVM_CREATE_PIT2"))?;

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
        let first_free_slot = register_memory(&vm, &mem)?;
        let vm = Arc::new(vm);
        let (tx, rx) = channel();
        let sink = EventSink(tx);
        let max_slots = u32::try_from(kvm.get_nr_memslots()).unwrap_or(u32::MAX);
        let mut devices = DeviceManager::new(
            vm.clone(),
            mem.clone(),
            sink.clone(),
            cfg,
            first_free_slot,
            max_slots,
        )?;
        let serial = devices.add_platform_devices(cfg, serial_output(&cfg.serial)?)?;
        let has_serial = serial.is_some();
        // Input from the terminal (stdio) or typed in a VNC viewer (consoles 1 and 3).
        if let Some(serial) = serial
            && (cfg.serial == SerialConfig::Stdio || cfg.vnc.is_some())
        {
            console::attach(serial, sink.clone());
        }
        add_debugcon(&mut devices, cfg)?;
        devices.plug_configured_memory_devices(cfg)?;
        tracing::debug!("memory devices plugged after {:?}", t0.elapsed());
        let drive_bases = add_drives(&mut devices, cfg)?;
        let nets = Arc::new(add_nics(&mut devices, cfg)?);

        let extra_tables = devices.extra_tables(cfg.memory.slots)?;
        let tables = acpi::build_tables(&AcpiInput {
            cpus: cfg.cpus,
            dsdt_body: devices.dsdt_body(),
            extra_tables: &extra_tables,
        });
        let e820: Vec<E820Entry> = e820_map(split, mailbox_size);
        let entry = match &cfg.source {
            BootSource::Kernel(kernel) => {
                let rsdp = acpi::place_tables(&mem, &tables)?;
                crate::arch::x86_64::reset_vector::write_reset_vector(&mem)?;
                Some(load_kernel(
                    &mem,
                    &BootSpec {
                        kernel,
                        initrd: cfg.initrd.as_deref(),
                        cmdline: &cfg.append,
                        e820: &e820,
                        low_ram_end: split.below_4g,
                        rsdp_addr: rsdp,
                    },
                )?)
            }
            BootSource::Firmware(path) => {
                let blobs = acpi::loader_blobs(&tables)?;
                let spec = FirmwareSpec {
                    cfg,
                    e820: &e820,
                    drive_bases: &drive_bases,
                    serial: has_serial,
                    acpi: &blobs,
                };
                setup_firmware(&mut devices, &mem, path, &spec)?;
                // vCPU 0 starts from KVM's reset state, at the firmware's reset vector.
                None
            }
        };

        tracing::debug!("boot set up after {:?}", t0.elapsed());
        let base_cpuid = kvm
            .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
            .map_err(Error::kvm("KVM_GET_SUPPORTED_CPUID"))?;
        let mut vcpus = Vec::with_capacity(cfg.cpus as usize);
        for i in 0..cfg.cpus {
            let vcpu = vm
                .create_vcpu(u64::from(i))
                .map_err(Error::kvm("KVM_CREATE_VCPU"))?;
            vcpu.set_cpuid2(&cpu::vcpu_cpuid(&base_cpuid, i, cfg.cpus))
                .map_err(Error::kvm("KVM_SET_CPUID2"))?;
            cpu::setup_msrs(&vcpu)?;
            regs::setup_fpu(&vcpu)?;
            cpu::setup_lint(&vcpu)?;
            if i == 0
                && let Some(entry) = entry
            {
                regs::setup_regs(&vcpu, entry.entry, entry.mode)?;
                regs::setup_sregs(&mem, &vcpu, entry.mode)?;
            }
            vcpus.push(vcpu);
        }
        tracing::debug!("VM built in {:?}", t0.elapsed());
        Ok(Vm {
            vcpus,
            bus: devices.buses(),
            devices: Arc::new(Mutex::new(devices)),
            _mem: mem,
            events_tx: sink,
            events_rx: rx,
            control: VcpuControl::new(if cfg.start_paused {
                RunState::Paused
            } else {
                RunState::Running
            }),
            nets,
        })
    }

    /// What the monitor needs of this VM.
    pub fn handle(&self) -> VmHandle {
        VmHandle {
            sink: self.events_tx.clone(),
            control: self.control.clone(),
            vcpus: self.vcpus.len(),
            devices: self.devices.clone(),
            nets: self.nets.clone(),
        }
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
        self.devices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stop_io();
        tracing::debug!("vCPUs stopped in {:?}", t_stop.elapsed());
        Ok(reason)
    }
}
