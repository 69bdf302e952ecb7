//! The terminal side of the serial console: raw mode (restored on exit, also after a panic or
//! a fatal signal), a stdin reader feeding the UART, and QEMU's `Ctrl-a` escapes (`x` quits,
//! `c` switches to the human monitor; see `console_mux`).
//!
//! Raw mode is hand-written (`cfmakeraw` plus `OPOST | ONLCR`) rather than
//! `vmm_sys_util::terminal::Terminal`, whose `set_raw_mode` only clears `ICANON | ECHO | ISIG`
//! and whose `set_canon_mode` only sets them back:
//! - input stays half-cooked: `IXON` keeps Ctrl-S/Ctrl-Q for host flow control, `IEXTEN`
//!   keeps Ctrl-V/Ctrl-O, `ICRNL` turns Enter into LF. QEMU's stdio backend clears all three,
//!   so the guest gets every key and Enter as CR; pmvm does the same;
//! - restoring puts back the exact settings saved at start, not a guess at cooked mode (a
//!   terminal that was not in canonical mode to begin with is left as it was found), and it
//!   runs in a panic hook and a SIGQUIT handler, where only `tcsetattr` on saved bytes is
//!   safe to call.
//!
//! Output keeps `OPOST | ONLCR` on (as `Terminal`'s raw mode would too), so pmvm's own lines
//! on stderr (warnings, "terminating on signal") still start at column 0.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::console_mux::{Mux, MuxOut, PROMPT};
use crate::devices::serial::Serial;
use crate::devices::{EventSink, VmEvent};

/// Where stdin bytes go; replaced when the guest is reset (a new UART is built).
type Target = Option<(Arc<Mutex<Serial>>, EventSink)>;

static TARGET: OnceLock<Mutex<Target>> = OnceLock::new();

fn target() -> &'static Mutex<Target> {
    TARGET.get_or_init(|| Mutex::new(None))
}

pub use crate::terminal::restore_terminal;

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
    crate::terminal::save(t);
    let mut raw = t;
    // SAFETY: cfmakeraw only modifies the struct it is given.
    unsafe { libc::cfmakeraw(&mut raw) };
    raw.c_oflag |= libc::OPOST | libc::ONLCR; // keep the host's newline translation on output
    // SAFETY: raw is a valid termios derived from the current one.
    unsafe { libc::tcsetattr(0, libc::TCSANOW, &raw) };
    // SIGTERM/SIGINT/SIGHUP are taken by the signals thread (a clean quit); SIGQUIT still
    // kills at once (core dump), so give the terminal back first.
    // SAFETY: installing a handler that only calls async-signal-safe functions.
    unsafe {
        libc::signal(
            libc::SIGQUIT,
            on_fatal_signal as *const () as libc::sighandler_t,
        )
    };
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

/// Runs one human-monitor line and returns its output (`\n` line ends).
pub type MonitorHook = Box<dyn Fn(&str) -> String + Send + Sync>;

static MONITOR: OnceLock<MonitorHook> = OnceLock::new();

/// Gives the stdio console a human monitor behind `Ctrl-a c` (call before the stdin reader
/// starts; the first hook set wins).
pub fn set_monitor_hook(hook: MonitorHook) {
    let _ = MONITOR.set(hook);
}

fn term_write(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes);
    let _ = out.flush();
}

/// Starts the stdin reader thread (once per process): bytes go to the guest's UART, `Ctrl-a`
/// escapes as in QEMU (`console_mux`).
pub fn start_stdin_reader() {
    static STARTED: OnceLock<()> = OnceLock::new();
    if STARTED.set(()).is_err() {
        return;
    }
    let _ = std::thread::Builder::new().name("stdin".into()).spawn(|| {
        crate::seccomp::enter(crate::seccomp::ThreadKind::Stdin);
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 64];
        let mut mux = Mux::new(MONITOR.get().is_some());
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(0) | Err(_) => return, // EOF: the guest just gets no more input
                Ok(n) => n,
            };
            for o in mux.feed(&buf[..n]) {
                match o {
                    MuxOut::Guest(b) => feed(&b),
                    MuxOut::Term(b) => term_write(&b),
                    MuxOut::Monitor(line) => {
                        let mut text = MONITOR.get().map(|h| h(&line)).unwrap_or_default();
                        // After `quit` the VMM is going away: no new prompt (QEMU prints none).
                        if !matches!(line.trim(), "quit" | "q") {
                            text.push_str(PROMPT);
                        }
                        term_write(text.replace('\n', "\r\n").as_bytes());
                    }
                    MuxOut::Quit => {
                        if let Ok(t) = target().lock()
                            && let Some((_, sink)) = t.as_ref()
                        {
                            sink.send(VmEvent::Quit);
                        }
                        return;
                    }
                }
            }
        }
    });
}

/// Feeds input bytes to the guest's UART (waiting while its FIFO is full): the stdin reader's
/// path, also taken by keys typed on the VNC consoles 1 and 3.
pub(crate) fn feed(mut bytes: &[u8]) {
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
