//! User networking: libslirp in a thread of its own (`net-<id>`), exchanging Ethernet frames
//! with the virtio-net device through a `SOCK_SEQPACKET` socket pair.
//!
//! Why a thread and not the device's I/O thread: slirp opens and closes host sockets as guest
//! connections come and go, and needs timers, while the I/O thread's epoll takes a device's
//! fds once, when it starts. The socket pair keeps the device backend-agnostic (a tap is the
//! same kind of frame fd) and bounds memory: when the guest does not read, the pair's buffer
//! fills and `send_packet` drops frames (counted), as slirp expects ("the function can just
//! drop the data. TCP will then handle retransmissions").
//!
//! Every slirp call happens on this thread (libslirp is not thread-safe); the monitor's
//! `hostfwd_add`/`hostfwd_remove` are commands sent over a channel with an eventfd to wake the
//! poll loop, each answered synchronously.

use std::cell::{Cell, RefCell};
use std::ffi::{CString, c_char, c_int, c_void};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Instant;

use vm_config::{GuestFwd, HostFwd};
use vmm_sys_util::eventfd::EventFd;

use super::slirp_ffi::{self as ffi, Lib, Slirp};

/// What the user network does besides DHCP and DNS.
#[derive(Clone, Debug, Default)]
pub struct UserConfig {
    pub hostfwd: Vec<HostFwd>,
    pub guestfwd: Vec<GuestFwd>,
    pub restrict: bool,
}

type Reply = Sender<Result<(), String>>;

enum Cmd {
    AddHostFwd(HostFwd, Reply),
    RemoveHostFwd(bool, std::net::Ipv4Addr, u16, Reply),
}

/// A running user network.
pub struct UserNet {
    cmds: Sender<Cmd>,
    wake: EventFd,
    stop: EventFd,
    thread: Option<JoinHandle<()>>,
    /// Frames for the guest dropped because the device's socket was full.
    pub dropped: Arc<AtomicU64>,
}

impl UserNet {
    /// Starts slirp on `frames` (the thread's end of the device's socket pair) with `cfg`'s
    /// forwarding rules. Errors (no libslirp, a host port in use) come back before it returns;
    /// they name the rule, not the option (the caller adds it).
    pub fn start(name: &str, frames: OwnedFd, cfg: &UserConfig) -> Result<UserNet, String> {
        let lib = ffi::lib()?;
        let (cmds, rx) = channel();
        let (setup_tx, setup_rx) = channel();
        let wake = EventFd::new(libc::EFD_NONBLOCK).map_err(|e| e.to_string())?;
        let stop = EventFd::new(libc::EFD_NONBLOCK).map_err(|e| e.to_string())?;
        let dropped = Arc::new(AtomicU64::new(0));
        let (w, s, d, cfg) = (
            wake.try_clone().map_err(|e| e.to_string())?,
            stop.try_clone().map_err(|e| e.to_string())?,
            dropped.clone(),
            cfg.clone(),
        );
        let thread = std::thread::Builder::new()
            .name(format!("net-{name}"))
            .spawn(move || {
                crate::seccomp::enter(crate::seccomp::ThreadKind::Net);
                run(lib, frames, &cfg, &rx, &w, &s, d, &setup_tx)
            })
            .map_err(|e| format!("cannot start the user-network thread: {e}"))?;
        let mut net = UserNet {
            cmds,
            wake,
            stop,
            thread: Some(thread),
            dropped,
        };
        match setup_rx.recv() {
            Ok(Ok(())) => Ok(net),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                net.thread.take().map(JoinHandle::join);
                Err("the user-network thread ended during set-up".into())
            }
        }
    }

    fn ask(&self, make: impl FnOnce(Reply) -> Cmd) -> Result<(), String> {
        let (tx, rx) = channel();
        self.cmds
            .send(make(tx))
            .map_err(|_| "the user network has stopped".to_string())?;
        let _ = self.wake.write(1);
        rx.recv()
            .map_err(|_| "the user network has stopped".to_string())?
    }

    /// Adds a forwarding rule (monitor `hostfwd_add`).
    pub fn add_hostfwd(&self, rule: &HostFwd) -> Result<(), String> {
        self.ask(|r| Cmd::AddHostFwd(rule.clone(), r))
    }

    /// Removes the rule listening on `addr:port` (monitor `hostfwd_remove`).
    pub fn remove_hostfwd(
        &self,
        udp: bool,
        addr: std::net::Ipv4Addr,
        port: u16,
    ) -> Result<(), String> {
        self.ask(|r| Cmd::RemoveHostFwd(udp, addr, port, r))
    }
}

impl Drop for UserNet {
    fn drop(&mut self) {
        let _ = self.stop.write(1);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A slirp timer (`timer_new` or `timer_new_opaque`).
struct Timer {
    cb: Option<ffi::SlirpTimerCb>,
    id: Option<ffi::SlirpTimerId>,
    cb_opaque: *mut c_void,
    /// Expiry in ms of [`Ctx::now_ms`], when armed.
    expire: Cell<Option<i64>>,
}

/// What the callbacks reach through slirp's `opaque`. Only shared references exist while
/// slirp runs (it calls back into us); interior mutability for what the callbacks change, and
/// no `RefCell` borrow is held across a slirp call.
struct Ctx {
    frames: RawFd,
    start: Instant,
    timers: RefCell<Vec<*mut Timer>>,
    pollfds: RefCell<Vec<libc::pollfd>>,
    dropped: Arc<AtomicU64>,
}

impl Ctx {
    fn now_ms(&self) -> i64 {
        (self.start.elapsed().as_nanos() / 1_000_000) as i64
    }
}

/// # Safety
/// `opaque` is the `Ctx` given to `slirp_new`, alive while slirp is.
unsafe fn ctx<'a>(opaque: *mut c_void) -> &'a Ctx {
    // SAFETY: per the function's contract.
    unsafe { &*(opaque as *const Ctx) }
}

unsafe extern "C" fn send_packet(buf: *const c_void, len: usize, opaque: *mut c_void) -> isize {
    // SAFETY: slirp passes our Ctx.
    let c = unsafe { ctx(opaque) };
    // SAFETY: slirp's buffer holds len bytes for the duration of the call.
    let n = unsafe { libc::write(c.frames, buf, len) };
    if n != len as isize {
        // The device's socket is full (the guest does not read) or gone: drop, TCP retransmits.
        c.dropped.fetch_add(1, Ordering::Relaxed);
    }
    len as isize
}

unsafe extern "C" fn guest_error(msg: *const c_char, _opaque: *mut c_void) {
    // SAFETY: slirp passes a NUL-terminated message.
    let m = unsafe { std::ffi::CStr::from_ptr(msg) };
    tracing::debug!("user network: guest error: {}", m.to_string_lossy());
}

unsafe extern "C" fn clock_get_ns(opaque: *mut c_void) -> i64 {
    // SAFETY: slirp passes our Ctx.
    let c = unsafe { ctx(opaque) };
    c.start.elapsed().as_nanos() as i64
}

fn new_timer(c: &Ctx, t: Timer) -> *mut c_void {
    let p = Box::into_raw(Box::new(t));
    c.timers.borrow_mut().push(p);
    p.cast()
}

unsafe extern "C" fn timer_new(
    cb: ffi::SlirpTimerCb,
    cb_opaque: *mut c_void,
    opaque: *mut c_void,
) -> *mut c_void {
    // SAFETY: slirp passes our Ctx.
    let c = unsafe { ctx(opaque) };
    new_timer(
        c,
        Timer {
            cb: Some(cb),
            id: None,
            cb_opaque,
            expire: Cell::new(None),
        },
    )
}

unsafe extern "C" fn timer_new_opaque(
    id: ffi::SlirpTimerId,
    cb_opaque: *mut c_void,
    opaque: *mut c_void,
) -> *mut c_void {
    // SAFETY: slirp passes our Ctx.
    let c = unsafe { ctx(opaque) };
    new_timer(
        c,
        Timer {
            cb: None,
            id: Some(id),
            cb_opaque,
            expire: Cell::new(None),
        },
    )
}

unsafe extern "C" fn timer_free(timer: *mut c_void, opaque: *mut c_void) {
    // SAFETY: slirp passes our Ctx.
    let c = unsafe { ctx(opaque) };
    let mut timers = c.timers.borrow_mut();
    if let Some(i) = timers.iter().position(|&t| t.cast() == timer) {
        let t = timers.swap_remove(i);
        // SAFETY: t came from Box::into_raw in new_timer and is freed once (removed above).
        drop(unsafe { Box::from_raw(t) });
    }
}

unsafe extern "C" fn timer_mod(timer: *mut c_void, expire: i64, opaque: *mut c_void) {
    // SAFETY: slirp passes our Ctx.
    let c = unsafe { ctx(opaque) };
    if c.timers.borrow().iter().any(|&t| t.cast() == timer) {
        // SAFETY: a live timer of ours (still registered).
        unsafe { (*(timer as *const Timer)).expire.set(Some(expire)) };
    }
}

unsafe extern "C" fn poll_fd_noop(_fd: c_int, _opaque: *mut c_void) {}
unsafe extern "C" fn notify_noop(_opaque: *mut c_void) {}
unsafe extern "C" fn init_completed(_slirp: *mut Slirp, _opaque: *mut c_void) {}

unsafe extern "C" fn add_poll(fd: c_int, events: c_int, opaque: *mut c_void) -> c_int {
    // SAFETY: slirp_pollfds_fill passes the Ctx we gave it.
    let c = unsafe { ctx(opaque) };
    let mut ev = 0;
    if events & ffi::SLIRP_POLL_IN != 0 {
        ev |= libc::POLLIN;
    }
    if events & ffi::SLIRP_POLL_OUT != 0 {
        ev |= libc::POLLOUT;
    }
    if events & ffi::SLIRP_POLL_PRI != 0 {
        ev |= libc::POLLPRI;
    }
    let mut fds = c.pollfds.borrow_mut();
    fds.push(libc::pollfd {
        fd,
        events: ev,
        revents: 0,
    });
    (fds.len() - 1) as c_int
}

unsafe extern "C" fn get_revents(idx: c_int, opaque: *mut c_void) -> c_int {
    // SAFETY: slirp_pollfds_poll passes the Ctx we gave it.
    let c = unsafe { ctx(opaque) };
    let Some(p) = usize::try_from(idx)
        .ok()
        .and_then(|i| c.pollfds.borrow().get(i).copied())
    else {
        return 0;
    };
    let r = p.revents;
    let mut out = 0;
    for (from, to) in [
        (libc::POLLIN, ffi::SLIRP_POLL_IN),
        (libc::POLLOUT, ffi::SLIRP_POLL_OUT),
        (libc::POLLPRI, ffi::SLIRP_POLL_PRI),
        (libc::POLLERR, ffi::SLIRP_POLL_ERR),
        (libc::POLLHUP, ffi::SLIRP_POLL_HUP),
    ] {
        if r & from != 0 {
            out |= to;
        }
    }
    out
}

fn errno_text() -> String {
    std::io::Error::last_os_error().to_string()
}

/// Adds a host forwarding rule; the error names the port when it is taken.
fn add_hostfwd(lib: &Lib, slirp: *mut Slirp, r: &HostFwd) -> Result<(), String> {
    // SAFETY: slirp is live (this thread owns it); addresses are plain values.
    let rc = unsafe {
        (lib.slirp_add_hostfwd)(
            slirp,
            c_int::from(r.udp),
            ffi::in_addr(r.host_addr),
            c_int::from(r.host_port),
            ffi::in_addr(r.guest_addr),
            c_int::from(r.guest_port),
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    let proto = if r.udp { "udp" } else { "tcp" };
    let hint = if err.raw_os_error() == Some(libc::EADDRINUSE) {
        "; another program holds that port: pick another host port"
    } else {
        ""
    };
    Err(format!(
        "could not set up host forwarding rule '{}': cannot listen on {proto} {}:{} ({err}){hint}",
        r.text, r.host_addr, r.host_port
    ))
}

#[allow(clippy::too_many_arguments)]
fn run(
    lib: &'static Lib,
    frames: OwnedFd,
    cfg: &UserConfig,
    cmds: &Receiver<Cmd>,
    wake: &EventFd,
    stop: &EventFd,
    dropped: Arc<AtomicU64>,
    setup: &Sender<Result<(), String>>,
) {
    let ctx = Box::new(Ctx {
        frames: frames.as_raw_fd(),
        start: Instant::now(),
        timers: RefCell::new(Vec::new()),
        pollfds: RefCell::new(Vec::new()),
        dropped,
    });
    let opaque = (&*ctx as *const Ctx).cast_mut().cast::<c_void>();
    let callbacks = ffi::SlirpCb {
        send_packet: Some(send_packet),
        guest_error: Some(guest_error),
        clock_get_ns: Some(clock_get_ns),
        timer_new: Some(timer_new),
        timer_free: Some(timer_free),
        timer_mod: Some(timer_mod),
        register_poll_fd: Some(poll_fd_noop),
        unregister_poll_fd: Some(poll_fd_noop),
        notify: Some(notify_noop),
        init_completed: Some(init_completed),
        timer_new_opaque: Some(timer_new_opaque),
    };
    let ip = |a, b, c, d| ffi::in_addr(std::net::Ipv4Addr::new(a, b, c, d));
    // SAFETY: in6_addr is plain bytes; zero is "::".
    let zero6: libc::in6_addr = unsafe { std::mem::zeroed() };
    let config = ffi::SlirpConfig {
        version: 4,
        restricted: c_int::from(cfg.restrict),
        in_enabled: true,
        vnetwork: ip(10, 0, 2, 0),
        vnetmask: ip(255, 255, 255, 0),
        vhost: ip(10, 0, 2, 2),
        in6_enabled: false,
        vprefix_addr6: zero6,
        vprefix_len: 0,
        vhost6: zero6,
        vhostname: std::ptr::null(),
        tftp_server_name: std::ptr::null(),
        tftp_path: std::ptr::null(),
        bootfile: std::ptr::null(),
        vdhcp_start: ip(10, 0, 2, 15),
        vnameserver: ip(10, 0, 2, 3),
        vnameserver6: zero6,
        vdnssearch: std::ptr::null(),
        vdomainname: std::ptr::null(),
        if_mtu: 0,
        if_mru: 0,
        disable_host_loopback: false,
        enable_emu: false,
        outbound_addr: std::ptr::null(),
        outbound_addr6: std::ptr::null(),
        disable_dns: false,
        disable_dhcp: false,
    };
    // SAFETY: config and callbacks outlive slirp (dropped after slirp_cleanup below); opaque
    // points at ctx, which does too.
    let slirp = unsafe { (lib.slirp_new)(&config, &callbacks, opaque) };
    if slirp.is_null() {
        let _ = setup.send(Err("libslirp refused the network configuration".into()));
        return;
    }
    let mut ok = Ok(());
    for r in &cfg.hostfwd {
        if let Err(e) = add_hostfwd(lib, slirp, r) {
            ok = Err(e);
            break;
        }
    }
    for g in &cfg.guestfwd {
        if ok.is_err() {
            break;
        }
        let mut addr = ffi::in_addr(g.addr);
        let rc = match CString::new(g.cmd.as_str()) {
            // SAFETY: slirp is live; cmd is NUL-terminated and copied by slirp; addr is ours.
            Ok(cmd) => unsafe {
                (lib.slirp_add_exec)(slirp, cmd.as_ptr(), &mut addr, c_int::from(g.port))
            },
            Err(_) => -1,
        };
        if rc != 0 {
            ok = Err(format!(
                "could not set up guest forwarding rule for {}:{} ({})",
                g.addr,
                g.port,
                errno_text()
            ));
        }
    }
    let failed = ok.is_err();
    let _ = setup.send(ok);
    if !failed {
        poll_loop(lib, slirp, &ctx, opaque, &frames, cmds, wake, stop);
    }
    // SAFETY: slirp is live and used by no one else; this ends it (its sockets close).
    unsafe { (lib.slirp_cleanup)(slirp) };
    for t in ctx.timers.borrow_mut().drain(..) {
        // SAFETY: timers slirp did not free are ours to free, once.
        drop(unsafe { Box::from_raw(t) });
    }
}

#[allow(clippy::too_many_arguments)]
fn poll_loop(
    lib: &Lib,
    slirp: *mut Slirp,
    ctx: &Ctx,
    opaque: *mut c_void,
    frames: &OwnedFd,
    cmds: &Receiver<Cmd>,
    wake: &EventFd,
    stop: &EventFd,
) {
    let mut buf = vec![0u8; 65536 + 64];
    loop {
        {
            let mut fds = ctx.pollfds.borrow_mut();
            fds.clear();
            for fd in [frames.as_raw_fd(), wake.as_raw_fd(), stop.as_raw_fd()] {
                fds.push(libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        let now = ctx.now_ms();
        let next = ctx
            .timers
            .borrow()
            .iter()
            // SAFETY: registered timers are live.
            .filter_map(|&t| unsafe { (*t).expire.get() })
            .min();
        let mut timeout: u32 = next.map_or(1000, |e| (e - now).clamp(0, 1000) as u32);
        // SAFETY: slirp is live; add_poll gets our ctx; timeout is ours.
        unsafe { (lib.slirp_pollfds_fill)(slirp, &mut timeout, add_poll, opaque) };
        let n = {
            let mut fds = ctx.pollfds.borrow_mut();
            // SAFETY: fds is a live array of fds.len() pollfd structs.
            unsafe {
                libc::poll(
                    fds.as_mut_ptr(),
                    fds.len() as libc::nfds_t,
                    timeout as c_int,
                )
            }
        };
        let (frames_ev, wake_ev, stop_ev) = {
            let fds = ctx.pollfds.borrow();
            (fds[0].revents, fds[1].revents, fds[2].revents)
        };
        if stop_ev != 0 {
            return;
        }
        if frames_ev & libc::POLLIN != 0 {
            loop {
                // SAFETY: reads into our buffer of its length.
                let r =
                    unsafe { libc::read(frames.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if r <= 0 {
                    break;
                }
                // SAFETY: slirp is live; the frame is r bytes of buf (slirp copies what it keeps).
                unsafe { (lib.slirp_input)(slirp, buf.as_ptr(), r as c_int) };
            }
        } else if frames_ev & (libc::POLLHUP | libc::POLLERR) != 0 {
            // The device is gone: nothing more to do until we are stopped.
            tracing::debug!("user network: the device closed its end");
            return;
        }
        if wake_ev != 0 {
            let _ = wake.read();
            while let Ok(cmd) = cmds.try_recv() {
                match cmd {
                    Cmd::AddHostFwd(r, reply) => {
                        let _ = reply.send(add_hostfwd(lib, slirp, &r));
                    }
                    Cmd::RemoveHostFwd(udp, addr, port, reply) => {
                        // SAFETY: slirp is live.
                        let rc = unsafe {
                            (lib.slirp_remove_hostfwd)(
                                slirp,
                                c_int::from(udp),
                                ffi::in_addr(addr),
                                c_int::from(port),
                            )
                        };
                        let _ = reply.send(if rc == 0 {
                            Ok(())
                        } else {
                            Err(format!("no host forwarding rule listens on {addr}:{port}"))
                        });
                    }
                }
            }
        }
        // SAFETY: slirp is live; get_revents reads the pollfds add_poll filled.
        unsafe { (lib.slirp_pollfds_poll)(slirp, c_int::from(n < 0), get_revents, opaque) };
        // Expired timers, one at a time (a callback may free or re-arm timers).
        loop {
            let now = ctx.now_ms();
            let due = ctx.timers.borrow().iter().copied().find(|&t| {
                // SAFETY: registered timers are live.
                unsafe { (*t).expire.get() }.is_some_and(|e| e <= now)
            });
            let Some(t) = due else { break };
            // SAFETY: t is live (registered); read its fields before calling back.
            let (cb, id, cb_opaque) = unsafe {
                (*t).expire.set(None);
                ((*t).cb, (*t).id, (*t).cb_opaque)
            };
            match (cb, id) {
                // SAFETY: slirp's callback with the opaque it gave for it.
                (Some(cb), _) => unsafe { cb(cb_opaque) },
                // SAFETY: slirp is live; the id and opaque are those it gave timer_new_opaque.
                (None, Some(id)) => unsafe { (lib.slirp_handle_timer)(slirp, id, cb_opaque) },
                (None, None) => {}
            }
        }
    }
}

#[cfg(test)]
#[path = "slirp_tests.rs"]
mod tests;
