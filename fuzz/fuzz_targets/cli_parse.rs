#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vm_config::fuzz_cli_parse(data));
