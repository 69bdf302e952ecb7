//! vCPU threads: KVM_RUN loops, exit dispatch, pause/resume/stop.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use kvm_ioctls::{VcpuExit, VcpuFd};

use crate::bus::Buses;
use crate::devices::{EventSink, VmEvent};

/// Signal used to kick vCPUs out of KVM_RUN.
pub fn kick_signal() -> i32 {
    libc::SIGRTMIN()
}

extern "C" fn noop_handler(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

/// Installs the no-op kick handler (once per process).
pub fn install_kick_handler() -> std::io::Result<()> {
    vmm_sys_util::signal::register_signal_handler(kick_signal(), noop_handler)
        .map_err(|e| std::io::Error::from_raw_os_error(e.errno()))
}

/// What the vCPUs should be doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Running,
    Paused,
    Stopping,
}

/// Shared run state plus a count of vCPUs currently parked (paused or exited).
pub struct VcpuControl {
    state: Mutex<(RunState, usize)>,
    cv: Condvar,
    threads: Mutex<Vec<libc::pthread_t>>,
    /// Register dumps for the monitor: a request generation and one answer per vCPU.
    dumps: Mutex<(u64, Vec<Option<String>>)>,
}

impl VcpuControl {
    /// Control block for vCPUs starting in `initial` state.
    pub fn new(initial: RunState) -> Arc<Self> {
        Arc::new(VcpuControl {
            state: Mutex::new((initial, 0)),
            cv: Condvar::new(),
            threads: Mutex::new(Vec::new()),
            dumps: Mutex::new((0, Vec::new())),
        })
    }

    /// The current state.
    pub fn state(&self) -> RunState {
        self.state.lock().map(|s| s.0).unwrap_or(RunState::Stopping)
    }

    /// Moves every vCPU to `state` and, for Paused/Stopping, waits until all `count` are parked.
    pub fn set(&self, state: RunState, count: usize) {
        if let Ok(mut s) = self.state.lock() {
            s.0 = state;
        }
        self.cv.notify_all();
        if state == RunState::Running {
            return;
        }
        for _ in 0..2000 {
            let parked = self.state.lock().map(|s| s.1).unwrap_or(count);
            if parked >= count {
                return;
            }
            if let Ok(threads) = self.threads.lock() {
                for t in threads.iter() {
                    // SAFETY: the ids are of vCPU threads that are joined only after Stopping
                    // completes; pthread_kill on a live thread with a handled signal is safe.
                    unsafe { libc::pthread_kill(*t, kick_signal()) };
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The registers of each of `count` vCPUs, formatted as QEMU's `info registers` (`None`
    /// for a vCPU that did not answer within a second, e.g. one that already stopped). A
    /// running VM is paused for the moment it takes (vCPU registers can only be read by the
    /// vCPU's own thread while it is out of KVM_RUN) and resumed.
    pub fn dump_registers(&self, count: usize) -> Vec<Option<String>> {
        let was_running = self.state() == RunState::Running;
        if was_running {
            self.set(RunState::Paused, count);
        }
        let Ok(mut s) = self.state.lock() else {
            return vec![None; count];
        };
        if let Ok(mut d) = self.dumps.lock() {
            d.0 += 1;
            d.1 = vec![None; count];
        }
        self.cv.notify_all();
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        let answers = loop {
            let done = self.dumps.lock().map(|d| d.1.clone()).unwrap_or_default();
            let now = std::time::Instant::now();
            if done.iter().all(Option::is_some) || now >= deadline {
                break done;
            }
            s = match self.cv.wait_timeout(s, deadline - now) {
                Ok((g, _)) => g,
                Err(_) => return vec![None; count],
            };
        };
        // Resume only what this paused: a VM that began to stop meanwhile stays stopping.
        let resume = was_running && s.0 == RunState::Paused;
        drop(s);
        if resume {
            self.set(RunState::Running, count);
        }
        answers
    }

    /// Answers a pending register dump request (called by a parked vCPU, state lock held).
    fn answer_dump(&self, index: u32, vcpu: &VcpuFd, seen: &mut u64) {
        let Ok(mut d) = self.dumps.lock() else { return };
        if d.0 == *seen {
            return;
        }
        *seen = d.0;
        let text = match (vcpu.get_regs(), vcpu.get_sregs()) {
            (Ok(r), Ok(sr)) => crate::arch::x86_64::regs::format_registers(index, &r, &sr),
            (Err(e), _) | (_, Err(e)) => format!("CPU#{index}\nregisters unavailable: {e}\n"),
        };
        if let Some(slot) = d.1.get_mut(index as usize) {
            *slot = Some(text);
        }
        drop(d);
        self.cv.notify_all();
    }

    /// Called by a vCPU after every exit: parks while paused (answering register dumps).
    /// Returns false when stopping.
    fn checkpoint(&self, index: u32, vcpu: &VcpuFd) -> bool {
        let Ok(mut s) = self.state.lock() else {
            return false;
        };
        if s.0 == RunState::Running {
            return true;
        }
        s.1 += 1;
        let mut seen = self.dumps.lock().map(|d| d.0).unwrap_or(0);
        while s.0 == RunState::Paused {
            s = match self.cv.wait(s) {
                Ok(g) => g,
                Err(_) => return false,
            };
            self.answer_dump(index, vcpu, &mut seen);
        }
        if s.0 == RunState::Stopping {
            return false; // stays counted as parked
        }
        s.1 -= 1;
        true
    }
}

/// Starts a vCPU thread.
pub fn spawn_vcpu(
    index: u32,
    mut vcpu: VcpuFd,
    bus: Arc<Buses>,
    control: Arc<VcpuControl>,
    events: EventSink,
) -> std::io::Result<JoinHandle<()>> {
    let ctl = control.clone();
    let handle = std::thread::Builder::new()
        .name(format!("vcpu{index}"))
        .spawn(move || {
            crate::seccomp::enter(crate::seccomp::ThreadKind::Vcpu);
            // SAFETY: pthread_self has no preconditions.
            let me = unsafe { libc::pthread_self() };
            if let Ok(mut t) = ctl.threads.lock() {
                t.push(me);
            }
            run_loop(index, &mut vcpu, &bus, &ctl, &events);
        })?;
    Ok(handle)
}

fn run_loop(index: u32, vcpu: &mut VcpuFd, bus: &Buses, ctl: &VcpuControl, events: &EventSink) {
    loop {
        if !ctl.checkpoint(index, vcpu) {
            return;
        }
        match vcpu.run() {
            Ok(VcpuExit::IoIn(port, data)) => bus.pio.read(port, data),
            Ok(VcpuExit::IoOut(port, data)) => bus.pio.write(port, data),
            Ok(VcpuExit::MmioRead(addr, data)) => bus.mmio.read(addr, data),
            Ok(VcpuExit::MmioWrite(addr, data)) => bus.mmio.write(addr, data),
            Ok(VcpuExit::Hlt) => {
                // With the in-kernel LAPIC, HLT only exits when the guest halts for good.
                tracing::debug!("vCPU {index} halted");
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(VcpuExit::Shutdown) => {
                // A triple fault: the guest crashed hard. QEMU resets silently; say it, with
                // where the vCPU was, since the guest itself could print nothing.
                tracing::warn!(
                    "vCPU {index}: triple fault (guest crash), resetting the guest; {}",
                    where_is(vcpu)
                );
                events.send(VmEvent::Reset);
                park_until_stopped(ctl, index, vcpu);
                return;
            }
            Ok(VcpuExit::SystemEvent(kind, _)) => {
                let ev = if kind == kvm_bindings::KVM_SYSTEM_EVENT_RESET {
                    VmEvent::Reset
                } else {
                    VmEvent::Poweroff
                };
                events.send(ev);
                park_until_stopped(ctl, index, vcpu);
                return;
            }
            Ok(VcpuExit::FailEntry(reason, cpu)) => {
                tracing::error!(
                    "vCPU {index}: KVM entry failed, hardware reason {reason:#x} on host CPU {cpu}"
                );
                events.send(VmEvent::Crash);
                park_until_stopped(ctl, index, vcpu);
                return;
            }
            Ok(VcpuExit::InternalError) => {
                tracing::error!("vCPU {index}: KVM internal error (emulation failure)");
                events.send(VmEvent::Crash);
                park_until_stopped(ctl, index, vcpu);
                return;
            }
            Ok(other) => tracing::debug!("vCPU {index}: unhandled exit {other:?}"),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {}
            Err(e) => {
                tracing::error!("vCPU {index}: KVM_RUN failed: {e}");
                events.send(VmEvent::Crash);
                park_until_stopped(ctl, index, vcpu);
                return;
            }
        }
    }
}

/// RIP, RSP, CR0, CR3 and CR4 of a vCPU, for crash reports.
fn where_is(vcpu: &VcpuFd) -> String {
    match (vcpu.get_regs(), vcpu.get_sregs()) {
        (Ok(r), Ok(s)) => format!(
            "rip={:#x} rsp={:#x} rflags={:#x} cr0={:#x} cr3={:#x} cr4={:#x} efer={:#x}",
            r.rip, r.rsp, r.rflags, s.cr0, s.cr3, s.cr4, s.efer
        ),
        (Err(e), _) | (_, Err(e)) => format!("registers unavailable: {e}"),
    }
}

/// After asking the VM to stop or reset, wait for the control loop to stop us.
fn park_until_stopped(ctl: &VcpuControl, index: u32, vcpu: &VcpuFd) {
    while ctl.state() != RunState::Stopping {
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = ctl.checkpoint(index, vcpu);
}
