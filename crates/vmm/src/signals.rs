//! SIGTERM, SIGINT and SIGHUP end pmvm the way they end QEMU: "terminating on signal N from
//! pid P", a `SHUTDOWN` event with reason `host-signal`, the VM torn down in order (vCPUs
//! stopped, NVDIMM backends written back to their files) and exit status 0. A second signal
//! while that runs exits at once (status 128 + N), for a teardown that takes too long.
//!
//! The signals are blocked in every thread (the mask is set before any thread starts, and
//! threads inherit it) and taken by one thread with `sigwaitinfo`, so no code runs in a signal
//! handler and the request travels through the monitor like a QMP `quit`.

use std::sync::Arc;

use crate::monitor::Monitor;

const SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

fn signal_set() -> libc::sigset_t {
    // SAFETY: a zeroed sigset_t is a valid argument for sigemptyset, which initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t; the signal numbers are valid.
    unsafe {
        libc::sigemptyset(&mut set);
        for s in SIGNALS {
            libc::sigaddset(&mut set, s);
        }
    }
    set
}

/// Blocks the termination signals in the calling thread (call it before any other thread is
/// started) and starts the thread that turns them into a monitor `quit`.
pub fn start(monitor: &Arc<Monitor>) -> std::io::Result<()> {
    let set = signal_set();
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
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
