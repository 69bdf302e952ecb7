//! virtio-net against a fake backend: the other end of a `SOCK_SEQPACKET` socket pair.

use super::*;
use crate::devices::virtio::fuzz::{DATA, Driver, QSIZE, rings};
use proptest::prelude::*;
use std::os::fd::FromRawFd;
use virtio_bindings::virtio_config::{VIRTIO_CONFIG_S_NEEDS_RESET, VIRTIO_F_VERSION_1};
use virtio_bindings::virtio_mmio::{VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_VRING};

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const FEATURES: u64 =
    (1 << VIRTIO_F_VERSION_1) | (1 << VIRTIO_NET_F_MAC) | (1 << VIRTIO_NET_F_STATUS);

/// A connected, non-blocking `SOCK_SEQPACKET` pair.
pub fn frame_pair() -> (OwnedFd, OwnedFd) {
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
    assert_eq!(r, 0, "socketpair");
    // SAFETY: both descriptors are fresh and owned by nothing else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn send(fd: &OwnedFd, frame: &[u8]) -> bool {
    // SAFETY: writes from a live slice.
    let n = unsafe { libc::write(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
    n == frame.len() as isize
}

fn recv(fd: &OwnedFd) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 70000];
    // SAFETY: reads into a live buffer of its length.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    (n >= 0).then(|| {
        buf.truncate(n as usize);
        buf
    })
}

struct Rig {
    d: Driver,
    peer: OwnedFd,
    link: Arc<NetLink>,
    counters: Arc<NetCounters>,
    avail: [u16; 2],
}

impl Rig {
    fn new() -> Rig {
        let (ours, peer) = frame_pair();
        let link = NetLink::new().unwrap();
        let counters = Arc::new(NetCounters::default());
        let net = Net::new(MAC, ours, link.clone(), counters.clone()).unwrap();
        let mut d = Driver::with_device(Box::new(net));
        let st = d.init_queues(FEATURES, 2);
        assert_eq!(st & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
        Rig {
            d,
            peer,
            link,
            counters,
            avail: [0; 2],
        }
    }

    /// Makes a chain available on queue `q` using descriptors from `first` on, and notifies.
    fn chain(&mut self, q: u16, first: u16, descs: &[(u64, u32, bool)]) {
        let (desc, avail, _) = rings(q);
        for (i, &(addr, len, write)) in descs.iter().enumerate() {
            let idx = first + i as u16;
            let next = i + 1 < descs.len();
            let flags: u16 = if next { 1 } else { 0 } | if write { 2 } else { 0 };
            let at = desc + 16 * u64::from(idx);
            let m = &self.d.mem;
            m.write_obj(addr, GuestAddress(at)).unwrap();
            m.write_obj(len, GuestAddress(at + 8)).unwrap();
            m.write_obj(flags, GuestAddress(at + 12)).unwrap();
            m.write_obj(idx + 1, GuestAddress(at + 14)).unwrap();
        }
        let a = &mut self.avail[q as usize];
        let slot = avail + 4 + 2 * u64::from(*a % QSIZE);
        self.d.mem.write_obj(first, GuestAddress(slot)).unwrap();
        *a = a.wrapping_add(1);
        self.d.mem.write_obj(*a, GuestAddress(avail + 2)).unwrap();
        self.d.w(0x50, u32::from(q));
    }

    /// The used ring of queue `q`: (index, newest id, newest len).
    fn used(&self, q: u16) -> (u16, u32, u32) {
        let (_, _, used) = rings(q);
        let m = &self.d.mem;
        let idx: u16 = m.read_obj(GuestAddress(used + 2)).unwrap();
        let e = used + 4 + 8 * u64::from(idx.wrapping_sub(1) % QSIZE);
        (
            idx,
            m.read_obj(GuestAddress(e)).unwrap(),
            m.read_obj(GuestAddress(e + 4)).unwrap(),
        )
    }

    fn backend_event(&mut self) {
        self.d.dev.device_event(TOKEN_BACKEND);
    }

    fn count(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect()
}

#[test]
fn config_space_has_the_mac_and_link_status_and_set_link_interrupts() {
    let mut r = Rig::new();
    let mut cfg = [0u8; 8];
    for (i, b) in cfg.iter_mut().enumerate() {
        let mut one = [0u8];
        crate::bus::BusDevice::read(&mut r.d.dev, 0x100 + i as u64, &mut one);
        *b = one[0];
    }
    assert_eq!(&cfg[..6], &MAC);
    assert_eq!(u16::from_le_bytes([cfg[6], cfg[7]]), 1, "link up");
    let gen0 = r.d.r(0x0fc);
    r.link.set(false);
    r.d.dev.device_event(TOKEN_LINK);
    assert_eq!(
        r.d.r(0x060) & VIRTIO_MMIO_INT_CONFIG,
        VIRTIO_MMIO_INT_CONFIG
    );
    assert_ne!(r.d.r(0x0fc), gen0, "ConfigGeneration moved");
    assert_eq!(r.d.r(0x104) >> 16, 0, "link down in config space");
    // Down: transmitted frames are dropped, received ones too.
    let f = frame(60, 1);
    let mut buf = vec![0u8; HDR_LEN];
    buf.extend(&f);
    r.d.mem.write_slice(&buf, GuestAddress(DATA)).unwrap();
    r.chain(1, 0, &[(DATA, buf.len() as u32, false)]);
    assert!(recv(&r.peer).is_none());
    assert_eq!(Rig::count(&r.counters.tx_dropped), 1);
    r.link.set(true);
    r.chain(1, 1, &[(DATA, buf.len() as u32, false)]);
    assert_eq!(recv(&r.peer).unwrap(), f);
}

#[test]
fn transmit_strips_the_header_and_gathers_descriptors() {
    let mut r = Rig::new();
    let f = frame(1514, 3);
    let mut buf = vec![0u8; HDR_LEN];
    buf.extend(&f);
    r.d.mem.write_slice(&buf, GuestAddress(DATA)).unwrap();
    // Header alone, then the frame in two pieces.
    r.chain(
        1,
        0,
        &[
            (DATA, HDR_LEN as u32, false),
            (DATA + HDR_LEN as u64, 100, false),
            (DATA + HDR_LEN as u64 + 100, 1414, false),
        ],
    );
    assert_eq!(recv(&r.peer).unwrap(), f);
    assert_eq!(r.used(1), (1, 0, 0));
    assert_eq!(r.d.r(0x060) & VIRTIO_MMIO_INT_VRING, VIRTIO_MMIO_INT_VRING);
    assert_eq!(Rig::count(&r.counters.tx_frames), 1);
}

#[test]
fn hostile_transmit_chains_are_dropped_and_counted() {
    let mut r = Rig::new();
    // A writable descriptor on the transmit queue.
    r.chain(1, 0, &[(DATA, 64, true)]);
    assert_eq!(Rig::count(&r.counters.bad_chains), 1);
    // Too short for an Ethernet header.
    r.chain(1, 1, &[(DATA, HDR_LEN as u32 + 4, false)]);
    // Larger than MAX_CHAIN (4 GiB descriptors allocate nothing).
    r.chain(1, 2, &[(DATA, u32::MAX, false)]);
    r.chain(
        1,
        3,
        &[
            (DATA, 0x8000, false),
            (DATA, 0x8000, false),
            (DATA, 0x8000, false),
        ],
    );
    // Outside guest memory.
    r.chain(1, 6, &[(1 << 40, 100, false)]);
    assert_eq!(Rig::count(&r.counters.tx_dropped), 3);
    assert_eq!(Rig::count(&r.counters.bad_chains), 2);
    assert!(recv(&r.peer).is_none(), "nothing reached the backend");
    assert_eq!(r.used(1).0, 5, "every chain was returned");
    assert_eq!(r.d.r(0x070) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
}

#[test]
fn receive_fills_a_buffer_with_header_and_frame() {
    let mut r = Rig::new();
    let f = frame(342, 9);
    assert!(send(&r.peer, &f));
    // No buffer yet: the frame waits.
    r.backend_event();
    assert_eq!(r.used(0).0, 0);
    // Header and frame split over two buffers, as a driver may post them.
    r.chain(0, 0, &[(DATA, 100, true), (DATA + 0x1000, 1600, true)]);
    let (idx, id, len) = r.used(0);
    assert_eq!((idx, id, len), (1, 0, (HDR_LEN + f.len()) as u32));
    let mut got = vec![0u8; HDR_LEN + f.len()];
    r.d.mem
        .read_slice(&mut got[..100], GuestAddress(DATA))
        .unwrap();
    r.d.mem
        .read_slice(&mut got[100..], GuestAddress(DATA + 0x1000))
        .unwrap();
    assert_eq!(&got[..HDR_LEN], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    assert_eq!(&got[HDR_LEN..], &f[..]);
    // With a buffer already posted, the backend event delivers at once.
    r.chain(0, 2, &[(DATA + 0x2000, 1600, true)]);
    let g = frame(60, 2);
    assert!(send(&r.peer, &g));
    r.backend_event();
    assert_eq!(r.used(0), (2, 2, (HDR_LEN + 60) as u32));
    assert_eq!(Rig::count(&r.counters.rx_frames), 2);
}

#[test]
fn too_small_buffers_drop_the_frame_and_keep_the_buffer() {
    let mut r = Rig::new();
    r.chain(0, 0, &[(DATA, 200, true)]);
    assert!(send(&r.peer, &frame(1000, 1)));
    assert!(send(&r.peer, &frame(100, 2)));
    r.backend_event();
    assert_eq!(Rig::count(&r.counters.rx_dropped), 1);
    assert_eq!(
        r.used(0),
        (1, 0, (HDR_LEN + 100) as u32),
        "the same buffer took the next"
    );
    // A read-only buffer on the receive queue is returned empty; the frame waits.
    assert!(send(&r.peer, &frame(100, 3)));
    r.chain(0, 1, &[(DATA, 200, false)]);
    assert_eq!(Rig::count(&r.counters.bad_chains), 1);
    assert_eq!(r.used(0), (2, 1, 0));
    r.chain(0, 2, &[(DATA, 200, true)]);
    assert_eq!(r.used(0), (3, 2, (HDR_LEN + 100) as u32));
}

#[test]
fn a_guest_that_never_reads_costs_bounded_memory() {
    let mut r = Rig::new();
    // The backend can queue only what the socket holds; the rest fails at the sender, which
    // drops (slirp's send_packet counts those).
    let mut sent = 0;
    for i in 0..100_000 {
        if !send(&r.peer, &frame(1500, i as u8)) {
            break;
        }
        sent += 1;
        r.backend_event();
    }
    assert!(
        sent < 100_000,
        "the kernel bounded the queue at {sent} frames"
    );
    assert!(r.d.r(0x070) & VIRTIO_CONFIG_S_NEEDS_RESET == 0);
    // The guest finally posts a buffer: the oldest frame arrives.
    r.chain(0, 0, &[(DATA, 1600, true)]);
    let mut got = vec![0u8; 1500];
    r.d.mem
        .read_slice(&mut got, GuestAddress(DATA + HDR_LEN as u64))
        .unwrap();
    assert_eq!(got, frame(1500, 0));
}

#[test]
fn reset_drops_the_waiting_frame() {
    let mut r = Rig::new();
    assert!(send(&r.peer, &frame(100, 1)));
    r.backend_event();
    r.d.w(0x070, 0);
    r.d.init_queues(FEATURES, 2);
    r.avail = [0; 2];
    assert!(send(&r.peer, &frame(80, 2)));
    r.chain(0, 0, &[(DATA, 1600, true)]);
    assert_eq!(r.used(0).2, (HDR_LEN + 80) as u32, "the old frame is gone");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_chains_never_panic_and_return_every_chain(
        descs in proptest::collection::vec((0u64..0x3_0000, 0u32..0x2_0000, any::<bool>()), 1..6),
        q in 0u16..2,
        frames in proptest::collection::vec(0usize..3000, 0..4),
    ) {
        let mut r = Rig::new();
        for len in &frames {
            send(&r.peer, &frame(*len, 5));
        }
        r.chain(q, 0, &descs);
        r.backend_event();
        prop_assert_eq!(r.d.r(0x070) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
        let used = r.used(q).0;
        prop_assert!(used <= 1);
        if q == 1 {
            prop_assert_eq!(used, 1, "a transmit chain is always returned");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn fuzz_entry_survives_hostile_traffic_after_a_proper_setup(
        ops in proptest::collection::vec(any::<[u8; 8]>(), 0..120),
        first in any::<u8>(),
    ) {
        let mut data = vec![first | 1];
        for op in ops { data.extend_from_slice(&op); }
        crate::devices::virtio::fuzz::run_net(&data);
    }
}
