//! Virtio devices over the virtio-mmio transport (virtio 1.x, MMIO register layout version 2),
//! described to the guest in the DSDT as `LNRO0005` devices, which Linux's `virtio_mmio` driver
//! binds. See docs/virtio-blk.md.
//!
//! The split, so that a new device is one file plus one registration in vm.rs:
//! - [`VirtioDevice`] (a device file such as `block.rs`): what the device offers (id, features,
//!   queue sizes, config space) and what it does with a queue's buffers or with an event on a
//!   backend fd of its own (a tap, a socket);
//! - [`mmio::VirtioMmio`]: the registers, the status machine, the queues (it owns them and lends
//!   them to the device), the interrupt, and when the device is activated and reset;
//! - [`worker::IoWorker`]: one thread per device waiting on the queues' ioeventfds and the
//!   device's own fds at once (epoll), so the vCPUs never do device I/O.
//!
//! Constants (feature bits, status bits, register offsets, request types) come from the
//! `virtio-bindings` crate, generated from Linux's uapi headers.

pub mod block;
pub mod fuzz;
pub mod mmio;
pub mod net;
pub mod worker;

use std::os::fd::RawFd;

use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ring::VIRTIO_RING_F_INDIRECT_DESC;
use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

/// Features the transport offers for every device: `VIRTIO_F_VERSION_1` (modern interface
/// only) and `VIRTIO_RING_F_INDIRECT_DESC` (virtio-queue's chain iterator follows indirect
/// tables).
pub const TRANSPORT_FEATURES: u64 = (1 << VIRTIO_F_VERSION_1) | (1 << VIRTIO_RING_F_INDIRECT_DESC);

/// What a device behind the transport provides.
///
/// Lifecycle (driven by the transport, all calls under the device's lock): `activate` once when
/// the driver sets DRIVER_OK with features the transport accepted; then `process_queue` for
/// queue notifies and `handle_event` for the device's own fds, only while the device is live
/// (DRIVER_OK, neither FAILED nor DEVICE_NEEDS_RESET); `reset` once after an `activate`, when
/// the driver writes status 0 or the transport gives up on the device (DEVICE_NEEDS_RESET),
/// after which `activate` may come again.
pub trait VirtioDevice: Send {
    /// The virtio device ID (`virtio_bindings::virtio_ids::VIRTIO_ID_*`).
    fn device_id(&self) -> u32;
    /// Device-specific feature bits (the transport adds [`TRANSPORT_FEATURES`]).
    fn features(&self) -> u64;
    /// Maximum size of each queue; the number of entries is the number of queues.
    fn queue_max_sizes(&self) -> &[u16];
    /// Reads the device configuration space at `offset` (any width; out of range reads zero).
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// The driver set DRIVER_OK having accepted `features` (a subset of what was offered, with
    /// `VIRTIO_F_VERSION_1`). An error sets DEVICE_NEEDS_RESET: the device is not used until
    /// the driver resets it.
    fn activate(&mut self, _features: u64) -> std::io::Result<()> {
        Ok(())
    }
    /// Undoes `activate`: drop per-session state (in-flight work, negotiated features). The
    /// queues are reset by the transport.
    fn reset(&mut self) {}
    /// Processes every available buffer of queue `index`. Returns true if used buffers were
    /// added and the driver asked to be interrupted for them.
    fn process_queue(&mut self, index: usize, queue: &mut Queue, mem: &GuestMemoryMmap) -> bool;
    /// The device's own event sources besides the queue notifies (a tap or socket fd, a timer),
    /// each with a token for [`handle_event`](Self::handle_event). Asked once, when the I/O
    /// thread starts: the fds stay owned by the device and open as long as it (a closed fd
    /// just leaves the watch list). They are watched for readability edge-triggered
    /// (`EPOLLIN | EPOLLET`, as Firecracker watches a tap), so an fd left readable while the
    /// guest has no buffers for its data does not spin the thread; the device picks the rest
    /// up at the next event or queue notify.
    fn event_fds(&self) -> Vec<(RawFd, u32)> {
        Vec::new()
    }
    /// Handles the event of `token` with every queue at hand (`queues[i]` is queue i; the
    /// device checks `ready()` on those it uses). Returns true if the guest must be
    /// interrupted for used buffers. Not called while the device is not live: the fd's data
    /// then waits (edge-triggered, the next call comes with the next readiness change).
    fn handle_event(&mut self, _token: u32, _queues: &mut [Queue], _mem: &GuestMemoryMmap) -> bool {
        false
    }
    /// Whether the configuration space changed since the last call (a network link going up
    /// or down). Asked after each `process_queue` and `handle_event`; true makes the transport
    /// bump ConfigGeneration and raise a configuration interrupt.
    fn take_config_change(&mut self) -> bool {
        false
    }
}
