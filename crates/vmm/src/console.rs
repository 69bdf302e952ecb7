//! The terminal side of the serial console: raw mode (restored on exit, also after a panic or
//! a fatal signal), a stdin reader feeding the UART, and QEMU's `Ctrl-a x` escape to quit.

use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::devices::serial::Serial;
use crate::devices::{EventSink, VmEvent};

/// Where stdin bytes go; replaced when the guest is reset (a new UART is built).
type Target = Option<(Arc<Mutex<Serial>>, EventSink)>;

static TARGET: OnceLock<Mutex<Target>> = OnceLock::new();
static SAVED_TERMIOS: OnceLock<libc::termios> = OnceLock::new();

fn target() -> &'static Mutex<Target> {
    TARGET.get_or_init(|| Mutex::new(None))
}

/// Restores the terminal settings saved by `enable_raw_mode`.
pub fn restore_terminal() {
    if let Some(t) = SAVED_TERMIOS.get() {
        // SAFETY: tcsetattr reads a valid termios struct for fd 0; failure is harmless.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, t) };
    }
}

extern "C" fn on_fatal_signal(sig: libc::c_int) {
    restore_terminal();
    // SAFETY: restore the default action and re-raise so the exit status reflects the signal.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Puts stdin in raw mode if it is a terminal (so the guest shell gets every key).
pub fn enable_raw_mode() {
    // SAFETY: isatty has no memory-safety preconditions.
    if unsafe { libc::isatty(0) } != 1 {
        return;
    }
    // SAFETY: a zeroed termios is a valid out-parameter for tcgetattr.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: t is a valid, writable termios.
    if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
        return;
    }
    let _ = SAVED_TERMIOS.set(t);
    let mut raw = t;
    // SAFETY: cfmakeraw only modifies the struct it is given.
    unsafe { libc::cfmakeraw(&mut raw) };
    raw.c_oflag |= libc::OPOST | libc::ONLCR; // keep the host's newline translation on output
    // SAFETY: raw is a valid termios derived from the current one.
    unsafe { libc::tcsetattr(0, libc::TCSANOW, &raw) };
    // SIGTERM/SIGINT/SIGHUP are taken by the signals thread (a clean quit); SIGQUIT still
    // kills at once (core dump), so give the terminal back first.
    for sig in [libc::SIGQUIT] {
        // SAFETY: installing a handler that only calls async-signal-safe functions.
        unsafe { libc::signal(sig, on_fatal_signal as *const () as libc::sighandler_t) };
    }
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        prev(info);
    }));
}

/// Routes stdin to `serial` (events such as Ctrl-a x go to `sink`).
pub fn attach(serial: Arc<Mutex<Serial>>, sink: EventSink) {
    if let Ok(mut t) = target().lock() {
        *t = Some((serial, sink));
    }
}

/// Starts the stdin reader thread (once per process).
pub fn start_stdin_reader() {
    static STARTED: OnceLock<()> = OnceLock::new();
    if STARTED.set(()).is_err() {
        return;
    }
    let _ = std::thread::Builder::new().name("stdin".into()).spawn(|| {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 64];
        let mut escape = false;
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(0) | Err(_) => return, // EOF: the guest just gets no more input
                Ok(n) => n,
            };
            let mut pending = Vec::with_capacity(n);
            for &b in &buf[..n] {
                if escape {
                    escape = false;
                    match b {
                        b'x' => {
                            if let Ok(t) = target().lock()
                                && let Some((_, sink)) = t.as_ref()
                            {
                                sink.send(VmEvent::Quit);
                            }
                            return;
                        }
                        0x01 => pending.push(0x01),
                        _ => {}
                    }
                } else if b == 0x01 {
                    escape = true;
                } else {
                    pending.push(b);
                }
            }
            feed(&pending);
        }
    });
}

fn feed(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let serial = match target().lock() {
            Ok(t) => t.as_ref().map(|(s, _)| s.clone()),
            Err(_) => return,
        };
        let Some(serial) = serial else { return };
        let n = serial
            .lock()
            .map(|mut s| s.enqueue(bytes))
            .unwrap_or(bytes.len());
        bytes = &bytes[n..];
        if !bytes.is_empty() {
            std::thread::sleep(Duration::from_millis(5)); // the guest drains its FIFO
        }
    }
}
