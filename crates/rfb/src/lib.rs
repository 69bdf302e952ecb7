//! A small VNC (RFB 3.8, RFC 6143) server for pmvm's `-vnc`, on plain threads.
//!
//! Why its own: the Rust RFB server crates are large, tokio-based or unmaintained, and pmvm's
//! other servers (QMP) are std threads with bounded queues. What a VMM needs from VNC is small:
//! Raw updates of a changing framebuffer in whatever true-colour format the client wants,
//! keyboard and pointer in, and QEMU's conventions (`-vnc :N`, `password=on`, Ctrl-Alt-N console
//! switches) so scripts written for QEMU keep working.
//!
//! Layers, each usable alone:
//! - [`Session`]: the protocol engine for one client, free of I/O (tests, fuzzing);
//! - [`Framebuffer`]: XRGB8888 pixels with per-tile change generations;
//! - [`VncServer`]: listeners and per-client threads, fed by a [`Display`] the VMM implements;
//! - [`TextScreen`]: renders a VT100 byte stream (a serial console) into a framebuffer;
//! - [`keymap`]: X11 keysyms to PS/2 scancode set 1, and Ctrl-Alt-N console switches.
#![forbid(unsafe_code)]

pub mod auth;
pub mod error;
pub mod framebuffer;
pub mod keymap;
pub mod listen;
pub mod pixel;
pub mod server;
pub mod session;
pub mod text;
pub mod websocket;

pub use error::{ProtocolError, ServerError};
pub use framebuffer::{Framebuffer, Rect, TILE};
pub use keymap::{ConsoleSwitch, KeyAction, Scancode, keysym_to_set1};
pub use listen::{Listen, Share, VncSpec, parse_vnc_spec};
pub use pixel::PixelFormat;
pub use server::{ClientInfo, Display, KeyEvent, ServerOptions, ThreadInit, VncServer};
pub use session::{ClientEvent, Session, SessionConfig, Version};
pub use text::TextScreen;

/// Feeds arbitrary bytes to a session, as a hostile client would, and exercises the output side;
/// for the fuzz target. Never panics.
pub fn fuzz_session(data: &[u8]) {
    let (pw, rest) = match data.split_first() {
        Some((&b, rest)) if b & 1 == 1 => (Some(b"pw".to_vec()), rest),
        Some((_, rest)) => (None, rest),
        None => (None, data),
    };
    let cfg = SessionConfig {
        password: pw,
        max_cut_text: 64,
        ..SessionConfig::default()
    };
    let mut fb = Framebuffer::new(37, 21);
    let mut s = Session::new(cfg, fb.width(), fb.height());
    // A valid 3.8 no-auth prologue half of the time, so the message parser gets exercised.
    if data.first().is_some_and(|b| b & 2 == 2) {
        let _ = s.feed(b"RFB 003.008\n\x01\x01");
    }
    for (i, chunk) in rest.chunks(7).enumerate() {
        if s.feed(chunk).is_err() {
            break;
        }
        let _ = s.take_output();
        if i % 3 == 0 {
            fb.set_pixel(i as u16 % 40, i as u16 % 25, i as u32);
        }
        if i % 11 == 5 {
            fb.resize(20 + (i % 30) as u16, 10 + (i % 13) as u16);
        }
        if let Some(u) = s.build_update(&fb) {
            let (w, h) = s.size();
            let bound = 4 + 16 + 12 * 4096 + usize::from(w) * usize::from(h) * 4 * 2;
            assert!(u.len() <= bound, "update larger than two screens");
        }
    }
}
