//! Fuzz the QMP input path: the streaming JSON splitter (any chunking, limits, recovery), the
//! parser round trip, and the protocol session (negotiation, argument checks, HMP lines).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    qmp::fuzz_qmp_reader(data);
});
