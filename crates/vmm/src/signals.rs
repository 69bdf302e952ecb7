//! SIGTERM, SIGINT and SIGHUP end pmvm the way they end QEMU: "terminating on signal N from
//! pid P", a `SHUTDOWN` event with reason `host-signal`, the VM torn down in order (vCPUs
//! stopped, NVDIMM backends written back to their files) and exit status 0. A second signal
//! while that runs exits at once (status 128 + N), for a teardown that takes too long.
//!
//! The signals are blocked in every thread (the mask is set before any thread starts, and
//! threads inherit it) and taken by one thread with `sigwaitinfo`, so no code runs in a signal
//! handler and the request travels through the monitor like a QMP `quit`.
//!
//! The mask and the set come from vmm-sys-util (`block_signal`, `create_sigset`). The wait is
//! a hand-written `sigwaitinfo`: vmm-sys-util has no helper that waits for a signal (its
//! `clear_signal` only drains pending ones with a zero-timeout `sigtimedwait`) and none that
//! returns the `siginfo_t`, whose sender pid the message above needs.

use std::sync::Arc;

use vmm_sys_util::signal::{Error as SignalError, block_signal, create_sigset};

use crate::monitor::Monitor;

const SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// Blocks the termination signals in the calling thread (an already blocked one is fine).
fn block_termination_signals() -> std::io::Result<()> {
    for s in SIGNALS {
        match block_signal(s) {
            Ok(()) | Err(SignalError::SignalAlreadyBlocked(_)) => {}
            Err(e) => return Err(std::io::Error::other(format!("blocking signal {s}: {e}"))),
        }
    }
    Ok(())
}

/// Blocks the termination signals in the calling thread (call it before any other thread is
/// started) and starts the thread that turns them into a monitor `quit`.
pub fn start(monitor: &Arc<Monitor>) -> std::io::Result<()> {
    block_termination_signals()?;
    let set = create_sigset(&SIGNALS).map_err(|e| std::io::Error::from_raw_os_error(e.errno()))?;
    let monitor = monitor.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            crate::seccomp::enter(crate::seccomp::ThreadKind::Signals);
            let mut seen = false;
            loop {
                // SAFETY: a zeroed siginfo_t is a valid out-parameter for sigwaitinfo.
                let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
                // SAFETY: `set` and `info` are valid for the call.
                let sig = unsafe { libc::sigwaitinfo(&set, &mut info) };
                if sig < 0 {
                    continue; // EINTR
                }
                // SAFETY: for signals sent by kill(), si_pid is the sender's pid.
                let pid = unsafe { info.si_pid() };
                if seen {
                    crate::console::restore_terminal();
                    eprintln!("pmvm: signal {sig} again: exiting now");
                    // SAFETY: _exit ends the process without running destructors.
                    unsafe { libc::_exit(128 + sig) };
                }
                seen = true;
                eprintln!("pmvm: terminating on signal {sig} from pid {pid}");
                monitor.request_quit(qmp::ShutdownCause::HostSignal);
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmm_sys_util::signal::get_blocked_signals;

    #[test]
    fn the_termination_signals_are_blocked_and_blocking_twice_is_fine() {
        // In a thread of its own: the mask must not leak into the test harness's threads.
        std::thread::spawn(|| {
            block_termination_signals().unwrap();
            let blocked = get_blocked_signals().unwrap();
            for s in SIGNALS {
                assert!(blocked.contains(&s), "signal {s} not blocked: {blocked:?}");
            }
            block_termination_signals().unwrap();
        })
        .join()
        .unwrap();
    }
}
