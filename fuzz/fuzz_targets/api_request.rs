#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pmctl::fuzz_api_request(data));
