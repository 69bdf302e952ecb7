//! The run loop: start the monitors and the signal thread, then build and run the VM until it
//! powers off or is told to quit, rebuilding it after each guest reset.

use kvm_ioctls::Kvm;
use qmp::ShutdownCause;
use vm_config::{SerialConfig, VmConfig};

use crate::console;
use crate::error::{Error, Result};
use crate::monitor::Monitor;
use crate::vm::{ExitReason, Vm};

/// Runs the configured VM, rebooting it on reset unless `-no-reboot`, with the QMP and human
/// monitors the command line asks for. Returns the process exit status.
pub fn run_vm(cfg: &VmConfig) -> Result<i32> {
    let vnc = crate::vnc::parse(cfg)?;
    let kvm = Kvm::new().map_err(Error::KvmOpen)?;
    if cfg.sandbox {
        crate::seccomp::enable()?;
    }
    crate::vcpu::install_kick_handler()
        .map_err(|e| Error::io("cannot install the vCPU kick handler", e))?;
    let monitor = Monitor::new(cfg.clone());
    crate::signals::start(&monitor).map_err(|e| Error::io("cannot start the signal thread", e))?;
    // VNC first, so that it is up once a QMP client can ask `query-vnc`. It outlives guest
    // resets: each rebuilt VM's UART writes to its screen.
    if let Some(spec) = vnc {
        let m = monitor.clone();
        crate::vnc::start(cfg, spec, Some(Box::new(move |line| m.hmp_line(line))))?;
    }
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
        monitor.attach(vm.handle());
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
    crate::vnc::shutdown();
    console::restore_terminal();
    result
}
