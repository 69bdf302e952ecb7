//! Fuzz the NVDIMM `_DSM` mailbox dispatcher with hostile guest requests.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    nvdimm_acpi::fuzz_dsm_mailbox(data);
});
