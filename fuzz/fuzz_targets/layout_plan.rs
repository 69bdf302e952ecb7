//! Fuzz target: machine + memory-device plans through pmem-layout
//! (placement, NVDIMM split, oVirt sizing, size strings).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pmem_layout::fuzz_layout_plan(data);
});
