//! Fuzz the fw_cfg device with hostile port accesses and DMA descriptors over a small fake
//! guest memory (see fw_cfg::fuzz_ports), and the linker/loader interpreter with hostile
//! scripts (fw_cfg::fuzz_loader_script).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((sel, rest)) if sel & 1 == 1 => fw_cfg::fuzz_loader_script(rest),
        _ => fw_cfg::fuzz_ports(data),
    }
});
