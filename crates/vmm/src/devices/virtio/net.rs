//! virtio-net (virtio 1.2 section 5.1): a receive queue and a transmit queue in front of a
//! frame fd (docs/virtio-net.md).
//!
//! The backend is a non-blocking file descriptor that carries one Ethernet frame per read and
//! per write, without a virtio header: a tap opened without `IFF_VNET_HDR`, or one end of a
//! `SOCK_SEQPACKET` socket pair whose other end is served by the user-network (slirp) thread
//! (`devices/net/`). The device offers no offloads: the guest hands over complete frames with
//! correct checksums and the 12-byte `virtio_net_hdr_v1` is all zero both ways.
//!
//! Everything the guest gives is hostile: a transmit chain is gathered up to
//! [`MAX_FRAME`] bytes (larger ones are dropped and counted, nothing bigger is allocated), a
//! receive chain must be device-writable, and a frame that does not fit the guest's buffer is
//! dropped and counted with the buffer kept for the next one. A guest that never reads its
//! receive queue costs no host memory: one frame waits here, the rest wait in the kernel's
//! socket or tap queue, whose bound makes the sender drop (and count) frames.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use virtio_bindings::virtio_ids::VIRTIO_ID_NET;
use virtio_bindings::virtio_net::{VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS, VIRTIO_NET_S_LINK_UP};
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

use super::VirtioDevice;

/// Size of `virtio_net_hdr_v1` (with `VIRTIO_F_VERSION_1` the header always has `num_buffers`).
pub const HDR_LEN: usize = 12;
/// Largest frame the device moves: a 64 KiB IP packet with Ethernet and VLAN headers
/// (65535 + 14 + 4 = 65553, rounded as QEMU's `NET_BUFSIZE` bound) plus the header:
/// 65562 bytes of chain. Longer transmit chains are dropped and counted.
pub const MAX_CHAIN: usize = 65562;
/// Largest Ethernet frame (without the virtio header).
pub const MAX_FRAME: usize = MAX_CHAIN - HDR_LEN;
/// Shortest frame worth sending: an Ethernet header.
const MIN_FRAME: usize = 14;
/// Queue size of both queues.
pub const QUEUE_SIZE: u16 = 256;
const RX: usize = 0;
const TX: usize = 1;

/// Token of the backend's frame fd.
pub const TOKEN_BACKEND: u32 = 0;
/// Token of the link-control eventfd (`set_link` from the monitor).
pub const TOKEN_LINK: u32 = 1;

/// Counters, shared with the monitor's `info network`.
#[derive(Debug, Default)]
pub struct NetCounters {
    /// Frames given to the guest.
    pub rx_frames: AtomicU64,
    /// Frames sent to the backend.
    pub tx_frames: AtomicU64,
    /// Received frames dropped: larger than the guest's buffer, or the link down.
    pub rx_dropped: AtomicU64,
    /// Transmitted frames dropped: oversized, too short, the backend full, or the link down.
    pub tx_dropped: AtomicU64,
    /// Descriptor chains of the wrong shape (a readable buffer on the receive queue, a
    /// writable one on the transmit queue, memory outside the guest).
    pub bad_chains: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Link state, changed by the monitor (`set_link`) and seen by the I/O thread through an
/// eventfd, which then raises a configuration interrupt.
#[derive(Debug)]
pub struct NetLink {
    up: AtomicBool,
    wake: EventFd,
}

impl NetLink {
    /// A link that is up.
    pub fn new() -> std::io::Result<Arc<NetLink>> {
        Ok(Arc::new(NetLink {
            up: AtomicBool::new(true),
            wake: EventFd::new(libc::EFD_NONBLOCK)?,
        }))
    }

    /// Whether the link is up.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// Sets the link state and tells the device's I/O thread.
    pub fn set(&self, up: bool) {
        if self.up.swap(up, Ordering::SeqCst) != up {
            let _ = self.wake.write(1);
        }
    }
}

/// A virtio-net device over a frame fd.
pub struct Net {
    mac: [u8; 6],
    frames: OwnedFd,
    link: Arc<NetLink>,
    counters: Arc<NetCounters>,
    /// A received frame waiting for a guest buffer (at most one: the rest stay in the kernel).
    pending: Option<Vec<u8>>,
    /// Receive scratch buffer ([`MAX_FRAME`] + 1 bytes, to see oversized frames).
    rx_buf: Vec<u8>,
    /// Transmit gather buffer (header and frame).
    tx_buf: Vec<u8>,
    /// The configuration changed (link) and the driver has not been told.
    config_changed: bool,
    queue_sizes: [u16; 2],
}

impl Net {
    /// A device with `mac` whose frames go through `frames` (made non-blocking here).
    pub fn new(
        mac: [u8; 6],
        frames: OwnedFd,
        link: Arc<NetLink>,
        counters: Arc<NetCounters>,
    ) -> std::io::Result<Net> {
        let fd = frames.as_raw_fd();
        // SAFETY: fcntl on a descriptor we own; no memory is passed.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        // SAFETY: as above.
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Net {
            mac,
            frames,
            link,
            counters,
            pending: None,
            rx_buf: vec![0; MAX_FRAME + 1],
            tx_buf: Vec::with_capacity(2048),
            config_changed: false,
            queue_sizes: [QUEUE_SIZE; 2],
        })
    }

    /// Reads one frame from the backend; `None` when there is none now (or the fd failed).
    fn read_frame(&mut self) -> Option<Vec<u8>> {
        loop {
            // SAFETY: reads at most rx_buf.len() bytes into our own buffer.
            let n = unsafe {
                libc::read(
                    self.frames.as_raw_fd(),
                    self.rx_buf.as_mut_ptr().cast(),
                    self.rx_buf.len(),
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                if e.kind() != std::io::ErrorKind::WouldBlock {
                    tracing::debug!("virtio-net: backend read failed: {e}");
                }
                return None;
            }
            let n = n as usize;
            if n == 0 {
                // The peer closed (or an empty datagram): nothing to deliver.
                return None;
            }
            if n > MAX_FRAME || !self.link.is_up() {
                bump(&self.counters.rx_dropped);
                continue;
            }
            return Some(self.rx_buf[..n].to_vec());
        }
    }

    /// Moves frames from the backend into receive buffers until either runs out.
    fn receive(&mut self, queue: &mut Queue, mem: &GuestMemoryMmap) -> bool {
        let mut used = false;
        loop {
            let frame = match self.pending.take() {
                Some(f) => f,
                None => match self.read_frame() {
                    Some(f) => f,
                    None => break,
                },
            };
            if !queue.ready() {
                // The driver has no receive queue: the frame is lost (the link is "down").
                bump(&self.counters.rx_dropped);
                continue;
            }
            let Some(chain) = queue.pop_descriptor_chain(mem) else {
                self.pending = Some(frame);
                break;
            };
            let head = chain.head_index();
            let mut segs = Vec::new();
            let mut capacity = 0u64;
            let mut well_formed = true;
            for d in chain {
                if !d.is_write_only() {
                    well_formed = false;
                    break;
                }
                capacity += u64::from(d.len());
                segs.push((d.addr(), d.len() as usize));
            }
            if !well_formed {
                bump(&self.counters.bad_chains);
                self.pending = Some(frame);
                if queue.add_used(mem, head, 0).is_err() {
                    break;
                }
                used = true;
                continue;
            }
            let total = HDR_LEN + frame.len();
            if capacity < total as u64 {
                // The guest's buffers are smaller than the frame: drop the frame, keep the
                // buffer for the next one.
                bump(&self.counters.rx_dropped);
                queue.go_to_previous_position();
                continue;
            }
            // num_buffers = 1 (bytes 10..12); no offloads: the rest is zero.
            let mut hdr = [0u8; HDR_LEN];
            hdr[10] = 1;
            let ok = scatter(mem, &segs, &hdr, &frame);
            let len = if ok {
                bump(&self.counters.rx_frames);
                total as u32
            } else {
                bump(&self.counters.bad_chains);
                0
            };
            if queue.add_used(mem, head, len).is_err() {
                break;
            }
            used = true;
        }
        used && queue.needs_notification(mem).unwrap_or(true)
    }

    /// Sends every available transmit chain to the backend.
    fn transmit(&mut self, queue: &mut Queue, mem: &GuestMemoryMmap) -> bool {
        let mut used = false;
        while let Some(chain) = queue.pop_descriptor_chain(mem) {
            let head = chain.head_index();
            self.tx_buf.clear();
            let mut ok = true;
            for d in chain {
                let len = d.len() as usize;
                if d.is_write_only() {
                    ok = false;
                    bump(&self.counters.bad_chains);
                    break;
                }
                if self.tx_buf.len() + len > MAX_CHAIN {
                    ok = false;
                    bump(&self.counters.tx_dropped);
                    break;
                }
                let at = self.tx_buf.len();
                self.tx_buf.resize(at + len, 0);
                if mem
                    .read_slice(&mut self.tx_buf[at..], GuestAddress(d.addr().0))
                    .is_err()
                {
                    ok = false;
                    bump(&self.counters.bad_chains);
                    break;
                }
            }
            if ok {
                self.send_frame();
            }
            if queue.add_used(mem, head, 0).is_err() {
                break;
            }
            used = true;
        }
        used && queue.needs_notification(mem).unwrap_or(true)
    }

    /// Sends the frame in `tx_buf` (after its header) to the backend, or drops and counts it.
    fn send_frame(&mut self) {
        if self.tx_buf.len() < HDR_LEN + MIN_FRAME || !self.link.is_up() {
            bump(&self.counters.tx_dropped);
            return;
        }
        let frame = &self.tx_buf[HDR_LEN..];
        loop {
            // SAFETY: writes from our own buffer of frame.len() bytes.
            let n =
                unsafe { libc::write(self.frames.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            if n as usize == frame.len() {
                bump(&self.counters.tx_frames);
            } else {
                // Backend full (EAGAIN) or gone: the guest's TCP retransmits.
                bump(&self.counters.tx_dropped);
            }
            return;
        }
    }
}

/// Writes `hdr` then `frame` across the guest buffers `segs` (which hold enough bytes).
fn scatter(
    mem: &GuestMemoryMmap,
    segs: &[(GuestAddress, usize)],
    hdr: &[u8],
    frame: &[u8],
) -> bool {
    let mut src = [hdr, frame];
    let mut part = 0;
    for &(addr, len) in segs {
        let mut at = 0usize;
        while at < len && part < src.len() {
            let piece = &src[part];
            let n = piece.len().min(len - at);
            if n > 0 {
                let Some(a) = addr.0.checked_add(at as u64) else {
                    return false;
                };
                if mem.write_slice(&piece[..n], GuestAddress(a)).is_err() {
                    return false;
                }
            }
            at += n;
            src[part] = &piece[n..];
            if src[part].is_empty() {
                part += 1;
            }
        }
        if part == src.len() {
            return true;
        }
    }
    part == src.len()
}

impl VirtioDevice for Net {
    fn device_id(&self) -> u32 {
        VIRTIO_ID_NET
    }

    fn features(&self) -> u64 {
        (1 << VIRTIO_NET_F_MAC) | (1 << VIRTIO_NET_F_STATUS)
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &self.queue_sizes
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        // struct virtio_net_config: mac[6], status (le16); the rest needs features not offered.
        let status = if self.link.is_up() {
            VIRTIO_NET_S_LINK_UP as u16
        } else {
            0
        };
        let mut cfg = [0u8; 8];
        cfg[..6].copy_from_slice(&self.mac);
        cfg[6..].copy_from_slice(&status.to_le_bytes());
        for (i, b) in data.iter_mut().enumerate() {
            *b = usize::try_from(offset)
                .ok()
                .and_then(|o| o.checked_add(i))
                .and_then(|o| cfg.get(o))
                .copied()
                .unwrap_or(0);
        }
    }

    fn reset(&mut self) {
        self.pending = None;
    }

    fn process_queue(&mut self, index: usize, queue: &mut Queue, mem: &GuestMemoryMmap) -> bool {
        match index {
            // New receive buffers: deliver what waits.
            RX => self.receive(queue, mem),
            TX => self.transmit(queue, mem),
            _ => false,
        }
    }

    fn event_fds(&self) -> Vec<(RawFd, u32)> {
        vec![
            (self.frames.as_raw_fd(), TOKEN_BACKEND),
            (self.link.wake.as_raw_fd(), TOKEN_LINK),
        ]
    }

    fn handle_event(&mut self, token: u32, queues: &mut [Queue], mem: &GuestMemoryMmap) -> bool {
        match token {
            TOKEN_BACKEND => match queues.get_mut(RX) {
                Some(q) => self.receive(q, mem),
                None => false,
            },
            TOKEN_LINK => {
                let _ = self.link.wake.read();
                self.config_changed = true;
                false
            }
            _ => false,
        }
    }

    fn take_config_change(&mut self) -> bool {
        std::mem::take(&mut self.config_changed)
    }
}

#[cfg(test)]
#[path = "net_tests.rs"]
mod tests;
