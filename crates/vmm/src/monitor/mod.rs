//! The QMP and human monitors' view of the VM: queries (`queries.rs`), hot plug
//! (`hotplug.rs`, through the device manager's one plug path), and here the run control
//! (stop/cont, powerdown/reset/quit) and the monitor endpoints.

mod error;
pub mod hotplug;
mod net;
mod queries;
mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use qmp::{Command, Event, QmpError, QmpHandler, QmpServer, ShutdownCause};
use serde_json::{Value, json};
use vm_config::VmConfig;

use crate::devices::VmEvent;
use crate::devices::acpi_pm::GED_POWER_BUTTON;
use crate::error::{Error, Result};
use crate::vcpu::RunState;
use crate::vm_handle::VmHandle;
use state::State;

/// Shared between the QMP/HMP client threads and the main loop.
pub struct Monitor {
    state: Mutex<State>,
    server: Mutex<Option<QmpServer>>,
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
                pending: HashMap::new(),
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
        if cfg.qmp.is_empty() && cfg.monitor.is_empty() && !serial_stdio && cfg.vnc.is_none() {
            return Ok(false);
        }
        let handler: Arc<dyn QmpHandler> = self.clone();
        let server = QmpServer::new(handler);
        server.set_thread_init(crate::seccomp::monitor_thread_init());
        let mut on_stdio = false;
        for (specs, hmp) in [(&cfg.qmp, false), (&cfg.monitor, true)] {
            for spec in specs {
                let opt = if hmp { "-monitor" } else { "-qmp" };
                let parsed = qmp::parse_chardev_spec(&spec.0).map_err(|source| Error::Monitor {
                    option: opt,
                    spec: spec.0.clone(),
                    source,
                })?;
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
                res.map_err(|source| Error::Monitor {
                    option: opt,
                    spec: spec.0.clone(),
                    source,
                })?;
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

    /// Runs one human-monitor line (VNC console 2) through the server's HMP path; output
    /// uses `\n`. Before [`Monitor::start_servers`] there is no server yet.
    pub fn hmp_line(&self, line: &str) -> String {
        let server = self
            .server
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match server {
            Some(s) => s.hmp_command(line),
            None => "Error: the monitor is not running yet\n".to_string(),
        }
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

    /// Connects the monitor to a freshly built VM. Devices hot-plugged into the previous one
    /// are part of the configuration by now, so the rebuilt VM has them cold-plugged.
    pub fn attach(&self, vm: VmHandle) {
        let mut st = self.lock();
        st.paused = vm.control.state() == RunState::Paused;
        if st.quit_requested {
            vm.sink.send(VmEvent::Quit);
        }
        st.vm = Some(vm);
    }

    /// Disconnects from a VM that stopped.
    pub fn detach(&self) {
        self.lock().vm = None;
    }

    fn execute_locked(&self, st: &mut State, cmd: Command) -> std::result::Result<Value, QmpError> {
        match cmd {
            Command::QueryStatus => Ok(queries::status(st)),
            Command::QueryName => Ok(queries::name(&st.cfg)),
            Command::QueryMemoryDevices => {
                Ok(serde_json::to_value(queries::memory_devices(st)).unwrap_or(Value::Null))
            }
            Command::QueryMemorySizeSummary => Ok(queries::memory_size_summary(st)),
            Command::QueryCpusFast => Ok(queries::cpus_fast(st)),
            Command::InfoRegisters { all } => queries::registers(st, all),
            Command::QueryBlock => Ok(queries::block(&st.cfg)),
            Command::QueryMemdev => Ok(queries::memdev(&st.cfg)),
            Command::InfoNetwork => net::info(st),
            Command::HostfwdAdd { netdev, rule } => net::hostfwd_add(st, netdev.as_deref(), &rule),
            Command::HostfwdRemove { netdev, rule } => {
                net::hostfwd_remove(st, netdev.as_deref(), &rule)
            }
            Command::SetLink { name, up } => net::set_link(st, &name, up),
            Command::ObjectAdd(add) => Ok(hotplug::object_add(st, add)?),
            Command::ObjectDel { id } => Ok(hotplug::object_del(st, &id)?),
            Command::DeviceAdd(add) => Ok(hotplug::device_add(st, add)?),
            Command::DeviceDel { id } => Ok(hotplug::device_del(st, &id)?),
            Command::QueryVnc => {
                Ok(serde_json::to_value(crate::vnc::query()).unwrap_or(Value::Null))
            }
            Command::SetPassword {
                protocol,
                password,
                connected,
                ..
            } => {
                crate::vnc::set_password(&protocol, &password, connected.as_deref())?;
                Ok(json!({}))
            }
            Command::Stop | Command::Cont => {
                let stop = matches!(cmd, Command::Stop);
                let vm = st.vm()?;
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
                let devices = st.devices()?;
                let ged = devices
                    .ged()
                    .ok_or_else(|| generic("the VM has no power button"))?;
                ged.notify(GED_POWER_BUTTON)
                    .map_err(|e| generic(format!("power button: {e}")))?;
                drop(devices);
                self.emit(Event::powerdown());
                Ok(json!({}))
            }
            Command::SystemReset => {
                st.vm()?.sink.send(VmEvent::Reset);
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
