//! Fuzz the namespace label area reader: parse, check, classify, ndctl JSON
//! and the writers on arbitrary bytes must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nvlabel::fuzz_label_area(data);
});
