//! The virtio-mmio transport driven as a guest driver would (through the fuzz driver).
use super::*;
use crate::devices::virtio::fuzz::{Driver, TestDevice, rings};
use virtio_bindings::virtio_config::VIRTIO_CONFIG_S_ACKNOWLEDGE;

const ACTIVE: u32 = VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_FEATURES_OK;

#[test]
fn activate_once_at_driver_ok_and_reset_at_status_zero() {
    let (dev, log) = TestDevice::new(&[16, 16]);
    let mut d = Driver::with_device(Box::new(dev));
    d.w(0x070, 0);
    assert_eq!(
        log.lock().unwrap().resets,
        0,
        "nothing to reset before activation"
    );
    let features = 1 << VIRTIO_F_VERSION_1;
    assert_eq!(d.init_queues(features, 2) & ACTIVE, ACTIVE);
    assert_eq!(log.lock().unwrap().activated, [features]);
    // DRIVER_OK written again is not a new activation.
    let st = d.r(0x070);
    d.w(0x070, st);
    assert_eq!(log.lock().unwrap().activated.len(), 1);
    assert_eq!(log.lock().unwrap().resets, 0);
    d.w(0x070, 0);
    assert_eq!(log.lock().unwrap().resets, 1, "status 0 resets the device");
    d.w(0x070, 0);
    assert_eq!(log.lock().unwrap().resets, 1, "one reset per activation");
    // A second session: activated again, and queues work again.
    d.init_queues(features, 2);
    assert_eq!(log.lock().unwrap().activated.len(), 2);
    // Refused features: no DRIVER_OK, no activation.
    d.init_queues(features | (1 << 29), 2);
    assert_eq!(log.lock().unwrap().activated.len(), 2);
    assert_eq!(log.lock().unwrap().resets, 2);
}

#[test]
fn notifies_reach_the_queue_they_name_and_device_events_wait_for_driver_ok() {
    let (dev, log) = TestDevice::new(&[16, 16]);
    let mut d = Driver::with_device(Box::new(dev));
    d.dev.device_event(TestDevice::TOKEN);
    d.w(0x050, 1);
    assert!(log.lock().unwrap().events.is_empty(), "not live yet");
    assert!(log.lock().unwrap().processed.is_empty());
    d.init_queues(1 << VIRTIO_F_VERSION_1, 2);
    d.w(0x050, 1);
    d.w(0x050, 0);
    d.w(0x050, 2); // no such queue
    assert_eq!(
        log.lock().unwrap().processed,
        [(1, rings(1).0), (0, rings(0).0)]
    );
    d.dev.device_event(TestDevice::TOKEN);
    assert_eq!(log.lock().unwrap().events, [TestDevice::TOKEN]);
    assert_eq!(
        d.r(0x060),
        VIRTIO_MMIO_INT_VRING,
        "the device asked to interrupt"
    );
}

#[test]
fn bad_rings_or_failed_activation_tear_the_device_down() {
    let (dev, log) = TestDevice::new(&[16, 16]);
    let mut d = Driver::with_device(Box::new(dev));
    d.init_queues(1 << VIRTIO_F_VERSION_1, 2);
    // A ready queue's rings cannot move: reset, then set up queue 1 alone with its
    // descriptor table at 64 GiB, outside guest memory.
    d.w(0x070, 0);
    assert_eq!(log.lock().unwrap().resets, 1);
    d.w(0x070, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    d.w(0x024, 1);
    d.w(0x020, 1);
    d.w(
        0x070,
        VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK,
    );
    d.w(0x030, 1);
    d.w(0x038, 16);
    d.w(0x084, 0x10);
    d.w(0x044, 1);
    let st = d.r(0x070);
    d.w(0x070, st | VIRTIO_CONFIG_S_DRIVER_OK);
    assert_eq!(log.lock().unwrap().activated.len(), 2);
    // A device event checks every ready queue before lending them.
    d.dev.device_event(TestDevice::TOKEN);
    assert!(log.lock().unwrap().events.is_empty());
    assert_ne!(d.r(0x070) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
    assert_eq!(d.r(0x060), VIRTIO_MMIO_INT_CONFIG);
    assert_eq!(
        log.lock().unwrap().resets,
        2,
        "torn down at DEVICE_NEEDS_RESET"
    );
    d.w(0x070, 0);
    assert_eq!(log.lock().unwrap().resets, 2, "and not reset twice");

    // activate fails: DEVICE_NEEDS_RESET, no reset owed, nothing served.
    let (mut dev, log) = TestDevice::new(&[16]);
    dev.fail_activate = true;
    let mut d = Driver::with_device(Box::new(dev));
    let st = d.init(1 << VIRTIO_F_VERSION_1);
    assert_ne!(st & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
    assert_eq!(d.r(0x060), VIRTIO_MMIO_INT_CONFIG);
    d.w(0x050, 0);
    assert!(log.lock().unwrap().processed.is_empty());
    d.w(0x070, 0);
    assert_eq!(log.lock().unwrap().resets, 0);
}
