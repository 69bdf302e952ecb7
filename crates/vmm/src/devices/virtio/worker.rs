//! An I/O thread per virtio device: KVM signals an ioeventfd when the guest writes the queue's
//! QueueNotify register (no exit to pmvm), and this thread processes the queue, so the vCPU
//! goes on running while the disk works. Stopped and joined with the VM, so a rebuilt VM (after
//! a guest reset) finds the image unlocked.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use vmm_sys_util::eventfd::EventFd;

use super::mmio::VirtioMmio;

/// The thread and its stop signal.
pub struct IoWorker {
    stop: EventFd,
    handle: Option<JoinHandle<()>>,
}

impl IoWorker {
    /// Starts a thread that processes queue `queue` of `dev` each time `notify` fires.
    pub fn start(
        name: String,
        dev: Arc<Mutex<VirtioMmio>>,
        notify: EventFd,
        queue: u32,
    ) -> std::io::Result<IoWorker> {
        let stop = EventFd::new(libc::EFD_NONBLOCK)?;
        let stop_rx = stop.try_clone()?;
        let handle = std::thread::Builder::new().name(name).spawn(move || {
            crate::seccomp::enter(crate::seccomp::ThreadKind::Io);
            run(&dev, &notify, &stop_rx, queue)
        })?;
        Ok(IoWorker {
            stop,
            handle: Some(handle),
        })
    }
}

fn run(dev: &Mutex<VirtioMmio>, notify: &EventFd, stop: &EventFd, queue: u32) {
    use std::os::fd::AsRawFd;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: notify.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: stop.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if rc < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            tracing::error!("virtio I/O thread: poll failed; the disk stops");
            return;
        }
        if fds[1].revents != 0 {
            return;
        }
        if fds[0].revents & libc::POLLIN != 0 {
            // Several notifies since the last pass are one pass: the queue holds them all.
            let _ = notify.read();
            dev.lock()
                .unwrap_or_else(|p| p.into_inner())
                .notify_queue(queue);
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
    use crate::devices::virtio::fuzz::{DATA, Driver};
    use vm_memory::{Bytes, GuestAddress};

    #[test]
    fn notify_through_the_eventfd_processes_the_queue_and_drop_joins() {
        let (mut d, _img) = Driver::with_image(64 << 10, false, false);
        d.init(super::super::F_VERSION_1 | (1 << 9) | (1 << 2));
        // Lay out a GET_ID request without notifying through the register.
        let mut hdr = [0u8; 16];
        hdr[0] = 8;
        d.mem.write_slice(&hdr, GuestAddress(DATA)).unwrap();
        d.mem.write_obj(0xffu8, GuestAddress(DATA + 0x100)).unwrap();
        d.queue_chain(&[
            (DATA, 16, false),
            (DATA + 0x1000, 20, true),
            (DATA + 0x100, 1, true),
        ]);
        let mem = d.mem.clone();
        let dev = Arc::new(Mutex::new(d.dev));
        let evt = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let w =
            IoWorker::start("test-io".into(), dev.clone(), evt.try_clone().unwrap(), 0).unwrap();
        evt.write(1).unwrap();
        let mut status = 0xffu8;
        for _ in 0..500 {
            status = mem.read_obj(GuestAddress(DATA + 0x100)).unwrap();
            if status != 0xff {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_eq!(status, 0, "the worker answered the request");
        drop(w);
        assert_eq!(
            Arc::strong_count(&dev),
            1,
            "the thread is gone with its reference"
        );
    }
}
