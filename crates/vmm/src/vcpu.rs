//! vCPU threads: KVM_RUN loops, exit dispatch, pause/resume/stop.
//!
//! # Kicks
//!
//! To pause or stop the vCPUs, [`VcpuControl::set`] records the new state, sends one
//! real-time signal ([`kick_signal`], `SIGRTMIN`) to each vCPU thread and waits on a condition
//! variable until every vCPU has parked (bounded by [`PARK_TIMEOUT`], with a warning naming the
//! vCPUs that did not). The signal handler runs on the vCPU's own thread and sets
//! `immediate_exit` in that vCPU's `kvm_run` page, which the thread published in a thread-local
//! when it started (the way Firecracker does it). So a kick that lands inside `KVM_RUN` makes it
//! return `EINTR`, and a kick that lands after the vCPU last looked at the run state but before
//! it entered `KVM_RUN` makes that `KVM_RUN` return `EINTR` at once instead of running the guest:
//! no kick is lost, so one signal per vCPU is enough. The vCPU clears `immediate_exit` after
//! `KVM_RUN` returns `EINTR` and looks at the run state again.
//!
//! `Stopping` is final: once set, the state never changes again, so a late `stop`/`cont` cannot
//! signal vCPU threads that have ended.

use std::cell::Cell;
use std::sync::atomic::{Ordering, compiler_fence};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use kvm_bindings::kvm_run;
use kvm_ioctls::{VcpuExit, VcpuFd};
use vmm_sys_util::signal::{Killable, SIGRTMIN, register_signal_handler};

use crate::bus::Buses;
use crate::devices::{EventSink, VmEvent};

/// How long [`VcpuControl::set`] waits for the vCPUs to park before it warns and returns.
pub const PARK_TIMEOUT: Duration = Duration::from_secs(2);

/// Signal used to kick vCPUs out of KVM_RUN.
pub fn kick_signal() -> i32 {
    SIGRTMIN()
}

thread_local! {
    /// The `kvm_run` page of the vCPU this thread runs (null on other threads): what the kick
    /// handler sets `immediate_exit` in. Const-initialised and without a destructor, so reading
    /// it from a signal handler is a plain TLS load.
    static KVM_RUN: Cell<*mut kvm_run> = const { Cell::new(std::ptr::null_mut()) };
}

extern "C" fn kick_handler(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let run = KVM_RUN.try_with(Cell::get).unwrap_or(std::ptr::null_mut());
    if run.is_null() {
        return;
    }
    // SAFETY: a non-null KVM_RUN is the kvm_run mapping of the VcpuFd owned by this very thread
    // (the handler runs on the thread the signal was sent to): `RunPage::publish` sets it, and
    // `RunPage`'s drop clears it before the VcpuFd, which owns the mapping, is dropped
    // (spawn_vcpu orders the two). The thread is interrupted, so the mapping cannot go away
    // while this runs. The page is a MAP_SHARED mapping the kernel reads and writes too; only
    // this one byte is written, with a volatile store, and the thread itself touches the byte
    // only after KVM_RUN returned (to clear it), which is why a kick is never lost.
    unsafe { std::ptr::write_volatile(&raw mut (*run).immediate_exit, 1) };
    compiler_fence(Ordering::SeqCst);
}

/// Installs the kick handler (once per process, before any vCPU thread starts).
pub fn install_kick_handler() -> std::io::Result<()> {
    register_signal_handler(kick_signal(), kick_handler)
        .map_err(|e| std::io::Error::from_raw_os_error(e.errno()))
}

/// Publishes a vCPU's `kvm_run` page to this thread's kick handler until dropped; must be
/// dropped before the `VcpuFd` it was made from.
struct RunPage;

impl RunPage {
    fn publish(vcpu: &mut VcpuFd) -> RunPage {
        let page: *mut kvm_run = vcpu.get_kvm_run();
        KVM_RUN.with(|c| c.set(page));
        RunPage
    }
}

impl Drop for RunPage {
    fn drop(&mut self) {
        KVM_RUN.with(|c| c.set(std::ptr::null_mut()));
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the vCPUs should be doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Running,
    Paused,
    Stopping,
}

/// The run state and how many vCPUs are parked (paused, waiting to be stopped, or ended).
#[derive(Debug)]
struct Status {
    state: RunState,
    parked: usize,
}

/// What is known of one vCPU's host thread.
#[derive(Clone, Copy, Default)]
struct ThreadSlot {
    /// Host thread id (gettid), recorded when the thread starts.
    tid: Option<i64>,
    /// The thread's pthread handle while it can be signalled (cleared before it ends).
    handle: Option<libc::pthread_t>,
    /// Whether this vCPU is parked (for the warning when one does not park).
    parked: bool,
}

/// A vCPU thread that can be kicked.
struct VcpuThread(libc::pthread_t);

// SAFETY: a VcpuThread is built only from a `ThreadSlot::handle` while the `threads` lock is
// held, and dropped before that lock is released. A vCPU thread clears its handle under the
// same lock before it ends (`Registration`'s drop, which also runs on unwinding), so the handle
// names a live thread (not yet joined) for as long as the VcpuThread exists.
unsafe impl Killable for VcpuThread {
    fn pthread_handle(&self) -> libc::pthread_t {
        self.0
    }
}

/// Shared run state plus a count of vCPUs currently parked (paused or exited).
pub struct VcpuControl {
    status: Mutex<Status>,
    cv: Condvar,
    threads: Mutex<Vec<ThreadSlot>>,
    /// Register dumps for the monitor: one answer per vCPU of the current request.
    dumps: Mutex<Vec<Option<String>>>,
    park_timeout: Duration,
}

/// A vCPU thread's entry in [`VcpuControl`]'s thread table; its drop makes the thread
/// unreachable for kicks.
struct Registration<'a> {
    ctl: &'a VcpuControl,
    index: usize,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if let Some(slot) = lock(&self.ctl.threads).get_mut(self.index) {
            slot.handle = None;
        }
    }
}

impl VcpuControl {
    /// Control block for vCPUs starting in `initial` state.
    pub fn new(initial: RunState) -> Arc<Self> {
        Self::with_park_timeout(initial, PARK_TIMEOUT)
    }

    fn with_park_timeout(initial: RunState, park_timeout: Duration) -> Arc<Self> {
        Arc::new(VcpuControl {
            status: Mutex::new(Status {
                state: initial,
                parked: 0,
            }),
            cv: Condvar::new(),
            threads: Mutex::new(Vec::new()),
            dumps: Mutex::new(Vec::new()),
            park_timeout,
        })
    }

    /// The current state.
    pub fn state(&self) -> RunState {
        lock(&self.status).state
    }

    /// Host thread ids (gettid) of the vCPU threads, by vCPU index: `None` for a vCPU whose
    /// thread has not started yet (the list may be shorter than the vCPU count then). An id
    /// stays after its thread ended.
    pub fn thread_ids(&self) -> Vec<Option<i64>> {
        lock(&self.threads).iter().map(|t| t.tid).collect()
    }

    /// Moves every vCPU to `state` and, for Paused/Stopping, kicks each vCPU thread once and
    /// waits (up to [`PARK_TIMEOUT`]) until all `count` are parked. Returns whether they are
    /// (always true for Running). `Stopping` is final: any later state is ignored.
    pub fn set(&self, state: RunState, count: usize) -> bool {
        let mut s = lock(&self.status);
        if s.state == RunState::Stopping && state != RunState::Stopping {
            tracing::debug!("vCPUs are stopping: {state:?} ignored");
            return s.parked >= count;
        }
        s.state = state;
        self.cv.notify_all();
        if state == RunState::Running {
            return true;
        }
        if s.parked >= count {
            return true;
        }
        drop(s);
        self.kick_all();
        let s = lock(&self.status);
        let (s, _) = self
            .cv
            .wait_timeout_while(s, self.park_timeout, |s| {
                s.state == state && s.parked < count
            })
            .unwrap_or_else(PoisonError::into_inner);
        if s.parked >= count {
            return true;
        }
        if s.state == state {
            let stuck: Vec<String> = lock(&self.threads)
                .iter()
                .enumerate()
                .filter(|(_, t)| !t.parked)
                .map(|(i, _)| i.to_string())
                .collect();
            tracing::warn!(
                "{} of {count} vCPUs did not park within {:?} for {state:?} (still running: {}); \
                 going on without them",
                count - s.parked,
                self.park_timeout,
                if stuck.is_empty() {
                    "threads not started".to_string()
                } else {
                    stuck.join(", ")
                }
            );
        }
        false
    }

    /// Sends the kick signal once to every registered vCPU thread that is not parked (a
    /// parked one leaves its checkpoint only when the state goes back to Running).
    fn kick_all(&self) {
        let threads = lock(&self.threads);
        for (i, slot) in threads.iter().enumerate() {
            let Some(handle) = slot.handle.filter(|_| !slot.parked) else {
                continue;
            };
            if let Err(e) = VcpuThread(handle).kill(kick_signal()) {
                tracing::warn!("cannot kick vCPU {i}: {e}");
            }
        }
    }

    /// Records the calling thread as vCPU `index`'s (its gettid and pthread handle) until the
    /// returned registration is dropped.
    fn register(&self, index: u32) -> Registration<'_> {
        // SAFETY: gettid and pthread_self have no preconditions.
        let (tid, handle) = unsafe { (libc::gettid(), libc::pthread_self()) };
        let index = index as usize;
        let mut threads = lock(&self.threads);
        if threads.len() <= index {
            threads.resize(index + 1, ThreadSlot::default());
        }
        threads[index] = ThreadSlot {
            tid: Some(i64::from(tid)),
            handle: Some(handle),
            parked: false,
        };
        Registration { ctl: self, index }
    }

    fn mark_parked(&self, index: u32, parked: bool) {
        if let Some(t) = lock(&self.threads).get_mut(index as usize) {
            t.parked = parked;
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
        let s = lock(&self.status);
        *lock(&self.dumps) = vec![None; count];
        self.cv.notify_all();
        let (s, _) = self
            .cv
            .wait_timeout_while(s, Duration::from_secs(1), |_| {
                lock(&self.dumps).iter().any(Option::is_none)
            })
            .unwrap_or_else(PoisonError::into_inner);
        let answers = std::mem::take(&mut *lock(&self.dumps));
        // Resume only what this paused: a VM that began to stop meanwhile stays stopping.
        let resume = was_running && s.state == RunState::Paused;
        drop(s);
        if resume {
            self.set(RunState::Running, count);
        }
        answers
    }

    /// Answers a pending register dump request (called by a parked vCPU, status lock held).
    fn answer_dump(&self, index: u32, registers: &dyn Fn() -> String) {
        let mut d = lock(&self.dumps);
        let Some(slot) = d.get_mut(index as usize) else {
            return;
        };
        if slot.is_some() {
            return;
        }
        *slot = Some(registers());
        drop(d);
        self.cv.notify_all();
    }

    /// Called by a vCPU after every exit: parks while paused (answering register dumps);
    /// with `until_stopped`, parks until the state is Stopping whatever it is now. Returns
    /// false when stopping (the vCPU then stays counted as parked).
    fn checkpoint(&self, index: u32, registers: &dyn Fn() -> String, until_stopped: bool) -> bool {
        let parks =
            |s: RunState| s == RunState::Paused || (until_stopped && s == RunState::Running);
        let mut s = lock(&self.status);
        if s.state == RunState::Running && !until_stopped {
            return true;
        }
        s.parked += 1;
        self.mark_parked(index, true);
        self.cv.notify_all();
        while parks(s.state) {
            self.answer_dump(index, registers);
            s = self.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        if s.state == RunState::Stopping {
            return false; // stays counted as parked
        }
        s.parked -= 1;
        self.mark_parked(index, false);
        true
    }
}

/// Starts a vCPU thread (call [`install_kick_handler`] first).
pub fn spawn_vcpu(
    index: u32,
    vcpu: VcpuFd,
    bus: Arc<Buses>,
    control: Arc<VcpuControl>,
    events: EventSink,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("vcpu{index}"))
        .spawn(move || {
            crate::seccomp::enter(crate::seccomp::ThreadKind::Vcpu);
            let mut vcpu = vcpu;
            // Published before the thread can be kicked, withdrawn after it no longer can,
            // and before `vcpu` (which owns the kvm_run mapping) is dropped.
            let page = RunPage::publish(&mut vcpu);
            let registration = control.register(index);
            run_loop(index, &mut vcpu, &bus, &control, &events);
            drop(registration);
            drop(page);
            drop(vcpu);
        })
}

/// What a vCPU answers to `info registers`.
fn registers_text(index: u32, vcpu: &VcpuFd) -> String {
    match (vcpu.get_regs(), vcpu.get_sregs()) {
        (Ok(r), Ok(sr)) => crate::arch::x86_64::regs::format_registers(index, &r, &sr),
        (Err(e), _) | (_, Err(e)) => format!("CPU#{index}\nregisters unavailable: {e}\n"),
    }
}

fn run_loop(index: u32, vcpu: &mut VcpuFd, bus: &Buses, ctl: &VcpuControl, events: &EventSink) {
    loop {
        if !ctl.checkpoint(index, &|| registers_text(index, vcpu), false) {
            return;
        }
        match vcpu.run() {
            Ok(VcpuExit::IoIn(port, data)) => bus.pio.read(u64::from(port), data),
            Ok(VcpuExit::IoOut(port, data)) => bus.pio.write(u64::from(port), data),
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
            // A kick (or another signal): clear the kick flag, then the checkpoint looks at
            // the run state.
            Err(e) if e.errno() == libc::EINTR => vcpu.set_kvm_immediate_exit(0),
            Err(e) if e.errno() == libc::EAGAIN => {}
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

/// After asking the VM to stop or reset, wait (parked, still answering register dumps) for
/// the control loop to stop us.
fn park_until_stopped(ctl: &VcpuControl, index: u32, vcpu: &VcpuFd) {
    let _ = ctl.checkpoint(index, &|| registers_text(index, vcpu), true);
}

#[cfg(test)]
#[path = "vcpu_tests.rs"]
mod tests;
