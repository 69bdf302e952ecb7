//! A minimal virtio-mmio driver for tests and the `virtio_blk` fuzz target: it plays the guest
//! against a virtio-blk device over an in-memory image (or, in tests, any device), through the
//! same register writes and ring layout a Linux guest uses, or feeds arbitrary bytes into
//! registers and rings. Tests also get [`TestDevice`], a device that records what the transport
//! and the I/O thread ask of it.

use std::fs::File;
use std::os::unix::io::FromRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_WRITE_ZEROES,
};
use virtio_bindings::virtio_config::{
    VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_DRIVER_OK,
    VIRTIO_CONFIG_S_FEATURES_OK,
};
use vm_config::{DriveCache, DriveConfig};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::block::Block;
use super::mmio::VirtioMmio;
use super::{TRANSPORT_FEATURES, VirtioDevice};
use crate::bus::BusDevice;
use crate::memory::DmaMemory;

/// Guest memory of the test driver: rings at fixed addresses (queue 0's; queue n's are
/// `RING_STRIDE * n` above them), data buffers above them.
pub const MEM_SIZE: u64 = 0x2_0000;
pub const DESC: u64 = 0x1000;
pub const AVAIL: u64 = 0x2000;
pub const USED: u64 = 0x3000;
pub const DATA: u64 = 0x4000;
/// Queue size the driver configures.
pub const QSIZE: u16 = 16;
/// Distance between the rings of consecutive queues (room for 4 queues below DATA).
pub const RING_STRIDE: u64 = 0x400;

/// Descriptor table, available ring and used ring of queue `index`.
pub fn rings(index: u16) -> (u64, u64, u64) {
    let o = RING_STRIDE * u64::from(index);
    (DESC + o, AVAIL + o, USED + o)
}

/// Counts interrupts.
pub struct Counter(pub Arc<AtomicU32>);

impl vm_superio::Trigger for Counter {
    type E = std::io::Error;
    fn trigger(&self) -> std::io::Result<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// An anonymous in-memory image of `size` bytes (memfd).
pub fn memfd_image(size: u64) -> File {
    // SAFETY: memfd_create with a NUL-terminated name; the result is checked before use.
    let fd = unsafe { libc::memfd_create(c"pmvm-test-image".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create failed");
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    let f = unsafe { File::from_raw_fd(fd) };
    f.set_len(size).expect("memfd set_len");
    f
}

/// The driver side.
pub struct Driver {
    pub dev: VirtioMmio,
    pub mem: GuestMemoryMmap,
    pub irqs: Arc<AtomicU32>,
    avail_idx: u16,
}

impl Driver {
    /// A driver for `block`.
    pub fn new(block: Block) -> Driver {
        Self::with_device(Box::new(block))
    }

    /// A driver for any device.
    pub fn with_device(device: Box<dyn VirtioDevice>) -> Driver {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM_SIZE as usize)])
            .expect("test guest memory");
        let irqs = Arc::new(AtomicU32::new(0));
        let dev = VirtioMmio::new(
            device,
            DmaMemory::from_mem(mem.clone()),
            Box::new(Counter(irqs.clone())),
        );
        Driver {
            dev,
            mem,
            irqs,
            avail_idx: 0,
        }
    }

    /// A driver for a fresh device over a memfd image of `size` bytes.
    pub fn with_image(size: u64, readonly: bool, guard_sector0: bool) -> (Driver, File) {
        Self::with_config(size, readonly, guard_sector0, false)
    }

    /// The same, with `discard=unmap` if `discard`.
    pub fn with_config(
        size: u64,
        readonly: bool,
        guard_sector0: bool,
        discard: bool,
    ) -> (Driver, File) {
        let f = memfd_image(size);
        let dev_file = f.try_clone().expect("dup memfd");
        let cfg = DriveConfig {
            id: "virtio0".into(),
            file: "/memfd".into(),
            index: 0,
            readonly,
            cache: DriveCache::Writeback,
            format_given: !guard_sector0,
            cdrom: false,
            if_ide: false,
            discard,
            bootindex: None,
        };
        (Driver::new(Block::from_file(dev_file, size, &cfg)), f)
    }

    pub fn w(&mut self, off: u64, v: u32) {
        self.dev.write(off, &v.to_le_bytes());
    }

    pub fn r(&mut self, off: u64) -> u32 {
        let mut b = [0u8; 4];
        self.dev.read(off, &mut b);
        u32::from_le_bytes(b)
    }

    /// The Linux driver's handshake: reset, ACK, DRIVER, features, FEATURES_OK, queue 0, DRIVER_OK.
    /// Returns the status read back.
    pub fn init(&mut self, features: u64) -> u32 {
        self.init_queues(features, 1)
    }

    /// The same handshake, setting up queues `0..queues` (rings from [`rings`]).
    pub fn init_queues(&mut self, features: u64, queues: u16) -> u32 {
        let (ack, drv, feat_ok, drv_ok) = (
            VIRTIO_CONFIG_S_ACKNOWLEDGE,
            VIRTIO_CONFIG_S_DRIVER,
            VIRTIO_CONFIG_S_FEATURES_OK,
            VIRTIO_CONFIG_S_DRIVER_OK,
        );
        self.w(0x70, 0);
        self.w(0x70, ack);
        self.w(0x70, ack | drv);
        self.w(0x24, 0);
        self.w(0x20, features as u32);
        self.w(0x24, 1);
        self.w(0x20, (features >> 32) as u32);
        self.w(0x70, ack | drv | feat_ok);
        for q in 0..queues {
            let (desc, avail, used) = rings(q);
            self.w(0x30, u32::from(q));
            self.w(0x38, u32::from(QSIZE));
            for (reg, addr) in [(0x80, desc), (0x90, avail), (0xa0, used)] {
                self.w(reg, addr as u32);
                self.w(reg + 4, (addr >> 32) as u32);
            }
            self.w(0x44, 1);
        }
        self.w(0x70, ack | drv | feat_ok | drv_ok);
        self.avail_idx = 0;
        self.r(0x70)
    }

    /// Puts one chain (address, length, device-writable) in descriptors 0.. and notifies.
    pub fn submit(&mut self, descs: &[(u64, u32, bool)]) {
        self.queue_chain(descs);
        self.w(0x50, 0);
    }

    /// Puts one chain in descriptors 0.. and makes it available, without notifying.
    pub fn queue_chain(&mut self, descs: &[(u64, u32, bool)]) {
        for (i, &(addr, len, write)) in descs.iter().enumerate() {
            let next = i + 1 < descs.len();
            let flags: u16 = if next { 1 } else { 0 } | if write { 2 } else { 0 };
            let d = DESC + 16 * i as u64;
            self.mem.write_obj(addr, GuestAddress(d)).unwrap();
            self.mem.write_obj(len, GuestAddress(d + 8)).unwrap();
            self.mem.write_obj(flags, GuestAddress(d + 12)).unwrap();
            self.mem
                .write_obj((i + 1) as u16, GuestAddress(d + 14))
                .unwrap();
        }
        let slot = AVAIL + 4 + 2 * u64::from(self.avail_idx % QSIZE);
        self.mem.write_obj(0u16, GuestAddress(slot)).unwrap();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.mem
            .write_obj(self.avail_idx, GuestAddress(AVAIL + 2))
            .unwrap();
    }

    /// The used ring's index and its newest element (id, len).
    pub fn used(&self) -> (u16, u32, u32) {
        let idx: u16 = self.mem.read_obj(GuestAddress(USED + 2)).unwrap();
        let e = USED + 4 + 8 * u64::from(idx.wrapping_sub(1) % QSIZE);
        (
            idx,
            self.mem.read_obj(GuestAddress(e)).unwrap(),
            self.mem.read_obj(GuestAddress(e + 4)).unwrap(),
        )
    }

    /// A request: header at DATA, data buffers, status byte at DATA + 0x100. Returns the status.
    pub fn request(&mut self, kind: u32, sector: u64, data: &[(u64, u32)], write_data: bool) -> u8 {
        let mut hdr = [0u8; 16];
        hdr[0..4].copy_from_slice(&kind.to_le_bytes());
        hdr[8..16].copy_from_slice(&sector.to_le_bytes());
        self.mem.write_slice(&hdr, GuestAddress(DATA)).unwrap();
        self.mem
            .write_obj(0xffu8, GuestAddress(DATA + 0x100))
            .unwrap();
        let mut chain = vec![(DATA, 16, false)];
        chain.extend(data.iter().map(|&(a, l)| (a, l, write_data)));
        chain.push((DATA + 0x100, 1, true));
        self.submit(&chain);
        self.mem.read_obj(GuestAddress(DATA + 0x100)).unwrap()
    }
}

/// Fuzz entry: the first byte picks whether the queue is set up properly first; then each
/// 8-byte record is a register write or read (`op`, offset, value) or a 32-bit store into the
/// rings and buffers, so both the register machine and the request parser see hostile input.
pub fn run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let (mut d, _img) =
        Driver::with_config(64 << 10, first & 2 != 0, first & 4 != 0, first & 8 != 0);
    if first & 1 != 0 {
        d.init(
            TRANSPORT_FEATURES
                | (1 << VIRTIO_BLK_F_FLUSH)
                | (1 << VIRTIO_BLK_F_SEG_MAX)
                | if first & 8 != 0 {
                    1 << VIRTIO_BLK_F_DISCARD
                } else {
                    0
                }
                | if first & 2 == 0 {
                    1 << VIRTIO_BLK_F_WRITE_ZEROES
                } else {
                    0
                },
        );
    }
    for rec in rest.chunks_exact(8) {
        transport_op(&mut d, rec[0] % 4, rec);
    }
}

/// One 8-byte fuzz record as a guest driver's action on the transport: kind 0 writes a
/// register, 1 reads one (any width), 2 writes guest memory (rings, descriptors, data), 3
/// notifies queue 0 or 1. Returns the record's value for device-specific kinds.
fn transport_op(d: &mut Driver, kind: u8, rec: &[u8]) -> u32 {
    let off = u64::from(u16::from_le_bytes([rec[1], rec[2]]));
    let v = u32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]]);
    match kind {
        0 => d.w(off & 0x1ff, v),
        1 => {
            let mut b = vec![0u8; 1 << (rec[3] % 4)];
            d.dev.read(off & 0x1ff, &mut b);
        }
        2 => {
            let _ = d.mem.write_obj(v, GuestAddress((off << 2) % MEM_SIZE));
        }
        3 => d.w(0x50, v % 2),
        _ => {}
    }
    v
}

/// Fuzz entry for virtio-net (the `virtio_net` target): as [`run`], over a virtio-net device
/// whose backend is a socket pair; records may also inject a frame from the backend (of a
/// length taken from the record, up to 70000 bytes: oversized ones must be dropped), raise the
/// backend event, or flip the link.
pub fn run_net(data: &[u8]) {
    use super::net::{Net, NetCounters, NetLink, TOKEN_BACKEND, TOKEN_LINK};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use virtio_bindings::virtio_net::{VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS};
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
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
        return;
    }
    // SAFETY: both descriptors are fresh and owned by nothing else.
    let (ours, peer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let Ok(link) = NetLink::new() else { return };
    let counters = Arc::new(NetCounters::default());
    let Ok(net) = Net::new(
        [0x52, 0x54, 0, 0x12, 0x34, 0x56],
        ours,
        link.clone(),
        counters,
    ) else {
        return;
    };
    let mut d = Driver::with_device(Box::new(net));
    if first & 1 != 0 {
        d.init_queues(
            TRANSPORT_FEATURES | (1 << VIRTIO_NET_F_MAC) | (1 << VIRTIO_NET_F_STATUS),
            2,
        );
    }
    let frame = vec![0x5au8; 70000];
    for rec in rest.chunks_exact(8) {
        let kind = rec[0] % 7;
        let v = transport_op(&mut d, kind, rec);
        match kind {
            0..=3 => {}
            4 => {
                let len = (v as usize % frame.len()).max(1);
                // SAFETY: writes from a live buffer of at least len bytes.
                let _ = unsafe { libc::write(peer.as_raw_fd(), frame.as_ptr().cast(), len) };
                d.dev.device_event(TOKEN_BACKEND);
            }
            5 => d.dev.device_event(TOKEN_BACKEND),
            _ => {
                link.set(v & 1 != 0);
                d.dev.device_event(TOKEN_LINK);
            }
        }
    }
}

/// What the transport and the I/O thread asked of a [`TestDevice`].
#[cfg(test)]
#[derive(Default, Debug)]
pub struct TestLog {
    /// Features of each `activate`.
    pub activated: Vec<u64>,
    pub resets: u32,
    /// (queue index, that queue's descriptor table) of each `process_queue`.
    pub processed: Vec<(usize, u64)>,
    /// Tokens of each `handle_event`.
    pub events: Vec<u32>,
}

/// A device with the given queues and one event source of its own (`backend`, an eventfd
/// standing in for a tap), recording every call in a shared [`TestLog`].
#[cfg(test)]
pub struct TestDevice {
    pub backend: vmm_sys_util::eventfd::EventFd,
    /// `activate` fails (for the DEVICE_NEEDS_RESET path).
    pub fail_activate: bool,
    sizes: Vec<u16>,
    log: Arc<std::sync::Mutex<TestLog>>,
}

#[cfg(test)]
impl TestDevice {
    /// The token of `backend`.
    pub const TOKEN: u32 = 7;

    pub fn new(sizes: &[u16]) -> (TestDevice, Arc<std::sync::Mutex<TestLog>>) {
        let log = Arc::new(std::sync::Mutex::new(TestLog::default()));
        let dev = TestDevice {
            backend: vmm_sys_util::eventfd::EventFd::new(libc::EFD_NONBLOCK).expect("eventfd"),
            fail_activate: false,
            sizes: sizes.to_vec(),
            log: log.clone(),
        };
        (dev, log)
    }

    fn log(&self) -> std::sync::MutexGuard<'_, TestLog> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
impl VirtioDevice for TestDevice {
    fn device_id(&self) -> u32 {
        virtio_bindings::virtio_ids::VIRTIO_ID_NET
    }

    fn features(&self) -> u64 {
        0
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &self.sizes
    }

    fn read_config(&self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn activate(&mut self, features: u64) -> std::io::Result<()> {
        self.log().activated.push(features);
        if self.fail_activate {
            return Err(std::io::Error::other("no backend"));
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.log().resets += 1;
    }

    fn process_queue(
        &mut self,
        index: usize,
        queue: &mut virtio_queue::Queue,
        _mem: &GuestMemoryMmap,
    ) -> bool {
        use virtio_queue::QueueT;
        self.log().processed.push((index, queue.desc_table()));
        false
    }

    fn event_fds(&self) -> Vec<(std::os::fd::RawFd, u32)> {
        use std::os::fd::AsRawFd;
        vec![(self.backend.as_raw_fd(), Self::TOKEN)]
    }

    fn handle_event(
        &mut self,
        token: u32,
        queues: &mut [virtio_queue::Queue],
        _mem: &GuestMemoryMmap,
    ) -> bool {
        let _ = self.backend.read();
        self.log().events.push(token);
        // As a network device that put a received frame in its receive queue would.
        !queues.is_empty()
    }
}
