//! A hand-rolled FFI to libslirp 4.x (`libslirp.so.0`), loaded at run time with `dlopen`.
//!
//! Why by hand: the `libslirp-sys` crate links at build time (pmvm would then not start on a
//! host without libslirp, even for a VM without user networking), needs glib's headers to
//! build, and predates libslirp 4.7. pmvm uses a dozen functions and two structs, declared
//! here from `<slirp/libslirp.h>` of libslirp 4.7 (`SlirpConfig` version 4, `SlirpCb` with
//! `timer_new_opaque`); the library is looked up only when a user network is asked for, and
//! its absence is one error naming the Debian package.

use std::ffi::{c_char, c_int, c_void};
use std::sync::OnceLock;

/// `struct Slirp` is opaque.
#[repr(C)]
pub struct Slirp {
    _private: [u8; 0],
}

pub const SLIRP_POLL_IN: c_int = 1 << 0;
pub const SLIRP_POLL_OUT: c_int = 1 << 1;
pub const SLIRP_POLL_PRI: c_int = 1 << 2;
pub const SLIRP_POLL_ERR: c_int = 1 << 3;
pub const SLIRP_POLL_HUP: c_int = 1 << 4;

pub type SlirpWriteCb =
    unsafe extern "C" fn(buf: *const c_void, len: usize, opaque: *mut c_void) -> isize;
pub type SlirpTimerCb = unsafe extern "C" fn(opaque: *mut c_void);
pub type SlirpAddPollCb =
    unsafe extern "C" fn(fd: c_int, events: c_int, opaque: *mut c_void) -> c_int;
pub type SlirpGetREventsCb = unsafe extern "C" fn(idx: c_int, opaque: *mut c_void) -> c_int;
/// `SlirpTimerId` (an enum: `SLIRP_TIMER_RA` = 0).
pub type SlirpTimerId = c_int;

/// `SlirpCb` (libslirp.h), all fields up to version 4's `timer_new_opaque`.
#[repr(C)]
pub struct SlirpCb {
    pub send_packet: Option<SlirpWriteCb>,
    pub guest_error: Option<unsafe extern "C" fn(msg: *const c_char, opaque: *mut c_void)>,
    pub clock_get_ns: Option<unsafe extern "C" fn(opaque: *mut c_void) -> i64>,
    pub timer_new: Option<
        unsafe extern "C" fn(
            cb: SlirpTimerCb,
            cb_opaque: *mut c_void,
            opaque: *mut c_void,
        ) -> *mut c_void,
    >,
    pub timer_free: Option<unsafe extern "C" fn(timer: *mut c_void, opaque: *mut c_void)>,
    pub timer_mod:
        Option<unsafe extern "C" fn(timer: *mut c_void, expire_time: i64, opaque: *mut c_void)>,
    pub register_poll_fd: Option<unsafe extern "C" fn(fd: c_int, opaque: *mut c_void)>,
    pub unregister_poll_fd: Option<unsafe extern "C" fn(fd: c_int, opaque: *mut c_void)>,
    pub notify: Option<unsafe extern "C" fn(opaque: *mut c_void)>,
    pub init_completed: Option<unsafe extern "C" fn(slirp: *mut Slirp, opaque: *mut c_void)>,
    pub timer_new_opaque: Option<
        unsafe extern "C" fn(
            id: SlirpTimerId,
            cb_opaque: *mut c_void,
            opaque: *mut c_void,
        ) -> *mut c_void,
    >,
}

/// `SlirpConfig` version 4 (libslirp.h).
#[repr(C)]
pub struct SlirpConfig {
    pub version: u32,
    pub restricted: c_int,
    pub in_enabled: bool,
    pub vnetwork: libc::in_addr,
    pub vnetmask: libc::in_addr,
    pub vhost: libc::in_addr,
    pub in6_enabled: bool,
    pub vprefix_addr6: libc::in6_addr,
    pub vprefix_len: u8,
    pub vhost6: libc::in6_addr,
    pub vhostname: *const c_char,
    pub tftp_server_name: *const c_char,
    pub tftp_path: *const c_char,
    pub bootfile: *const c_char,
    pub vdhcp_start: libc::in_addr,
    pub vnameserver: libc::in_addr,
    pub vnameserver6: libc::in6_addr,
    pub vdnssearch: *const *const c_char,
    pub vdomainname: *const c_char,
    pub if_mtu: usize,
    pub if_mru: usize,
    pub disable_host_loopback: bool,
    pub enable_emu: bool,
    pub outbound_addr: *const libc::sockaddr_in,
    pub outbound_addr6: *const libc::sockaddr_in6,
    pub disable_dns: bool,
    pub disable_dhcp: bool,
}

type SlirpNewFn =
    unsafe extern "C" fn(*const SlirpConfig, *const SlirpCb, *mut c_void) -> *mut Slirp;
type SlirpCleanupFn = unsafe extern "C" fn(*mut Slirp);
type PollfdsFillFn = unsafe extern "C" fn(*mut Slirp, *mut u32, SlirpAddPollCb, *mut c_void);
type PollfdsPollFn = unsafe extern "C" fn(*mut Slirp, c_int, SlirpGetREventsCb, *mut c_void);
type InputFn = unsafe extern "C" fn(*mut Slirp, *const u8, c_int);
type HandleTimerFn = unsafe extern "C" fn(*mut Slirp, SlirpTimerId, *mut c_void);
type AddHostfwdFn =
    unsafe extern "C" fn(*mut Slirp, c_int, libc::in_addr, c_int, libc::in_addr, c_int) -> c_int;
type RemoveHostfwdFn = unsafe extern "C" fn(*mut Slirp, c_int, libc::in_addr, c_int) -> c_int;
type AddExecFn =
    unsafe extern "C" fn(*mut Slirp, *const c_char, *mut libc::in_addr, c_int) -> c_int;
type VersionFn = unsafe extern "C" fn() -> *const c_char;

/// The functions pmvm calls, resolved from the loaded library.
pub struct Lib {
    pub slirp_new: SlirpNewFn,
    pub slirp_cleanup: SlirpCleanupFn,
    pub slirp_pollfds_fill: PollfdsFillFn,
    pub slirp_pollfds_poll: PollfdsPollFn,
    pub slirp_input: InputFn,
    pub slirp_handle_timer: HandleTimerFn,
    pub slirp_add_hostfwd: AddHostfwdFn,
    pub slirp_remove_hostfwd: RemoveHostfwdFn,
    pub slirp_add_exec: AddExecFn,
    pub slirp_version_string: VersionFn,
}

/// The library's soname (Debian package `libslirp0`).
pub const SONAME: &str = "libslirp.so.0";

fn load() -> Result<Lib, String> {
    // SAFETY: dlopen with a NUL-terminated name; loading libslirp runs only its (glib's)
    // initialisers, which have no preconditions.
    let h = unsafe { libc::dlopen(c"libslirp.so.0".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if h.is_null() {
        // SAFETY: dlerror returns a NUL-terminated string or null, valid until the next dl call.
        let why = unsafe {
            let e = libc::dlerror();
            if e.is_null() {
                String::new()
            } else {
                std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned()
            }
        };
        return Err(format!(
            "user networking needs libslirp ({SONAME}), which cannot be loaded ({why}); install it \
             (Debian/Ubuntu: apt install libslirp0; Fedora: dnf install libslirp) or use a tap backend"
        ));
    }
    macro_rules! sym {
        ($name:ident, $ty:ty) => {{
            let name = concat!(stringify!($name), "\0");
            // SAFETY: h is a live handle and name is NUL-terminated.
            let p = unsafe { libc::dlsym(h, name.as_ptr().cast()) };
            if p.is_null() {
                return Err(format!(
                    "{SONAME} has no {}: pmvm needs libslirp 4.1 or newer",
                    stringify!($name)
                ));
            }
            // SAFETY: the symbol is libslirp's function of that name, whose C signature
            // (libslirp.h, 4.x, stable ABI) the field's type repeats.
            unsafe { std::mem::transmute::<*mut c_void, $ty>(p) }
        }};
    }
    Ok(Lib {
        slirp_new: sym!(slirp_new, SlirpNewFn),
        slirp_cleanup: sym!(slirp_cleanup, SlirpCleanupFn),
        slirp_pollfds_fill: sym!(slirp_pollfds_fill, PollfdsFillFn),
        slirp_pollfds_poll: sym!(slirp_pollfds_poll, PollfdsPollFn),
        slirp_input: sym!(slirp_input, InputFn),
        slirp_handle_timer: sym!(slirp_handle_timer, HandleTimerFn),
        slirp_add_hostfwd: sym!(slirp_add_hostfwd, AddHostfwdFn),
        slirp_remove_hostfwd: sym!(slirp_remove_hostfwd, RemoveHostfwdFn),
        slirp_add_exec: sym!(slirp_add_exec, AddExecFn),
        slirp_version_string: sym!(slirp_version_string, VersionFn),
    })
    // The handle is never closed: the functions stay valid for the life of the process.
}

/// The library, loaded on first use (and the error, if it cannot be).
pub fn lib() -> Result<&'static Lib, String> {
    static LIB: OnceLock<Result<Lib, String>> = OnceLock::new();
    LIB.get_or_init(load).as_ref().map_err(Clone::clone)
}

/// libslirp's version ("4.7.0").
pub fn version() -> Result<String, String> {
    let l = lib()?;
    // SAFETY: slirp_version_string returns a static NUL-terminated string.
    Ok(
        unsafe { std::ffi::CStr::from_ptr((l.slirp_version_string)()) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// An IPv4 address as `struct in_addr` (network byte order).
pub fn in_addr(a: std::net::Ipv4Addr) -> libc::in_addr {
    libc::in_addr {
        s_addr: u32::from_ne_bytes(a.octets()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn struct_layouts_match_libslirp_h() {
        // x86-64 sizes and offsets printed by a C program against libslirp.h 4.7 (sizeof, offsetof).
        assert_eq!(std::mem::size_of::<super::SlirpCb>(), 88);
        assert_eq!(std::mem::size_of::<super::SlirpConfig>(), 184);
        assert_eq!(std::mem::offset_of!(super::SlirpConfig, vhostname), 64);
        assert_eq!(std::mem::offset_of!(super::SlirpConfig, vdhcp_start), 96);
        assert_eq!(std::mem::offset_of!(super::SlirpConfig, if_mtu), 136);
        assert_eq!(std::mem::offset_of!(super::SlirpConfig, disable_dns), 176);
    }
}
