//! An I/O thread per virtio device: KVM signals an ioeventfd when the guest writes a queue's
//! index to the QueueNotify register (no exit to pmvm), and this thread processes that queue,
//! so the vCPU goes on running while the device works. The thread waits with epoll on every
//! source at once: a stop eventfd, one notify eventfd per queue, and the device's own fds (a
//! network device's tap next to its queues), as Firecracker's and Cloud Hypervisor's device
//! threads do. Stopped and joined with the VM, so a rebuilt VM (after a guest reset) finds the
//! image unlocked.

use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use super::mmio::VirtioMmio;

/// The epoll data of the stop eventfd; queue `i` is `i`, device token `t` is `DEVICE | t`.
const STOP: u64 = u64::MAX;
const DEVICE: u64 = 1 << 32;

/// The thread and its stop signal.
pub struct IoWorker {
    stop: EventFd,
    handle: Option<JoinHandle<()>>,
}

impl IoWorker {
    /// Starts a thread serving `dev`: a notify eventfd per queue and the device's own event
    /// fds. Then hands each queue's eventfd to `register(queue index, eventfd)`, which for KVM
    /// makes it an ioeventfd on QueueNotify matching that index.
    ///
    /// The thread first, then the registration: an ioeventfd nobody reads would swallow the
    /// guest's notifies. A queue whose registration fails is served on the vCPU at its MMIO
    /// exit instead (logged); if every registration fails the error is returned and the thread
    /// stopped, as nothing can reach it.
    pub fn start(
        name: String,
        dev: Arc<Mutex<VirtioMmio>>,
        mut register: impl FnMut(u32, &EventFd) -> std::io::Result<()>,
    ) -> std::io::Result<IoWorker> {
        let stop = EventFd::new(libc::EFD_NONBLOCK)?;
        let epoll = Epoll::new()?;
        let watch = |fd: i32, events: EventSet, data: u64| {
            epoll.ctl(ControlOperation::Add, fd, EpollEvent::new(events, data))
        };
        watch(stop.as_raw_fd(), EventSet::IN, STOP)?;
        let mut notifies = Vec::new();
        {
            let d = dev.lock().unwrap_or_else(|p| p.into_inner());
            for i in 0..d.queue_count() {
                let evt = EventFd::new(libc::EFD_NONBLOCK)?;
                watch(evt.as_raw_fd(), EventSet::IN, i as u64)?;
                notifies.push(evt);
            }
            for (fd, token) in d.device_event_fds() {
                let events = EventSet::IN | EventSet::EDGE_TRIGGERED;
                watch(fd, events, DEVICE | u64::from(token))?;
            }
        }
        let thread_notifies = notifies
            .iter()
            .map(EventFd::try_clone)
            .collect::<std::io::Result<Vec<_>>>()?;
        let stop_rx = stop.try_clone()?;
        let handle = std::thread::Builder::new().name(name).spawn(move || {
            crate::seccomp::enter(crate::seccomp::ThreadKind::Io);
            run(&dev, &epoll, &thread_notifies, &stop_rx)
        })?;
        let worker = IoWorker {
            stop,
            handle: Some(handle),
        };
        let mut first_err = None;
        let mut registered = 0;
        for (i, evt) in notifies.iter().enumerate() {
            match register(i as u32, evt) {
                Ok(()) => registered += 1,
                Err(e) => {
                    tracing::warn!("virtio queue {i}: no ioeventfd ({e}); vCPUs serve it");
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            // Dropping the worker stops the thread.
            Some(e) if registered == 0 => Err(e),
            _ => Ok(worker),
        }
    }
}

fn run(dev: &Mutex<VirtioMmio>, epoll: &Epoll, notifies: &[EventFd], stop: &EventFd) {
    let mut events = [EpollEvent::default(); 16];
    loop {
        let n = match epoll.wait(-1, &mut events) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::error!("virtio I/O thread: epoll_wait failed ({e}); the device stops");
                return;
            }
        };
        for ev in &events[..n] {
            let data = ev.data();
            if data == STOP {
                let _ = stop.read();
                return;
            }
            let mut d = dev.lock().unwrap_or_else(|p| p.into_inner());
            if data & DEVICE != 0 {
                d.device_event(data as u32);
            } else if let Some(evt) = notifies.get(data as usize) {
                // Several notifies since the last pass are one pass: the queue holds them all.
                let _ = evt.read();
                d.notify_queue(data as u32);
            }
        }
    }
}

impl Drop for IoWorker {
    fn drop(&mut self) {
        let _ = self.stop.write(1);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::virtio::fuzz::{DATA, Driver, TestDevice, TestLog, rings};
    use std::sync::atomic::Ordering;
    use virtio_bindings::virtio_blk::{
        VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_T_GET_ID,
    };
    use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
    use vm_memory::{Bytes, GuestAddress};

    /// Polls `f` for up to a second.
    fn eventually(mut f: impl FnMut() -> bool) -> bool {
        for _ in 0..500 {
            if f() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        false
    }

    /// A `register` that keeps a copy of each queue's eventfd, standing in for KVM.
    fn fake_kvm(kept: &mut Vec<EventFd>) -> impl FnMut(u32, &EventFd) -> std::io::Result<()> {
        move |q, evt| {
            assert_eq!(q as usize, kept.len(), "queues registered in order");
            kept.push(evt.try_clone()?);
            Ok(())
        }
    }

    #[test]
    fn notify_through_the_eventfd_processes_the_queue_and_drop_joins() {
        let (mut d, _img) = Driver::with_image(64 << 10, false, false);
        d.init((1 << VIRTIO_F_VERSION_1) | (1 << VIRTIO_BLK_F_FLUSH) | (1 << VIRTIO_BLK_F_SEG_MAX));
        // Lay out a GET_ID request without notifying through the register.
        let mut hdr = [0u8; 16];
        hdr[0] = VIRTIO_BLK_T_GET_ID as u8;
        d.mem.write_slice(&hdr, GuestAddress(DATA)).unwrap();
        d.mem.write_obj(0xffu8, GuestAddress(DATA + 0x100)).unwrap();
        d.queue_chain(&[
            (DATA, 16, false),
            (DATA + 0x1000, 20, true),
            (DATA + 0x100, 1, true),
        ]);
        let mem = d.mem.clone();
        let dev = Arc::new(Mutex::new(d.dev));
        let mut kvm = Vec::new();
        let w = IoWorker::start("test-io".into(), dev.clone(), fake_kvm(&mut kvm)).unwrap();
        assert_eq!(kvm.len(), 1, "one eventfd for the one queue");
        kvm[0].write(1).unwrap();
        let mut status = 0xffu8;
        eventually(|| {
            status = mem.read_obj(GuestAddress(DATA + 0x100)).unwrap();
            status != 0xff
        });
        assert_eq!(status, 0, "the worker answered the request");
        drop(w);
        assert_eq!(
            Arc::strong_count(&dev),
            1,
            "the thread is gone with its reference"
        );
    }

    #[test]
    fn queue_notifies_and_the_device_event_fd_are_all_served() {
        let (dev, log) = TestDevice::new(&[16, 16]);
        let backend = dev.backend.try_clone().unwrap();
        let mut d = Driver::with_device(Box::new(dev));
        d.init_queues(1 << VIRTIO_F_VERSION_1, 2);
        let irqs = d.irqs.clone();
        let dev = Arc::new(Mutex::new(d.dev));
        let mut kvm = Vec::new();
        let w = IoWorker::start("test-io".into(), dev.clone(), fake_kvm(&mut kvm)).unwrap();
        assert_eq!(kvm.len(), 2, "an eventfd per queue");
        let seen = |f: &dyn Fn(&TestLog) -> bool| eventually(|| f(&log.lock().unwrap()));

        let (q0, q1) = (rings(0).0, rings(1).0);
        kvm[1].write(1).unwrap();
        assert!(
            seen(&|l| l.processed == [(1, q1)]),
            "queue 1's notify reached queue 1"
        );
        backend.write(1).unwrap();
        assert!(seen(&|l| l.events == [TestDevice::TOKEN]), "the backend fd");
        assert!(
            eventually(|| irqs.load(Ordering::SeqCst) == 1),
            "its used buffers interrupt"
        );
        kvm[0].write(1).unwrap();
        assert!(
            seen(&|l| l.processed == [(1, q1), (0, q0)]),
            "queue 0's notify reached queue 0"
        );
        backend.write(1).unwrap();
        assert!(
            seen(&|l| l.events.len() == 2),
            "edge-triggered: a new write is a new event"
        );

        drop(w);
        assert_eq!(Arc::strong_count(&dev), 1, "the thread is gone");
    }

    #[test]
    fn every_registration_refused_stops_the_thread() {
        let (d, _img) = Driver::with_image(64 << 10, false, false);
        let dev = Arc::new(Mutex::new(d.dev));
        let refuse = |_, _: &EventFd| Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
        let err = IoWorker::start("test-io".into(), dev.clone(), refuse).err();
        assert_eq!(err.and_then(|e| e.raw_os_error()), Some(libc::ENOSPC));
        assert_eq!(Arc::strong_count(&dev), 1, "no thread left behind");
    }
}
