//! Fuzz the virtio-mmio transport and virtio-net's receive and transmit paths with hostile
//! register writes, ring contents, descriptor chains, backend frames (oversized ones included)
//! and link flips (see vmm::devices::virtio::fuzz::run_net).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vmm::devices::virtio::fuzz::run_net(data);
});
