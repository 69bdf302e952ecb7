//! The sandbox (`-sandbox on`, the default, as in Firecracker): a seccomp filter per thread kind,
//! built with `seccompiler`. Each thread installs its own kind's filter first thing (the spawn
//! sites call [`enter`]); the main thread installs [`ThreadKind::Main`] right before the first
//! guest runs. Filters stack and are inherited, so a thread the main thread starts later runs
//! under the main filter until it narrows it with its own, and a thread a monitor thread starts
//! (a QMP client's writer) under the monitor filter.
//!
//! A system call outside the filter raises SIGSYS (`SeccompAction::Trap`); the handler writes
//! one line on stderr that names the call (name and number) and the thread (its name, kept in a
//! thread-local buffer when the filter is installed), then ends pmvm with status 159 (128 +
//! SIGSYS). The handler only formats into a stack buffer, calls write(2) on fd 2 and `_exit`.
//!
//! What each kind may call, and why the broad allowances exist:
//!
//! - every kind: memory management for the allocator and thread stacks (`mmap`, `munmap`,
//!   `mprotect`, `madvise`, `brk`, `mremap`), `futex` (locks, channels, joins), sleeping and
//!   clocks, `getrandom` (hash maps), signal plumbing (`rt_sigprocmask`, `rt_sigreturn`,
//!   `sigaltstack`, and `rt_sigaction`: the console's SIGQUIT handler restores the default
//!   action in whichever thread takes the signal), `read`/`write`/`writev` on open descriptors
//!   (logging on stderr, the serial console, eventfds), `close` and `fcntl` (Rust checks a
//!   descriptor with `F_GETFD` before closing it in debug builds; `try_clone` is
//!   `F_DUPFD_CLOEXEC`), `exit`, `exit_group`, `restart_syscall`, `gettid`, `getpid`,
//!   `tgkill` only towards pmvm's own process (vCPU kicks; `abort`), and `ioctl` for the
//!   terminal requests only (`TCGETS`, `TCSETS*`: the terminal is restored on the way out).
//! - vCPU threads: `ioctl` restricted to the vCPU requests pmvm makes (`KVM_RUN`, register and
//!   state get/set); `pread64`/`pwrite64`/`preadv`/`pwritev`/`fdatasync`/`fsync`/`fallocate`
//!   because a virtio queue without an ioeventfd is served on the vCPU thread, and `msync` for
//!   NVDIMM label writes made durable from the `_DSM` mailbox. No sockets, files, threads or
//!   processes.
//! - I/O threads (`io-<drive>`): `poll`/`ppoll` and the block calls above (`preadv2`,
//!   `pwritev2`, `lseek` too). No `ioctl` beyond the terminal, no sockets, no `open`.
//! - the signals thread: `rt_sigtimedwait` besides the common set.
//! - monitor threads (QMP/HMP listener, client, writer, `monitor-stdio`; the VNC server's
//!   listener, client readers and writers too, since VNC console 2 runs monitor commands on
//!   its reader thread) and the console's
//!   `stdin` reader (which runs human-monitor commands behind `Ctrl-a c`, so it gets the same
//!   list): socket I/O on accepted connections (`accept4`, `recvfrom`, `sendto`, `shutdown`,
//!   `poll`, `epoll_*`, `setsockopt` for VNC's `TCP_NODELAY` and handshake timeout), thread creation (a client's writer thread: `clone3`, `clone` with
//!   `CLONE_THREAD` only, `set_robust_list`, `rseq`, `prctl`, `sched_getaffinity`,
//!   `seccomp`), and what hotplug does: `object_add` opens, probes, sizes and maps a backend
//!   (`openat`, `statx`, `newfstatat`, `fstatfs`, `statfs`, `ftruncate`, `fallocate`, `flock`,
//!   `memfd_create`, `msync`, `getdents64` for `/proc/self/task`, `readlink*`), and `device_add`
//!   makes a `KVM_SET_USER_MEMORY_REGION` ioctl on the VM descriptor: **`ioctl` is allowed
//!   with any request** here, as pmem probing and KVM both need several.
//! - the main thread: everything the monitor may do, plus what rebuilding the VM on a guest
//!   reset takes (KVM system, VM and vCPU ioctls, again with **any `ioctl` request**,
//!   `eventfd2`, opening the kernel, initrd and disk images, starting vCPU and I/O threads),
//!   `socket` (Unix and IP only) and `connect` (to wake the monitor listeners at exit) and
//!   `unlink`/`unlinkat` (the monitor socket files, `-pidfile`).
//!
//! Nothing may `execve`, and vCPU and I/O threads cannot create threads or processes. `clone3`
//! takes its flags in memory, which seccomp cannot read, so the main and monitor threads could
//! fork through it; without `execve` a fork can only run pmvm's own code.

mod names;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// `si_code` of a SIGSYS raised by a seccomp filter (linux/signal.h).
const SYS_SECCOMP: libc::c_int = 1;

/// Exit status after a forbidden system call: 128 + SIGSYS, as if SIGSYS had killed pmvm.
pub const VIOLATION_EXIT: i32 = 128 + libc::SIGSYS;

/// What a thread does, which decides what it may call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadKind {
    /// The main thread: builds (and after a reset rebuilds) the VM, then waits for it.
    Main,
    /// A vCPU thread (`vcpuN`).
    Vcpu,
    /// A virtio I/O thread (`io-<drive>`).
    Io,
    /// A monitor thread (QMP or HMP: listener, client, writer, stdio).
    Monitor,
    /// The thread that takes SIGTERM, SIGINT and SIGHUP.
    Signals,
    /// The console's stdin reader (it may run human-monitor commands).
    Stdin,
    /// A user network's thread (`net-<id>`): libslirp's sockets towards the host's network.
    Net,
}

impl ThreadKind {
    /// Every kind.
    pub const ALL: [ThreadKind; 7] = [
        ThreadKind::Main,
        ThreadKind::Vcpu,
        ThreadKind::Io,
        ThreadKind::Monitor,
        ThreadKind::Signals,
        ThreadKind::Stdin,
        ThreadKind::Net,
    ];

    /// A short name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            ThreadKind::Main => "main",
            ThreadKind::Vcpu => "vcpu",
            ThreadKind::Io => "io",
            ThreadKind::Monitor => "monitor",
            ThreadKind::Signals => "signals",
            ThreadKind::Stdin => "stdin",
            ThreadKind::Net => "net",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The compiled filters, once the sandbox is enabled.
static FILTERS: OnceLock<Vec<BpfProgram>> = OnceLock::new();

/// An error while building or installing a filter.
#[derive(Debug, thiserror::Error)]
#[error("seccomp: {0}")]
pub struct SandboxError(String);

/// Compiles every filter and installs the SIGSYS reporter: from now on [`enter`] installs
/// filters. Call on the main thread before any sandboxed thread starts (`-sandbox on`).
pub fn enable() -> Result<(), SandboxError> {
    if FILTERS.get().is_some() {
        return Ok(());
    }
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let progs = ThreadKind::ALL
        .iter()
        .map(|&k| filter(k, pid))
        .collect::<Result<Vec<_>, _>>()?;
    install_sigsys_handler()?;
    let _ = FILTERS.set(progs);
    Ok(())
}

/// Whether [`enable`] ran (the sandbox is on).
pub fn enabled() -> bool {
    FILTERS.get().is_some()
}

/// Installs `kind`'s filter in the calling thread when the sandbox is on (else does nothing).
/// A filter that was asked for and cannot be installed ends pmvm: no guest runs unconfined.
pub fn enter(kind: ThreadKind) {
    if let Err(e) = install(kind) {
        eprintln!(
            "pmvm: cannot install the {} sandbox filter: {e}",
            kind.name()
        );
        std::process::exit(1);
    }
}

/// Installs `kind`'s filter in the calling thread when the sandbox is on.
pub fn install(kind: ThreadKind) -> Result<(), SandboxError> {
    let Some(progs) = FILTERS.get() else {
        return Ok(());
    };
    set_thread_name();
    seccompiler::apply_filter(&progs[kind.index()]).map_err(|e| SandboxError(e.to_string()))
}

/// The hook for the QMP server's threads: each installs the monitor filter.
pub fn monitor_thread_init() -> qmp::ThreadInit {
    Arc::new(|_name: &str| enter(ThreadKind::Monitor))
}

type Rules = BTreeMap<i64, Vec<SeccompRule>>;

fn cond(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    v: u64,
) -> Result<SeccompCondition, SandboxError> {
    SeccompCondition::new(arg, len, op, v).map_err(|e| SandboxError(e.to_string()))
}

fn rule(conds: Vec<SeccompCondition>) -> Result<SeccompRule, SandboxError> {
    SeccompRule::new(conds).map_err(|e| SandboxError(e.to_string()))
}

fn allow(rules: &mut Rules, calls: &[libc::c_long]) {
    for &c in calls {
        rules.insert(c, Vec::new());
    }
}

/// Allows `call` when argument `arg` (32 bits) is one of `values`.
fn allow_arg_in(
    rules: &mut Rules,
    call: libc::c_long,
    arg: u8,
    values: &[u64],
) -> Result<(), SandboxError> {
    let list = values
        .iter()
        .map(|&v| {
            rule(vec![cond(
                arg,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Eq,
                v,
            )?])
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(call, list);
    Ok(())
}

mod ioctls {
    #![allow(non_snake_case)]
    use kvm_bindings::*;
    use vmm_sys_util::{ioctl_io_nr, ioctl_ior_nr, ioctl_iow_nr, ioctl_iowr_nr};

    ioctl_io_nr!(KVM_RUN, KVMIO, 0x80);
    ioctl_ior_nr!(KVM_GET_REGS, KVMIO, 0x81, kvm_regs);
    ioctl_iow_nr!(KVM_SET_REGS, KVMIO, 0x82, kvm_regs);
    ioctl_ior_nr!(KVM_GET_SREGS, KVMIO, 0x83, kvm_sregs);
    ioctl_iow_nr!(KVM_SET_SREGS, KVMIO, 0x84, kvm_sregs);
    ioctl_iowr_nr!(KVM_GET_MSRS, KVMIO, 0x88, kvm_msrs);
    ioctl_iow_nr!(KVM_SET_MSRS, KVMIO, 0x89, kvm_msrs);
    ioctl_ior_nr!(KVM_GET_FPU, KVMIO, 0x8c, kvm_fpu);
    ioctl_iow_nr!(KVM_SET_FPU, KVMIO, 0x8d, kvm_fpu);
    ioctl_ior_nr!(KVM_GET_LAPIC, KVMIO, 0x8e, kvm_lapic_state);
    ioctl_iow_nr!(KVM_SET_LAPIC, KVMIO, 0x8f, kvm_lapic_state);
    ioctl_ior_nr!(KVM_GET_MP_STATE, KVMIO, 0x98, kvm_mp_state);
    ioctl_iow_nr!(KVM_SET_MP_STATE, KVMIO, 0x99, kvm_mp_state);
    ioctl_ior_nr!(KVM_GET_VCPU_EVENTS, KVMIO, 0x9f, kvm_vcpu_events);
    ioctl_iow_nr!(KVM_SET_VCPU_EVENTS, KVMIO, 0xa0, kvm_vcpu_events);
    ioctl_ior_nr!(KVM_GET_DEBUGREGS, KVMIO, 0xa1, kvm_debugregs);
    ioctl_ior_nr!(KVM_GET_XSAVE, KVMIO, 0xa4, kvm_xsave);
    ioctl_ior_nr!(KVM_GET_XCRS, KVMIO, 0xa6, kvm_xcrs);
    ioctl_io_nr!(KVM_KVMCLOCK_CTRL, KVMIO, 0xad);

    /// The requests a vCPU thread makes on its own vCPU descriptor.
    pub fn vcpu() -> Vec<u64> {
        [
            KVM_RUN(),
            KVM_GET_REGS(),
            KVM_SET_REGS(),
            KVM_GET_SREGS(),
            KVM_SET_SREGS(),
            KVM_GET_MSRS(),
            KVM_SET_MSRS(),
            KVM_GET_FPU(),
            KVM_SET_FPU(),
            KVM_GET_LAPIC(),
            KVM_SET_LAPIC(),
            KVM_GET_MP_STATE(),
            KVM_SET_MP_STATE(),
            KVM_GET_VCPU_EVENTS(),
            KVM_SET_VCPU_EVENTS(),
            KVM_GET_DEBUGREGS(),
            KVM_GET_XSAVE(),
            KVM_GET_XCRS(),
            KVM_KVMCLOCK_CTRL(),
        ]
        .to_vec()
    }
}

/// The terminal requests (`tcgetattr`/`tcsetattr`), allowed everywhere.
const TERMINAL_IOCTLS: [u64; 4] = [libc::TCGETS, libc::TCSETS, libc::TCSETSW, libc::TCSETSF];

/// The calls every thread makes (see the module documentation).
fn common(rules: &mut Rules, pid: libc::pid_t) -> Result<(), SandboxError> {
    use libc::*;
    allow(
        rules,
        &[
            SYS_read,
            SYS_write,
            SYS_writev,
            SYS_close,
            SYS_fcntl,
            SYS_futex,
            SYS_sched_yield,
            SYS_nanosleep,
            SYS_clock_nanosleep,
            SYS_clock_gettime,
            SYS_clock_getres,
            SYS_gettimeofday,
            SYS_getrandom,
            SYS_mmap,
            SYS_munmap,
            SYS_mprotect,
            SYS_madvise,
            SYS_mremap,
            SYS_brk,
            SYS_rt_sigprocmask,
            SYS_rt_sigaction,
            SYS_rt_sigreturn,
            SYS_sigaltstack,
            SYS_restart_syscall,
            SYS_exit,
            SYS_exit_group,
            SYS_gettid,
            SYS_getpid,
        ],
    );
    // Signals to pmvm's own threads only.
    allow_arg_in(rules, SYS_tgkill, 0, &[pid as u64])?;
    allow_arg_in(rules, SYS_ioctl, 1, &TERMINAL_IOCTLS)
}

/// Block I/O on open images: the virtio-blk request path.
const BLOCK_IO: [libc::c_long; 8] = [
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_preadv2,
    libc::SYS_pwritev2,
    libc::SYS_fdatasync,
    libc::SYS_fsync,
];

/// What starting a thread takes (in the parent, and in the child before its own filter).
fn threads(rules: &mut Rules) -> Result<(), SandboxError> {
    use libc::*;
    allow(
        rules,
        &[
            SYS_clone3,
            SYS_set_robust_list,
            SYS_rseq,
            SYS_prctl,
            SYS_sched_getaffinity,
            SYS_seccomp,
        ],
    );
    // clone(2) for threads only (a fork has no CLONE_THREAD).
    let thread = rule(vec![cond(
        0,
        SeccompCmpArgLen::Qword,
        SeccompCmpOp::MaskedEq(CLONE_THREAD as u64),
        CLONE_THREAD as u64,
    )?])?;
    rules.insert(SYS_clone, vec![thread]);
    Ok(())
}

/// The monitor's list (also the stdin reader's, and part of the main thread's).
fn monitor(rules: &mut Rules) -> Result<(), SandboxError> {
    use libc::*;
    threads(rules)?;
    allow(rules, &BLOCK_IO);
    allow(
        rules,
        &[
            // Connections.
            SYS_accept,
            SYS_accept4,
            SYS_recvfrom,
            SYS_recvmsg,
            SYS_sendto,
            SYS_sendmsg,
            SYS_shutdown,
            SYS_poll,
            SYS_ppoll,
            SYS_epoll_create1,
            SYS_epoll_ctl,
            SYS_epoll_wait,
            SYS_epoll_pwait,
            SYS_getsockname,
            SYS_getpeername,
            // TCP_NODELAY and read timeouts on accepted connections (VNC).
            SYS_setsockopt,
            // Backends (object_add) and files (query-block, /proc/self/task).
            SYS_openat,
            SYS_statx,
            SYS_newfstatat,
            SYS_fstat,
            SYS_stat,
            SYS_lstat,
            SYS_statfs,
            SYS_fstatfs,
            SYS_readlink,
            SYS_readlinkat,
            SYS_getdents64,
            SYS_lseek,
            SYS_ftruncate,
            SYS_fallocate,
            SYS_flock,
            SYS_memfd_create,
            SYS_msync,
            SYS_getcwd,
            // KVM (device_add: KVM_SET_USER_MEMORY_REGION) and device probing: any request.
            SYS_ioctl,
        ],
    );
    Ok(())
}

/// What libslirp does with host sockets: listening for `hostfwd` rules, connecting and
/// exchanging datagrams for the guest's connections, socket options (non-blocking, keep-alive).
fn user_network(rules: &mut Rules) {
    use libc::*;
    allow(
        rules,
        &[
            SYS_bind,
            SYS_listen,
            SYS_setsockopt,
            SYS_getsockopt,
            SYS_sendmmsg,
            SYS_recvmmsg,
            SYS_socketpair,
        ],
    );
}

/// Compiles `kind`'s filter for x86_64; `pid` is pmvm's process id (the `tgkill` target).
pub fn filter(kind: ThreadKind, pid: libc::pid_t) -> Result<BpfProgram, SandboxError> {
    use libc::*;
    let mut rules = Rules::new();
    common(&mut rules, pid)?;
    match kind {
        ThreadKind::Vcpu => {
            allow(&mut rules, &BLOCK_IO);
            allow(&mut rules, &[SYS_fallocate, SYS_msync]);
            let mut reqs = ioctls::vcpu();
            reqs.extend(TERMINAL_IOCTLS);
            allow_arg_in(&mut rules, SYS_ioctl, 1, &reqs)?;
        }
        ThreadKind::Io => {
            allow(&mut rules, &BLOCK_IO);
            // The I/O thread waits on its notifies, stop signal and device fds with epoll.
            allow(
                &mut rules,
                &[
                    SYS_fallocate,
                    SYS_lseek,
                    SYS_poll,
                    SYS_ppoll,
                    SYS_epoll_wait,
                    SYS_epoll_pwait,
                    SYS_epoll_ctl,
                ],
            );
        }
        ThreadKind::Signals => allow(&mut rules, &[SYS_rt_sigtimedwait]),
        ThreadKind::Monitor | ThreadKind::Stdin => monitor(&mut rules)?,
        ThreadKind::Main => {
            monitor(&mut rules)?;
            allow(
                &mut rules,
                &[SYS_eventfd2, SYS_connect, SYS_unlink, SYS_unlinkat],
            );
            allow_arg_in(
                &mut rules,
                SYS_socket,
                0,
                &[AF_UNIX as u64, AF_INET as u64, AF_INET6 as u64],
            )?;
            // Filters stack and the user network's thread is started by this one (at every
            // VM build), so what it needs must pass here too.
            user_network(&mut rules);
        }
        ThreadKind::Net => {
            monitor(&mut rules)?;
            allow(&mut rules, &[SYS_connect]);
            allow_arg_in(
                &mut rules,
                SYS_socket,
                0,
                &[AF_UNIX as u64, AF_INET as u64, AF_INET6 as u64],
            )?;
            user_network(&mut rules);
        }
    }
    let f = SeccompFilter::new(
        rules,
        SeccompAction::Trap,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(|e| SandboxError(e.to_string()))?;
    BpfProgram::try_from(f).map_err(|e| SandboxError(e.to_string()))
}

thread_local! {
    /// The thread's name, for the SIGSYS handler (a plain buffer: no allocation, no lazy init).
    static THREAD_NAME: Cell<[u8; 16]> = const { Cell::new([0; 16]) };
}

fn set_thread_name() {
    let mut buf = [0u8; 16];
    let cur = std::thread::current();
    let name = cur.name().unwrap_or("?").as_bytes();
    let n = name.len().min(buf.len());
    buf[..n].copy_from_slice(&name[..n]);
    THREAD_NAME.with(|c| c.set(buf));
}

fn install_sigsys_handler() -> Result<(), SandboxError> {
    // SAFETY: a zeroed sigaction is a valid starting point; the fields are set below.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = on_sigsys as *const () as libc::sighandler_t;
    sa.sa_flags = libc::SA_SIGINFO;
    // SAFETY: `sa.sa_mask` is a valid sigset_t.
    unsafe { libc::sigemptyset(&mut sa.sa_mask) };
    // SAFETY: `sa` is initialised and the handler only calls async-signal-safe functions.
    let rc = unsafe { libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(SandboxError(format!(
            "cannot install the SIGSYS handler: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// A fixed buffer to format the message in, without allocating.
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Line {
    fn push(&mut self, s: &[u8]) {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }

    fn push_num(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}

/// The violation message for system call `nr` made by thread `thread`.
fn violation_line(thread: &[u8], nr: i64) -> Line {
    let mut l = Line {
        buf: [0; 256],
        len: 0,
    };
    l.push(b"pmvm: sandbox: thread '");
    let end = thread.iter().position(|&b| b == 0).unwrap_or(thread.len());
    l.push(if end == 0 { b"?" } else { &thread[..end] });
    l.push(b"' made system call ");
    l.push(names::name(nr).unwrap_or("unknown").as_bytes());
    l.push(b" (");
    if nr < 0 {
        l.push(b"-");
    }
    l.push_num(nr.unsigned_abs());
    l.push(b"), which its seccomp filter forbids; exiting (-sandbox off disables the sandbox)\n");
    l
}

extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // The kernel's SIGSYS siginfo: si_signo, si_errno, si_code (3 ints) and padding, then
    // `void *_call_addr` at offset 16 and `int _syscall` at offset 24 (x86_64).
    // SAFETY: `info` points to the siginfo_t the kernel passed to this SA_SIGINFO handler.
    let nr = unsafe {
        info.cast::<u8>()
            .add(24)
            .cast::<libc::c_int>()
            .read_unaligned()
    };
    // SAFETY: as above; si_code is a plain field.
    let from_seccomp = unsafe { (*info).si_code } == SYS_SECCOMP;
    let mut name = THREAD_NAME.with(Cell::get);
    if name[0] == 0 {
        // A thread that never installed a filter runs under an inherited main or monitor
        // filter, and both allow prctl.
        // SAFETY: PR_GET_NAME writes at most 16 bytes into `name`.
        unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
    }
    let line = if from_seccomp {
        violation_line(&name, i64::from(nr))
    } else {
        let mut l = Line {
            buf: [0; 256],
            len: 0,
        };
        l.push(b"pmvm: SIGSYS from outside the sandbox; exiting\n");
        l
    };
    // SAFETY: write(2) from a valid buffer; async-signal-safe.
    unsafe { libc::write(2, line.buf.as_ptr().cast(), line.len) };
    crate::terminal::restore_terminal();
    // SAFETY: _exit ends the process at once; async-signal-safe.
    unsafe { libc::_exit(VIOLATION_EXIT) };
}

#[cfg(test)]
mod tests;
