//! Fuzz the virtio-mmio transport and the virtio-blk request parser with hostile register
//! writes, ring contents and descriptor chains (see vmm::devices::virtio::fuzz::run).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vmm::devices::virtio::fuzz::run(data);
});
