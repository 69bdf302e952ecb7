//! Virtio devices over the virtio-mmio transport (virtio 1.x, MMIO register layout version 2),
//! described to the guest in the DSDT as `LNRO0005` devices, which Linux's `virtio_mmio` driver
//! binds. See docs/virtio-blk.md.

pub mod block;
pub mod fuzz;
pub mod mmio;
pub mod worker;

use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

/// `VIRTIO_F_VERSION_1`: the transport offers it for every device (modern interface only).
pub const F_VERSION_1: u64 = 1 << 32;
/// `VIRTIO_F_RING_INDIRECT_DESC`: virtio-queue's chain iterator follows indirect tables.
pub const F_RING_INDIRECT_DESC: u64 = 1 << 28;

/// What a device behind the transport provides.
pub trait VirtioDevice: Send {
    /// The virtio device ID (2 = block).
    fn device_id(&self) -> u32;
    /// Device-specific feature bits (the transport adds `VERSION_1` and `RING_INDIRECT_DESC`).
    fn features(&self) -> u64;
    /// Maximum size of each queue; the number of entries is the number of queues.
    fn queue_max_sizes(&self) -> &[u16];
    /// Reads the device configuration space at `offset` (any width; out of range reads zero).
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Processes every available buffer of queue `index`. Returns true if used buffers were
    /// added and the driver asked to be interrupted for them.
    fn process_queue(&mut self, index: usize, queue: &mut Queue, mem: &GuestMemoryMmap) -> bool;
}
