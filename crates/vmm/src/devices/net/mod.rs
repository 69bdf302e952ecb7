//! NIC backends: user networking (libslirp, `slirp.rs` over `slirp_ffi.rs`) and tap
//! (`tap.rs`). Each NIC is a virtio-net device (`devices/virtio/net.rs`) whose frame fd is a
//! tap, or one end of a socket pair served by the slirp thread. [`NetDev`] is what the
//! monitor keeps of a NIC: its configuration, link switch, counters and, for a user network,
//! the forwarding rules it can change (docs/virtio-net.md).

pub mod slirp;
pub mod slirp_ffi;
pub mod tap;

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use vm_config::{HostFwd, NetBackendConfig, NicConfig};

use crate::devices::virtio::net::{Net, NetCounters, NetLink};

/// Why a NIC's backend could not be set up. Messages start with the option.
#[derive(Debug, thiserror::Error)]
#[error("{option}: {msg}")]
pub struct NetError {
    pub option: String,
    pub msg: String,
}

enum Backend {
    User(slirp::UserNet),
    Tap(String),
    /// `-net nic` alone: the other end of the pair, kept open so the device's writes are
    /// simply never read (the socket fills and frames are dropped and counted).
    None(#[allow(dead_code)] OwnedFd),
}

/// A NIC as the monitor sees it.
pub struct NetDev {
    pub cfg: NicConfig,
    pub link: Arc<NetLink>,
    pub counters: Arc<NetCounters>,
    backend: Backend,
}

/// A connected, non-blocking `SOCK_SEQPACKET` pair: one frame per message both ways.
pub fn frame_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two descriptors into the array we pass.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh and owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl NetDev {
    /// Opens the backend of `cfg` and builds its device.
    pub fn open(cfg: &NicConfig) -> Result<(NetDev, Net), NetError> {
        let err = |msg: String| NetError {
            option: cfg.option.clone(),
            msg,
        };
        let io = |e: std::io::Error| err(e.to_string());
        let (frames, backend) = match &cfg.backend {
            NetBackendConfig::User {
                hostfwd,
                guestfwd,
                restrict,
            } => {
                let (dev_end, slirp_end) = frame_pair().map_err(io)?;
                let user = slirp::UserNet::start(
                    &cfg.id,
                    slirp_end,
                    &slirp::UserConfig {
                        hostfwd: hostfwd.clone(),
                        guestfwd: guestfwd.clone(),
                        restrict: *restrict,
                    },
                )
                .map_err(&err)?;
                (dev_end, Backend::User(user))
            }
            NetBackendConfig::Tap { ifname, fd } => match (ifname, fd) {
                (_, Some(n)) => (
                    tap::from_fd(*n).map_err(&err)?,
                    Backend::Tap(format!("fd={n}")),
                ),
                (Some(name), None) => {
                    let (fd, name) = tap::open(name).map_err(&err)?;
                    (fd, Backend::Tap(format!("ifname={name}")))
                }
                (None, None) => {
                    return Err(err(
                        "pmvm needs ifname=NAME (a tap created beforehand, or created by pmvm with CAP_NET_ADMIN) or fd=N".into(),
                    ));
                }
            },
            NetBackendConfig::None => {
                let (dev_end, peer) = frame_pair().map_err(io)?;
                (dev_end, Backend::None(peer))
            }
        };
        let link = NetLink::new().map_err(io)?;
        let counters = Arc::new(NetCounters::default());
        let net = Net::new(cfg.mac, frames, link.clone(), counters.clone()).map_err(io)?;
        Ok((
            NetDev {
                cfg: cfg.clone(),
                link,
                counters,
                backend,
            },
            net,
        ))
    }

    /// One line for the start-up report.
    pub fn describe(&self) -> String {
        let backend = match &self.backend {
            Backend::User(_) => {
                let fwd = match &self.cfg.backend {
                    NetBackendConfig::User { hostfwd, .. } if !hostfwd.is_empty() => format!(
                        ", forwarding {}",
                        hostfwd
                            .iter()
                            .map(|h| h.text.as_str())
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    _ => String::new(),
                };
                let v = slirp_ffi::version().unwrap_or_default();
                format!("user network 10.0.2.0/24 (libslirp {v}){fwd}")
            }
            Backend::Tap(t) => format!("tap {t}"),
            Backend::None(_) => "no host network".into(),
        };
        format!(
            "{}: virtio-net {} ({})",
            self.cfg.id,
            self.cfg.mac_string(),
            backend
        )
    }

    /// HMP `info network` lines for this NIC, named `name` (QEMU's `e1000.0`; QEMU's layout:
    /// the NIC, then its peer).
    pub fn info(&self, name: &str) -> String {
        let c = &self.counters;
        let peer = match (&self.backend, &self.cfg.backend) {
            (Backend::User(u), NetBackendConfig::User { restrict, .. }) => format!(
                "{}: index=0,type=user,net=10.0.2.0,restrict={} (frames dropped for the guest: {})",
                self.cfg.id,
                if *restrict { "on" } else { "off" },
                u.dropped.load(Ordering::Relaxed)
            ),
            (Backend::Tap(t), _) => format!("{}: index=0,type=tap,{t}", self.cfg.id),
            _ => format!("{}: (no host network)", self.cfg.id),
        };
        let status = if self.link.is_up() {
            ""
        } else {
            " (link down)"
        };
        format!(
            "{name}: index=0,type=nic,model=virtio-net (given for {model}),macaddr={mac}{status}\n \\ {peer}\n   rx {rx} tx {tx} frames; dropped rx {rxd} tx {txd}; bad descriptor chains {bad}\n",
            model = self.cfg.model,
            mac = self.cfg.mac_string(),
            rx = c.rx_frames.load(Ordering::Relaxed),
            tx = c.tx_frames.load(Ordering::Relaxed),
            rxd = c.rx_dropped.load(Ordering::Relaxed),
            txd = c.tx_dropped.load(Ordering::Relaxed),
            bad = c.bad_chains.load(Ordering::Relaxed),
        )
    }

    /// The user network, for `hostfwd_add`/`hostfwd_remove`.
    fn user(&self) -> Result<&slirp::UserNet, String> {
        match &self.backend {
            Backend::User(u) => Ok(u),
            _ => Err(format!("{} is not a user network", self.cfg.id)),
        }
    }

    /// Adds a forwarding rule (`hostfwd_add`).
    pub fn add_hostfwd(&self, rule: &HostFwd) -> Result<(), String> {
        self.user()?.add_hostfwd(rule)
    }

    /// Removes a forwarding rule (`hostfwd_remove`).
    pub fn remove_hostfwd(
        &self,
        udp: bool,
        addr: std::net::Ipv4Addr,
        port: u16,
    ) -> Result<(), String> {
        self.user()?.remove_hostfwd(udp, addr, port)
    }
}
