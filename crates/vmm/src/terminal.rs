//! The terminal settings pmvm found at start, and their restoration: used by the console (raw
//! mode on and off) and by every exit path that must give the user their terminal back,
//! including the sandbox's SIGSYS handler (so it lives apart from both).

use std::sync::OnceLock;

static SAVED_TERMIOS: OnceLock<libc::termios> = OnceLock::new();

/// Remembers the settings to restore (the first call wins).
pub fn save(t: libc::termios) {
    let _ = SAVED_TERMIOS.set(t);
}

/// Restores the terminal settings saved by the console's raw mode. Async-signal-safe: one
/// `tcsetattr` on a value set before any handler could run.
pub fn restore_terminal() {
    if let Some(t) = SAVED_TERMIOS.get() {
        // SAFETY: tcsetattr reads a valid termios struct for fd 0; failure is harmless.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, t) };
    }
}
