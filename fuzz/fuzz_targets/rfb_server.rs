//! Fuzz the VNC server's protocol engine with hostile client bytes: the handshake (with and
//! without VNC Authentication), every client message at any chunking, and update building while
//! the framebuffer changes and resizes (updates must stay bounded by the screen size).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rfb::fuzz_session(data);
});
