//! `-vnc`: the VNC server (`crates/rfb`) with QEMU's three consoles, switched with Ctrl-Alt-N:
//!
//! 1. the guest's screen. pmvm has no framebuffer device yet (ramfb through fw_cfg, or the
//!    `screen_info` linear framebuffer, are a later step), so this shows the guest's serial
//!    output as text, the same screen as console 3;
//! 2. the human monitor: a `(qemu) ` prompt with line editing; Enter runs the line through
//!    the same HMP path as `-monitor` and the `Ctrl-a c` console;
//! 3. the serial console (COM1).
//!
//! Keys on consoles 1 and 3 become terminal bytes (`keys.rs`) for the UART, through the same
//! path the stdin console feeds it (`console::feed`). The serial device's output is teed here
//! by [`SerialTee`]: on the vCPU thread it only appends to a byte buffer under a short lock;
//! the text is rendered into the screen on a VNC writer thread (inside
//! [`Display::with_framebuffer`], which the writers call at least every 30 ms while a client
//! waits for an update), and the framebuffer marks only the tiles that changed. No socket I/O
//! and no rendering happen on the vCPU thread (except one batch when 64 KiB piled up with no
//! viewer, and only if the screen's lock is free).
//!
//! The server is started once by the run loop and lives across guest resets: every rebuilt
//! VM's UART writes through a new [`SerialTee`] into the same screen.

mod keys;

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use qmp::{ErrorClass, QmpError, VncClientInfo, VncInfo};
use rfb::{Display, Framebuffer, KeyEvent, Listen, ServerOptions, TextScreen, VncServer, VncSpec};
use vm_config::{ConfigError, SerialConfig, VmConfig};

use crate::error::{Error, Result};
use keys::{keysym_to_bytes, sym};

/// Runs one human-monitor line and returns its output (`\n` line ends).
pub type HmpHook = Box<dyn Fn(&str) -> String + Send + Sync>;

/// Text console size: VGA text mode's 80x25, 640x400 pixels.
const COLS: u16 = 80;
const ROWS: u16 = 25;
/// Serial output waiting for a viewer before the vCPU thread renders it itself.
const PENDING_SOFT: usize = 64 << 10;
/// Serial output kept at most while the screen is busy (older bytes are dropped).
const PENDING_HARD: usize = 1 << 20;
/// Longest monitor line typed on console 2.
const MAX_LINE: usize = 4096;

struct Screens {
    /// 1, 2 or 3.
    active: u8,
    serial: TextScreen,
    monitor: TextScreen,
    line: String,
}

/// The consoles a VNC viewer sees; the [`Display`] of pmvm's VNC server.
pub struct VncConsoles {
    screens: Mutex<Screens>,
    pending: Mutex<Vec<u8>>,
    hmp: Option<HmpHook>,
    server: OnceLock<VncServer>,
    /// Left (bit 0) and right (bit 1) Control held.
    ctrl: AtomicU8,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl VncConsoles {
    fn new(serial: &SerialConfig, hmp: Option<HmpHook>) -> VncConsoles {
        let mut serial_screen = TextScreen::new(COLS, ROWS);
        if *serial == SerialConfig::None {
            serial_screen.feed(b"pmvm: this VM has no serial port (-serial none)\r\n");
        }
        let mut monitor = TextScreen::new(COLS, ROWS);
        if hmp.is_some() {
            let banner = qmp::hmp::banner(&qmp::VersionInfo::default());
            monitor.feed(qmp::hmp::crlf(&banner).as_bytes());
            monitor.feed(qmp::hmp::PROMPT.as_bytes());
        }
        VncConsoles {
            screens: Mutex::new(Screens {
                active: 1,
                serial: serial_screen,
                monitor,
                line: String::new(),
            }),
            pending: Mutex::new(Vec::new()),
            hmp,
            server: OnceLock::new(),
            ctrl: AtomicU8::new(0),
        }
    }

    fn notify(&self) {
        if let Some(s) = self.server.get() {
            s.notify();
        }
    }

    /// Guest serial output (vCPU thread): queued for the screen, rendered later.
    fn serial_output(&self, bytes: &[u8]) {
        let mut p = lock(&self.pending);
        p.extend_from_slice(bytes);
        if p.len() < PENDING_SOFT {
            return;
        }
        // Nobody has looked for a while: render the batch now if that costs no waiting.
        if let Ok(mut s) = self.screens.try_lock() {
            s.serial.feed(&p);
            p.clear();
        } else if p.len() > PENDING_HARD {
            let cut = p.len() - PENDING_HARD / 2;
            p.drain(..cut);
        }
    }

    /// Renders queued serial output; returns the bells it rang.
    fn drain_serial(&self, s: &mut Screens) -> u32 {
        let bytes = std::mem::take(&mut *lock(&self.pending));
        if !bytes.is_empty() {
            s.serial.feed(&bytes);
        }
        s.serial.take_bells()
    }

    /// A key pressed on the monitor console: line editing, Enter runs the line.
    fn monitor_key(&self, keysym: u32, bytes: &[u8]) {
        let mut s = lock(&self.screens);
        match keysym {
            sym::RETURN | sym::KP_ENTER => {
                let line = std::mem::take(&mut s.line);
                s.monitor.feed(b"\r\n");
                drop(s);
                // Run without holding the screen: a command may take a while (hot plug).
                let mut out = self.hmp.as_ref().map(|h| h(&line)).unwrap_or_default();
                if !matches!(line.trim(), "quit" | "q") {
                    out.push_str(qmp::hmp::PROMPT);
                }
                lock(&self.screens)
                    .monitor
                    .feed(qmp::hmp::crlf(&out).as_bytes());
            }
            sym::BACKSPACE => {
                if s.line.pop().is_some() {
                    s.monitor.feed(b"\x08 \x08");
                }
            }
            _ => {
                // Printable ASCII only; control keys and escapes are ignored at the prompt.
                if let [c @ 0x20..=0x7e] = bytes
                    && s.line.len() < MAX_LINE
                {
                    s.line.push(char::from(*c));
                    s.monitor.feed(&[*c]);
                }
            }
        }
    }
}

impl Display for VncConsoles {
    fn with_framebuffer(&self, f: &mut dyn FnMut(&Framebuffer)) {
        let bells = {
            let mut s = lock(&self.screens);
            let bells = self.drain_serial(&mut s);
            match s.active {
                2 => f(s.monitor.framebuffer()),
                _ => f(s.serial.framebuffer()),
            }
            bells
        };
        if bells > 0
            && let Some(server) = self.server.get()
        {
            server.bell();
        }
    }

    fn key_event(&self, ev: KeyEvent) {
        let bit = match ev.keysym {
            sym::CONTROL_L => 1,
            sym::CONTROL_R => 2,
            _ => 0,
        };
        if bit != 0 {
            if ev.down {
                self.ctrl.fetch_or(bit, Ordering::Relaxed);
            } else {
                self.ctrl.fetch_and(!bit, Ordering::Relaxed);
            }
            return;
        }
        if !ev.down {
            return;
        }
        let ctrl = self.ctrl.load(Ordering::Relaxed) != 0;
        let Some(bytes) = keysym_to_bytes(ev.keysym, ctrl) else {
            return;
        };
        let active = lock(&self.screens).active;
        if active == 2 {
            if self.hmp.is_some() {
                self.monitor_key(ev.keysym, &bytes);
                self.notify();
            }
        } else {
            // The guest's echo comes back through the UART and the tee.
            crate::console::feed(&bytes);
        }
    }

    fn pointer_event(&self, _buttons: u8, _x: u16, _y: u16) {
        // No pointing device in the guest yet.
    }

    fn console_switch(&self, n: u8) {
        if (1..=3).contains(&n) {
            lock(&self.screens).active = n;
            self.notify();
        }
    }
}

/// The serial device's output: to its backend (stdio, a file; none for `-serial vc`) and to
/// the VNC text console.
pub struct SerialTee {
    inner: Option<Box<dyn Write + Send>>,
    consoles: Arc<VncConsoles>,
}

impl Write for SerialTee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.consoles.serial_output(buf);
        match &mut self.inner {
            // A backend that fails (closed stdout) must not stop the screen, nor the guest.
            Some(w) => Ok(w.write(buf).unwrap_or(buf.len())),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.inner {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

struct Running {
    consoles: Arc<VncConsoles>,
    server: VncServer,
    spec: VncSpec,
}

static RUNNING: OnceLock<Running> = OnceLock::new();

/// Parses `-vnc` (call before anything else starts, so a bad spec costs nothing).
pub fn parse(cfg: &VmConfig) -> Result<Option<VncSpec>> {
    let Some(raw) = &cfg.vnc else {
        return Ok(None);
    };
    rfb::parse_vnc_spec(raw)
        .map(Some)
        .map_err(|e| spec_error(raw, e))
}

fn spec_error(raw: &str, e: rfb::ServerError) -> Error {
    match e {
        rfb::ServerError::Io { what, source } => Error::io(format!("-vnc {raw}: {what}"), source),
        rfb::ServerError::BadSpec { why, .. } => {
            Error::Config(ConfigError::new(format!("-vnc {raw}: {why}")))
        }
        other => Error::Config(ConfigError::new(format!("-vnc {raw}: {other}"))),
    }
}

/// Starts the VNC server for `spec` (once per process; the run loop calls it before the first
/// VM is built). Its threads run under the monitor's seccomp filter: console 2 runs monitor
/// commands, hot plug included, on the client's reader thread.
pub fn start(cfg: &VmConfig, spec: VncSpec, hmp: Option<HmpHook>) -> Result<()> {
    let consoles = Arc::new(VncConsoles::new(&cfg.serial, hmp));
    let display: Arc<dyn Display> = consoles.clone();
    let mut opts = ServerOptions::for_spec(&spec);
    if let Some(n) = &cfg.name {
        opts.name = n.clone();
    }
    let server = VncServer::new(display, opts);
    server.set_thread_init(Arc::new(|_name: &str| {
        crate::seccomp::enter(crate::seccomp::ThreadKind::Monitor)
    }));
    server
        .listen_spec(&spec)
        .map_err(|e| spec_error(cfg.vnc.as_deref().unwrap_or_default(), e))?;
    let _ = consoles.server.set(server.clone());
    let _ = RUNNING.set(Running {
        consoles,
        server,
        spec,
    });
    Ok(())
}

/// Wraps a serial backend so the VNC text console sees the output too (unchanged without
/// `-vnc`). `None` in, with VNC running (`-serial vc`): only the console gets it.
pub fn serial_writer(out: Option<Box<dyn Write + Send>>) -> Option<Box<dyn Write + Send>> {
    match RUNNING.get() {
        Some(r) => Some(Box::new(SerialTee {
            inner: out,
            consoles: r.consoles.clone(),
        })),
        None => out,
    }
}

/// Stops listening (removes a Unix socket) and disconnects the viewers.
pub fn shutdown() {
    if let Some(r) = RUNNING.get() {
        r.server.shutdown();
    }
}

/// `query-vnc`.
pub fn query() -> VncInfo {
    let Some(r) = RUNNING.get() else {
        return VncInfo::default();
    };
    let Some(l) = r.server.listeners().into_iter().next() else {
        return VncInfo::default();
    };
    let (host, service, family) = match l {
        Listen::Tcp(h, port) => {
            let host = if h.is_empty() {
                "0.0.0.0".to_string()
            } else {
                h
            };
            let family = if host.contains(':') { "ipv6" } else { "ipv4" };
            (host, port.to_string(), family)
        }
        Listen::Unix(p) => (String::new(), p.display().to_string(), "unix"),
    };
    let clients = r
        .server
        .clients()
        .into_iter()
        .map(|c| VncClientInfo {
            host: c.host,
            service: c.service,
            family: c.family.to_string(),
            websocket: c.websocket,
        })
        .collect();
    VncInfo {
        enabled: true,
        host: Some(host),
        family: Some(family.to_string()),
        service: Some(service),
        auth: Some(if r.spec.password { "vnc" } else { "none" }.to_string()),
        clients: Some(clients),
    }
}

/// `set_password` / `change vnc password`, with QEMU 7.2's rules: VNC takes a password only
/// with `password=on`, and only `connected=keep`.
pub fn set_password(
    protocol: &str,
    password: &str,
    connected: Option<&str>,
) -> std::result::Result<(), QmpError> {
    if protocol == "spice" {
        return Err(QmpError::new(
            ErrorClass::DeviceNotActive,
            "SPICE is not in use",
        ));
    }
    if connected.is_some_and(|c| c != "keep") {
        return Err(QmpError::generic("Invalid parameter 'connected'"));
    }
    match RUNNING.get() {
        Some(r) if r.spec.password => {
            r.server.set_password(Some(password));
            Ok(())
        }
        Some(_) => {
            eprintln!(
                "pmvm: set_password: start pmvm with -vnc ...,password=on to use a VNC password"
            );
            Err(QmpError::generic("Could not set password"))
        }
        None => Err(QmpError::generic("Could not set password")),
    }
}
