//! The QMP and human monitors' view of the VM: queries, stop/cont, powerdown/reset/quit, and
//! memory hotplug (`object-add` + `device_add nvdimm`), through the same configuration and
//! layout code as the command line.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use qmp::{
    Command, Event, MemoryDeviceInfo, PcdimmDeviceInfo, QmpError, QmpHandler, QmpServer,
    ShutdownCause,
};
use serde_json::{Value, json};
use vm_config::{BackendConfig, DeviceConfig, Props, VmConfig};

use crate::devices::acpi_pm::{GED_MEMORY_HOTPLUG, GED_NVDIMM_HOTPLUG, GED_POWER_BUTTON};
use crate::devices::nvdimm::backend::Backend;
use crate::devices::nvdimm::{Nvdimm, label_safety};
use crate::devices::{EventSink, VmEvent};
use crate::error::{Error, Result};
use crate::vcpu::RunState;
use crate::vm::Vm;

/// What the monitor holds of the running VM.
struct Attached {
    sink: EventSink,
    control: Arc<crate::vcpu::VcpuControl>,
    vcpus: usize,
    vm_fd: Arc<kvm_ioctls::VmFd>,
    nvdimm: Option<Arc<Mutex<crate::devices::nvdimm::controller::NvdimmController>>>,
    memhp: Arc<Mutex<crate::devices::memhp::MemoryHotplug>>,
    ged: crate::devices::acpi_pm::GedNotifier,
    /// Hot-added RAM DIMMs (their mappings live as long as this VM).
    hot_ram: Vec<Nvdimm>,
    /// What virtio devices may address; hot-added memory devices join it.
    dma: crate::memory::DmaMemory,
}

struct State {
    /// The configuration including hot-plugged objects and devices (a reset rebuilds from it).
    cfg: VmConfig,
    vm: Option<Attached>,
    /// Device memory of the running VM.
    dm: Option<pmem_layout::DeviceMemory>,
    next_slot: u32,
    /// Backends opened by `object-add`, waiting for a device.
    pending: HashMap<String, Arc<Backend>>,
    hotplugged: Vec<String>,
    paused: bool,
    quit_cause: ShutdownCause,
    /// `quit` was asked for: also honoured while no VM is attached (between a reset and the
    /// rebuilt VM), so it can never be lost.
    quit_requested: bool,
}

/// Shared between the QMP/HMP client threads and the main loop.
pub struct Monitor {
    state: Mutex<State>,
    server: Mutex<Option<QmpServer>>,
}

/// Host thread ids of the vCPU threads, by vCPU index: the threads named `vcpuN` in
/// /proc/self/task (vcpu.rs names them so).
fn vcpu_thread_ids() -> HashMap<u32, i64> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|t| t.parse::<i64>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if let Some(i) = comm
            .trim()
            .strip_prefix("vcpu")
            .and_then(|n| n.parse::<u32>().ok())
        {
            out.insert(i, tid);
        }
    }
    out
}

fn generic(msg: impl Into<String>) -> QmpError {
    QmpError::generic(msg.into())
}

impl Monitor {
    /// A monitor for `cfg`.
    pub fn new(cfg: VmConfig) -> Arc<Monitor> {
        let paused = cfg.start_paused;
        Arc::new(Monitor {
            state: Mutex::new(State {
                cfg,
                vm: None,
                dm: None,
                next_slot: 0,
                pending: HashMap::new(),
                hotplugged: Vec::new(),
                paused,
                quit_cause: ShutdownCause::HostQmpQuit,
                quit_requested: false,
            }),
            server: Mutex::new(None),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the `-qmp` and `-monitor` endpoints; returns whether a monitor owns stdio.
    pub fn start_servers(self: &Arc<Self>) -> Result<bool> {
        let cfg = self.config();
        let serial_stdio = cfg.serial == vm_config::SerialConfig::Stdio;
        if cfg.qmp.is_empty() && cfg.monitor.is_empty() && !serial_stdio {
            return Ok(false);
        }
        let handler: Arc<dyn QmpHandler> = self.clone();
        let server = QmpServer::new(handler);
        server.set_thread_init(crate::seccomp::monitor_thread_init());
        let mut on_stdio = false;
        for (specs, hmp) in [(&cfg.qmp, false), (&cfg.monitor, true)] {
            for spec in specs {
                let opt = if hmp { "-monitor" } else { "-qmp" };
                let parsed = qmp::parse_chardev_spec(&spec.0)
                    .map_err(|e| Error::Config(format!("{opt} {}: {e}", spec.0)))?;
                if parsed.endpoint == qmp::Endpoint::Stdio {
                    on_stdio = true;
                    let s = server.clone();
                    std::thread::Builder::new()
                        .name("monitor-stdio".into())
                        .spawn(move || {
                            crate::seccomp::enter(crate::seccomp::ThreadKind::Monitor);
                            if hmp {
                                let _ = s.serve_hmp(std::io::stdin(), std::io::stdout());
                            } else {
                                s.serve_qmp(std::io::stdin(), std::io::stdout());
                            }
                        })
                        .map_err(|e| Error::io("cannot start the stdio monitor", e))?;
                    continue;
                }
                let res = if hmp {
                    server.listen_hmp(parsed.endpoint, parsed.server, parsed.wait)
                } else {
                    server.listen(parsed.endpoint, parsed.server, parsed.wait)
                };
                res.map_err(|e| Error::Config(format!("{opt} {}: {e}", spec.0)))?;
            }
        }
        if serial_stdio && !on_stdio {
            // QEMU's -nographic / mon:stdio: the human monitor behind Ctrl-a c.
            let s = server.clone();
            crate::console::set_monitor_hook(Box::new(move |line| s.hmp_command(line)));
        }
        *self.server.lock().unwrap_or_else(|p| p.into_inner()) = Some(server);
        Ok(on_stdio)
    }

    /// Sends an event to every negotiated QMP client.
    pub fn emit(&self, ev: Event) {
        if let Some(s) = self
            .server
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            s.emit(ev);
        }
    }

    /// Closes the monitor sockets.
    pub fn shutdown(&self) {
        if let Some(s) = self.server.lock().unwrap_or_else(|p| p.into_inner()).take() {
            s.shutdown();
        }
    }

    /// The current configuration (with hot-plugged devices).
    pub fn config(&self) -> VmConfig {
        self.lock().cfg.clone()
    }

    /// Whether `quit` was requested (the main loop must not build another VM).
    pub fn quit_requested(&self) -> bool {
        self.lock().quit_requested
    }

    /// Ends the VM as `quit` does, for another `cause` (a signal).
    pub fn request_quit(&self, cause: ShutdownCause) {
        Self::quit_locked(&mut self.lock(), cause);
    }

    fn quit_locked(st: &mut State, cause: ShutdownCause) {
        st.quit_cause = cause;
        st.quit_requested = true;
        if let Some(vm) = &st.vm {
            // A paused VM must be able to stop.
            vm.sink.send(VmEvent::Quit);
        }
    }

    /// Why a Quit event happened.
    pub fn quit_cause(&self) -> ShutdownCause {
        self.lock().quit_cause
    }

    /// Connects the monitor to a freshly built VM.
    pub fn attach(&self, vm: &Vm) {
        let mut st = self.lock();
        st.dm = Some(vm.device_memory.clone());
        st.next_slot = vm.next_slot;
        st.vm = Some(Attached {
            sink: vm.event_sink(),
            control: vm.control.clone(),
            vcpus: vm.vcpu_count(),
            vm_fd: vm.vm_fd.clone(),
            nvdimm: vm.nvdimm.clone(),
            memhp: vm.memhp.clone(),
            ged: vm.ged.clone(),
            hot_ram: Vec::new(),
            dma: vm.dma.clone(),
        });
        // Hot-plugged devices are cold-plugged from now on (a rebuilt VM includes them).
        st.hotplugged.clear();
        st.paused = vm.control.state() == RunState::Paused;
        if st.quit_requested {
            vm.event_sink().send(VmEvent::Quit);
        }
    }

    /// Disconnects from a VM that stopped.
    pub fn detach(&self) {
        let mut st = self.lock();
        st.vm = None;
        st.dm = None;
    }

    fn memory_devices(st: &State) -> Vec<MemoryDeviceInfo> {
        let Some(dm) = &st.dm else { return Vec::new() };
        let mut out = Vec::new();
        for placed in dm.iter() {
            let dev = st
                .cfg
                .devices
                .iter()
                .enumerate()
                .find(|(i, d)| match d.id() {
                    Some(id) => id == placed.id,
                    None => format!("#dev{i}") == placed.id,
                });
            let Some((_, dev)) = dev else { continue };
            let info = PcdimmDeviceInfo {
                id: dev.id().map(str::to_string),
                addr: placed.placement.gpa,
                size: placed.placement.size,
                slot: i64::from(placed.placement.slot),
                node: i64::from(match dev {
                    DeviceConfig::Nvdimm(n) => n.node,
                    DeviceConfig::PcDimm(d) => d.node,
                }),
                memdev: format!("/objects/{}", dev.memdev()),
                hotplugged: st.hotplugged.iter().any(|h| h == &placed.id),
                hotpluggable: true,
            };
            out.push(match dev {
                DeviceConfig::Nvdimm(_) => MemoryDeviceInfo::Nvdimm(info),
                DeviceConfig::PcDimm(_) => MemoryDeviceInfo::Dimm(info),
            });
        }
        out
    }

    fn object_add(st: &mut State, add: qmp::ObjectAdd) -> std::result::Result<Value, QmpError> {
        let mut props: Props = Props(vec![
            ("qom-type".into(), add.qom_type.clone()),
            ("id".into(), add.id.clone()),
        ]);
        props.0.extend(add.props);
        let backend =
            BackendConfig::from_props(&add.qom_type, &props).map_err(|e| generic(e.to_string()))?;
        if st.cfg.backend(&backend.id).is_some() {
            return Err(generic(format!("Duplicate ID '{}' for object", backend.id)));
        }
        let opened = Backend::open(&backend, st.cfg.require_persistence)
            .map_err(|e| generic(e.to_string()))?;
        st.pending.insert(backend.id.clone(), Arc::new(opened));
        st.cfg.objects.push(backend);
        Ok(json!({}))
    }

    fn object_del(st: &mut State, id: &str) -> std::result::Result<Value, QmpError> {
        if st.cfg.backend(id).is_none() {
            return Err(generic(format!("object '{id}' not found")));
        }
        if st.cfg.devices.iter().any(|d| d.memdev() == id) {
            return Err(generic(format!(
                "object '{id}' is in use, can not be deleted"
            )));
        }
        st.cfg.objects.retain(|o| o.id != id);
        st.pending.remove(id);
        Ok(json!({}))
    }

    fn device_add(st: &mut State, add: qmp::DeviceAdd) -> std::result::Result<Value, QmpError> {
        let mut props = Props(vec![("driver".into(), add.driver.clone())]);
        if let Some(id) = &add.id {
            props.0.push(("id".into(), id.clone()));
        }
        props.0.extend(add.props);
        let dev =
            DeviceConfig::from_props(&add.driver, &props).map_err(|e| generic(e.to_string()))?;
        let is_nvdimm = matches!(dev, DeviceConfig::Nvdimm(_));
        if is_nvdimm && !st.cfg.machine.nvdimm {
            return Err(generic("nvdimm is not enabled: missing 'nvdimm' in '-M'"));
        }
        if let Some(id) = dev.id()
            && st.cfg.devices.iter().any(|d| d.id() == Some(id))
        {
            return Err(generic(format!("Duplicate device ID '{id}'")));
        }
        let memdev = dev.memdev().to_string();
        let Some(backend_cfg) = st.cfg.backend(&memdev).cloned() else {
            return Err(generic(format!(
                "Property '{}.memdev' can't find value '{memdev}'",
                add.driver
            )));
        };
        if st.cfg.devices.iter().any(|d| d.memdev() == memdev) {
            return Err(generic(format!("can't use already busy memdev: {memdev}")));
        }
        let Some(backend) = st.pending.get(&memdev).cloned() else {
            return Err(generic(format!("can't use already busy memdev: {memdev}")));
        };
        let index = st.cfg.devices.len();
        let (Some(dm), Some(vm)) = (st.dm.as_mut(), st.vm.as_mut()) else {
            return Err(generic("the VM is not running"));
        };
        let plan = vm_config::plan_device(dm, &dev, &backend_cfg, index)
            .map_err(|e| generic(e.to_string()))?;
        let id = plan.id.clone();
        let dimm = Nvdimm { plan, backend };
        let checked = if is_nvdimm {
            label_safety::check(&dimm, st.cfg.force_label_area)
        } else {
            Ok(())
        };
        let mapped = checked.and_then(|()| dimm.map_into_guest(&vm.vm_fd, st.next_slot));
        if let Err(e) = mapped {
            let _ = dm.forget(&id);
            return Err(generic(e.to_string()));
        }
        if let Err(e) = vm.dma.add(dimm.plan.gpa, dimm.plan.size, &dimm.backend) {
            // The guest still gets the memory; only virtio buffers placed in it fail.
            tracing::warn!("{id}: virtio devices cannot address the new memory: {e}");
        }
        let event = if is_nvdimm {
            eprintln!("pmvm: hotplug: {}", dimm.describe());
            let Some(ctl) = vm.nvdimm.clone() else {
                return Err(generic("nvdimm is not enabled: missing 'nvdimm' in '-M'"));
            };
            ctl.lock().unwrap_or_else(|p| p.into_inner()).add(dimm);
            GED_NVDIMM_HOTPLUG
        } else {
            if let Some(w) = dimm.memory_block_warning() {
                eprintln!("{w}");
            }
            let p = &dimm.plan;
            vm.memhp
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .plug(p.slot, p.gpa, p.size, p.node, true);
            vm.hot_ram.push(dimm);
            GED_MEMORY_HOTPLUG
        };
        if let Err(e) = vm.ged.notify(event) {
            tracing::warn!("cannot notify the guest of the new memory device: {e}");
        }
        st.next_slot += 1;
        st.pending.remove(&memdev);
        st.hotplugged.push(id);
        st.cfg.devices.push(dev);
        Ok(json!({}))
    }

    fn execute_locked(&self, st: &mut State, cmd: Command) -> std::result::Result<Value, QmpError> {
        match cmd {
            Command::QueryStatus => {
                let (running, status) = match (&st.vm, st.paused) {
                    (None, _) => (false, qmp::RunState::Shutdown),
                    (Some(_), true) => (false, qmp::RunState::Paused),
                    (Some(_), false) => (true, qmp::RunState::Running),
                };
                Ok(serde_json::to_value(qmp::StatusInfo {
                    running,
                    singlestep: None,
                    status,
                })
                .unwrap_or(Value::Null))
            }
            Command::QueryName => Ok(serde_json::to_value(qmp::NameInfo {
                name: st.cfg.name.clone(),
            })
            .unwrap_or(Value::Null)),
            Command::QueryMemoryDevices => {
                Ok(serde_json::to_value(Self::memory_devices(st)).unwrap_or(Value::Null))
            }
            Command::QueryMemorySizeSummary => {
                let plugged: u64 = Self::memory_devices(st)
                    .iter()
                    .filter_map(|d| match d {
                        MemoryDeviceInfo::Dimm(i) => Some(i.size),
                        MemoryDeviceInfo::Nvdimm(_) => None,
                    })
                    .sum();
                Ok(json!({"base-memory": st.cfg.memory.size, "plugged-memory": plugged}))
            }
            Command::QueryCpusFast => {
                let Some(vm) = &st.vm else {
                    return Ok(json!([]));
                };
                let tids = vcpu_thread_ids();
                let cpus: Vec<qmp::CpuInfoFast> = (0..vm.vcpus as u32)
                    .map(|i| qmp::CpuInfoFast {
                        cpu_index: i,
                        qom_path: format!("/machine/unattached/device[{i}]"),
                        thread_id: tids.get(&i).copied().unwrap_or(-1),
                        // pmvm does not model sockets or SMT: each vCPU is reported as
                        // its own core of socket 0 (what QEMU reports for -smp N, cores).
                        props: qmp::CpuInstanceProperties {
                            node_id: None,
                            socket_id: Some(0),
                            die_id: Some(0),
                            core_id: Some(i),
                            thread_id: Some(0),
                        },
                        target: "x86_64".into(),
                    })
                    .collect();
                Ok(serde_json::to_value(cpus).unwrap_or(Value::Null))
            }
            Command::InfoRegisters { all } => {
                let Some(vm) = &st.vm else {
                    return Err(generic("the VM is not running"));
                };
                let n = if all { vm.vcpus } else { vm.vcpus.min(1) };
                let text: String = vm
                    .control
                    .dump_registers(vm.vcpus)
                    .into_iter()
                    .take(n)
                    .enumerate()
                    .map(|(i, d)| d.unwrap_or_else(|| format!("CPU#{i}: no answer (stopped)\n")))
                    .collect::<Vec<_>>()
                    .join("\n");
                Ok(Value::String(text))
            }
            Command::QueryBlock => Ok(Value::Array(st.cfg.drives.iter().map(block_info).collect())),
            Command::QueryMemdev => {
                let list: Vec<Value> = st
                    .cfg
                    .objects
                    .iter()
                    .map(|o| {
                        json!({"id": o.id, "size": o.size, "merge": true, "dump": true, "prealloc": o.prealloc,
                               "share": o.share, "host-nodes": [], "policy": "default"})
                    })
                    .collect();
                Ok(Value::Array(list))
            }
            Command::ObjectAdd(add) => Self::object_add(st, add),
            Command::ObjectDel { id } => Self::object_del(st, &id),
            Command::DeviceAdd(add) => Self::device_add(st, add),
            Command::DeviceDel { id } => {
                let found = st.cfg.devices.iter().find(|d| d.id() == Some(id.as_str()));
                match found {
                    Some(DeviceConfig::Nvdimm(_)) => {
                        Err(generic("nvdimm device hot unplug is not supported yet."))
                    }
                    Some(DeviceConfig::PcDimm(_)) => {
                        Err(generic("pc-dimm hot unplug is not supported by pmvm yet"))
                    }
                    None => Err(QmpError::device_not_found(&id)),
                }
            }
            Command::Stop | Command::Cont => {
                let stop = matches!(cmd, Command::Stop);
                let Some(vm) = &st.vm else {
                    return Err(generic("the VM is not running"));
                };
                let (control, n) = (vm.control.clone(), vm.vcpus);
                if stop != st.paused {
                    control.set(
                        if stop {
                            RunState::Paused
                        } else {
                            RunState::Running
                        },
                        n,
                    );
                    st.paused = stop;
                    self.emit(if stop { Event::stop() } else { Event::resume() });
                }
                Ok(json!({}))
            }
            Command::SystemPowerdown => {
                let Some(vm) = &st.vm else {
                    return Err(generic("the VM is not running"));
                };
                vm.ged
                    .notify(GED_POWER_BUTTON)
                    .map_err(|e| generic(format!("power button: {e}")))?;
                self.emit(Event::powerdown());
                Ok(json!({}))
            }
            Command::SystemReset => {
                let Some(vm) = &st.vm else {
                    return Err(generic("the VM is not running"));
                };
                vm.sink.send(VmEvent::Reset);
                Ok(json!({}))
            }
            Command::Quit => {
                Self::quit_locked(st, ShutdownCause::HostQmpQuit);
                Ok(json!({}))
            }
            other => Err(QmpError::command_not_found(format!(
                "The command {other:?} has not been found"
            ))),
        }
    }
}

impl QmpHandler for Monitor {
    fn execute(&self, cmd: Command) -> std::result::Result<Value, QmpError> {
        let mut st = self.lock();
        self.execute_locked(&mut st, cmd)
    }
}

/// `query-block` for one drive. The size is read now (the image may have grown since start,
/// but the guest keeps the capacity it was given, which is what a restart would give too).
fn block_info(d: &vm_config::DriveConfig) -> Value {
    use std::io::{Seek, SeekFrom};
    let file = d.file.display().to_string();
    let size = std::fs::File::open(&d.file)
        .and_then(|mut f| f.seek(SeekFrom::End(0)))
        .map_or(0, |s| s / 512 * 512);
    let info = qmp::types::BlockInfo {
        device: d.id.clone(),
        kind: "unknown".into(),
        removable: false,
        locked: false,
        io_status: Some("ok".into()),
        inserted: Some(qmp::types::BlockDeviceInfo {
            file: file.clone(),
            ro: d.readonly,
            drv: "raw".into(),
            encrypted: false,
            backing_file_depth: 0,
            detect_zeroes: "off".into(),
            bps: 0,
            bps_rd: 0,
            bps_wr: 0,
            iops: 0,
            iops_rd: 0,
            iops_wr: 0,
            image: qmp::types::ImageInfo {
                filename: file,
                format: "raw".into(),
                virtual_size: size,
            },
            cache: qmp::types::BlockdevCacheInfo {
                writeback: !d.cache.write_through(),
                direct: d.cache.direct(),
                no_flush: d.cache == vm_config::DriveCache::Unsafe,
            },
            write_threshold: 0,
        }),
    };
    serde_json::to_value(info).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::vcpu_thread_ids;

    #[test]
    fn vcpu_thread_ids_finds_threads_named_vcpu_n() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::Builder::new()
            .name("vcpu7".into())
            .spawn(move || {
                // SAFETY: gettid has no preconditions.
                tx.send(i64::from(unsafe { libc::gettid() })).unwrap();
                let _ = done_rx.recv();
            })
            .unwrap();
        let tid = rx.recv().unwrap();
        let ids = vcpu_thread_ids();
        done_tx.send(()).unwrap();
        t.join().unwrap();
        assert_eq!(ids.get(&7), Some(&tid), "{ids:?}");
    }
}
