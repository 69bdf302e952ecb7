//! tap backends: `-netdev tap,ifname=NAME,script=no,downscript=no` opens `/dev/net/tun` and
//! attaches to (or, with CAP_NET_ADMIN, creates) the interface; `fd=N` uses a tap the caller
//! opened (libvirt's way). Frames are plain Ethernet (`IFF_NO_PI`, no `IFF_VNET_HDR`: the
//! device offers no offloads, so the guest's frames are complete). pmvm runs no scripts: the
//! interface is configured (up, bridged) by whoever created it.

use std::os::fd::{FromRawFd, OwnedFd};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

/// `struct ifreq` as TUNSETIFF reads it: the name and the flags.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Opens the tap `ifname`; the error is one line saying what to do.
pub fn open(ifname: &str) -> Result<(OwnedFd, String), String> {
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
        return Err(format!(
            "ifname={ifname}: an interface name has 1 to 15 characters"
        ));
    }
    // SAFETY: open with a NUL-terminated path; the result is checked.
    let fd = unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!(
            "ifname={ifname}: cannot open /dev/net/tun ({e}){}",
            if e.kind() == std::io::ErrorKind::NotFound {
                "; load the tun module (modprobe tun)"
            } else {
                "; pmvm needs read-write access to it"
            }
        ));
    }
    // SAFETY: fd is a fresh descriptor owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: IFF_TAP | IFF_NO_PI,
        _pad: [0; 22],
    };
    req.name[..ifname.len()].copy_from_slice(ifname.as_bytes());
    // SAFETY: TUNSETIFF reads and writes an ifreq-sized struct we own.
    let rc = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&fd), TUNSETIFF, &mut req) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        let hint = match e.raw_os_error() {
            Some(libc::EPERM) => format!(
                "; creating a tap needs CAP_NET_ADMIN: create it beforehand for this user \
                 (ip tuntap add {ifname} mode tap user $USER) or run pmvm with CAP_NET_ADMIN"
            ),
            Some(libc::EBUSY) => {
                "; another process has it open (a tap has one user without multi_queue)".into()
            }
            Some(libc::EINVAL) => format!("; {ifname} exists and is not a tap"),
            _ => String::new(),
        };
        return Err(format!(
            "ifname={ifname}: cannot attach to the tap ({e}){hint}"
        ));
    }
    let end = req
        .name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(req.name.len());
    Ok((fd, String::from_utf8_lossy(&req.name[..end]).into_owned()))
}

/// Takes a copy of an inherited tap fd (`fd=N`): a rebuilt VM (after a guest reset) takes
/// another copy, so the caller's descriptor stays usable.
pub fn from_fd(n: i32) -> Result<OwnedFd, String> {
    // SAFETY: F_DUPFD_CLOEXEC on a number; an invalid one fails with EBADF.
    let fd = unsafe { libc::fcntl(n, libc::F_DUPFD_CLOEXEC, 3) };
    if fd < 0 {
        return Err(format!(
            "fd={n}: not an open file descriptor ({}); pass the tap's fd to pmvm open",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: a fresh duplicate owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    #[test]
    fn bad_fds_and_names_are_refused_with_the_option() {
        let e = super::from_fd(987_654).unwrap_err();
        assert!(
            e.starts_with("fd=987654: not an open file descriptor"),
            "{e}"
        );
        let e = super::open("").unwrap_err();
        assert!(e.contains("1 to 15"), "{e}");
    }

    #[test]
    fn creating_a_tap_works_as_root_or_says_what_is_missing() {
        match super::open("pmvmtest0") {
            Ok((_, name)) => assert_eq!(name, "pmvmtest0"),
            Err(e) => assert!(
                e.starts_with("ifname=pmvmtest0: cannot"),
                "one line naming the interface: {e}"
            ),
        }
    }
}
