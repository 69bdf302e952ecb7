//! Sockets and threads: listeners, one reader and one writer thread per client, event broadcast.
//!
//! Each client's output goes through a bounded queue drained by its own writer thread, so a
//! client that stops reading cannot block the others or the VMM: replies wait (back-pressure on
//! that client only), and a client whose event queue overflows is disconnected.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

use crate::chardev::{ChardevSpec, Endpoint};
use crate::core::{Core, QmpHandler};
use crate::error::ServerError;
use crate::event::Event;
use crate::reader::Limits;
use crate::session::{QmpSession, wire_line};
use crate::types::VersionInfo;

/// Lines queued per client before a client that does not read is dropped.
pub const CLIENT_QUEUE: usize = 1024;

/// Called first thing in every thread the server starts, with the thread's name (pmvm installs
/// its monitor seccomp filter there; this crate knows nothing of it).
pub type ThreadInit = Arc<dyn Fn(&str) + Send + Sync>;

/// Which monitor protocol a listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// QMP (JSON).
    Qmp,
    /// HMP (the human monitor).
    Hmp,
}

/// A connected byte stream we can clone and shut down.
trait Conn: Read + Write + Send + 'static {
    fn try_clone_conn(&self) -> io::Result<Box<dyn Conn>>;
    fn shutdown_conn(&self);
}

impl Conn for UnixStream {
    fn try_clone_conn(&self) -> io::Result<Box<dyn Conn>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn shutdown_conn(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl Conn for TcpStream {
    fn try_clone_conn(&self) -> io::Result<Box<dyn Conn>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn shutdown_conn(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

struct Client {
    id: u64,
    negotiated: Arc<AtomicBool>,
    tx: SyncSender<Arc<str>>,
    closer: Option<Box<dyn Conn>>,
}

struct ListenerEntry {
    endpoint: Endpoint,
    stop: Arc<AtomicBool>,
}

struct Inner {
    core: Arc<Core>,
    clients: Mutex<Vec<Client>>,
    listeners: Mutex<Vec<ListenerEntry>>,
    next_id: AtomicU64,
    thread_init: Mutex<Option<ThreadInit>>,
}

/// The monitor server. Cheap to clone; all clones share clients and listeners.
#[derive(Clone)]
pub struct QmpServer {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking client thread must not take the whole monitor down with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl QmpServer {
    /// A server answering with `handler`, claiming [`VersionInfo::default`].
    pub fn new(handler: Arc<dyn QmpHandler>) -> Self {
        Self::with_config(handler, VersionInfo::default(), Limits::default())
    }

    /// A server with an explicit version and input limits.
    pub fn with_config(handler: Arc<dyn QmpHandler>, version: VersionInfo, limits: Limits) -> Self {
        QmpServer {
            inner: Arc::new(Inner {
                core: Arc::new(Core::new(handler, version, limits)),
                clients: Mutex::new(Vec::new()),
                listeners: Mutex::new(Vec::new()),
                next_id: AtomicU64::new(1),
                thread_init: Mutex::new(None),
            }),
        }
    }

    /// Sets the hook every thread the server starts from now on calls first (see [`ThreadInit`]).
    pub fn set_thread_init(&self, init: ThreadInit) {
        *lock(&self.inner.thread_init) = Some(init);
    }

    /// Runs the thread hook, if any, in the calling thread.
    fn init_thread(&self, name: &str) {
        let init = lock(&self.inner.thread_init).clone();
        if let Some(f) = init {
            f(name);
        }
    }

    /// A protocol engine without a socket (for tests and custom transports).
    pub fn session(&self) -> QmpSession {
        QmpSession::new(Arc::clone(&self.inner.core))
    }

    /// Runs one HMP line, as `human-monitor-command` would (output uses `\n`).
    pub fn hmp_command(&self, line: &str) -> String {
        self.inner.core.execute_hmp_line(line).output
    }

    /// Number of connected QMP clients.
    pub fn client_count(&self) -> usize {
        lock(&self.inner.clients).len()
    }

    /// Sends `event` to every client that completed capabilities negotiation.
    pub fn emit(&self, event: Event) {
        let line: Arc<str> = Arc::from(wire_line(&event.to_json()));
        let clients = lock(&self.inner.clients);
        for c in clients.iter() {
            if !c.negotiated.load(Ordering::Acquire) {
                continue;
            }
            if let Err(TrySendError::Full(_)) = c.tx.try_send(Arc::clone(&line)) {
                // It stopped reading: disconnect it rather than buffer without bound.
                if let Some(s) = &c.closer {
                    s.shutdown_conn();
                }
            }
        }
    }

    /// Starts a QMP monitor as described by a `-qmp` argument (see [`crate::parse_chardev_spec`]).
    pub fn listen_spec(&self, spec: &ChardevSpec) -> Result<(), ServerError> {
        self.listen(spec.endpoint.clone(), spec.server, spec.wait)
    }

    /// Starts a QMP monitor: listen on `endpoint` (`server`), or connect to it. With `server`
    /// and `wait`, returns only once the first client has connected (QEMU's default).
    pub fn listen(&self, endpoint: Endpoint, server: bool, wait: bool) -> Result<(), ServerError> {
        self.start(Protocol::Qmp, endpoint, server, wait)
    }

    /// Starts an HMP monitor (`-monitor ...`), same endpoint rules as [`Self::listen`].
    pub fn listen_hmp(
        &self,
        endpoint: Endpoint,
        server: bool,
        wait: bool,
    ) -> Result<(), ServerError> {
        self.start(Protocol::Hmp, endpoint, server, wait)
    }

    /// Serves one QMP conversation over `reader`/`writer` until end of input; blocks.
    pub fn serve_qmp(&self, reader: impl Read, writer: impl Write + Send + 'static) {
        let writer: Box<dyn Write + Send> = Box::new(writer);
        self.serve_qmp_inner(reader, writer, None);
    }

    /// Serves one HMP conversation over `reader`/`writer` until end of input or `quit`; blocks.
    pub fn serve_hmp(&self, reader: impl Read, writer: impl Write) -> io::Result<()> {
        crate::core::run_hmp_session(&self.inner.core, reader, writer)
    }

    /// Stops all listeners (removing their Unix socket files) and disconnects all clients.
    pub fn shutdown(&self) {
        let listeners: Vec<ListenerEntry> = lock(&self.inner.listeners).drain(..).collect();
        for l in listeners {
            l.stop.store(true, Ordering::Release);
            // Wake the blocked accept() with a throw-away connection.
            match &l.endpoint {
                Endpoint::Unix(p) => {
                    let _ = UnixStream::connect(p);
                    let _ = std::fs::remove_file(p);
                }
                Endpoint::Tcp(h, port) => {
                    let host = if h.is_empty() {
                        "127.0.0.1"
                    } else {
                        h.as_str()
                    };
                    let _ = TcpStream::connect((host, *port));
                }
                Endpoint::Stdio => {}
            }
        }
        for c in lock(&self.inner.clients).iter() {
            if let Some(s) = &c.closer {
                s.shutdown_conn();
            }
        }
    }

    fn start(
        &self,
        proto: Protocol,
        endpoint: Endpoint,
        server: bool,
        wait: bool,
    ) -> Result<(), ServerError> {
        let io_err = |action, source| ServerError::Io {
            action,
            endpoint: endpoint.to_string(),
            source,
        };
        match (&endpoint, server) {
            (Endpoint::Stdio, _) => {
                let this = self.clone();
                thread::Builder::new()
                    .name("monitor-stdio".into())
                    .spawn(move || {
                        this.init_thread("monitor-stdio");
                        match proto {
                            Protocol::Qmp => this.serve_qmp(io::stdin(), io::stdout()),
                            Protocol::Hmp => {
                                let _ = this.serve_hmp(io::stdin(), io::stdout());
                            }
                        }
                    })
                    .map_err(|e| io_err("start a thread for", e))?;
                Ok(())
            }
            (Endpoint::Unix(path), false) => {
                let s = UnixStream::connect(path).map_err(|e| io_err("connect to", e))?;
                self.spawn_conn(proto, Box::new(s))
                    .map_err(|e| io_err("start a thread for", e))
            }
            (Endpoint::Tcp(h, p), false) => {
                let s =
                    TcpStream::connect((h.as_str(), *p)).map_err(|e| io_err("connect to", e))?;
                self.spawn_conn(proto, Box::new(s))
                    .map_err(|e| io_err("start a thread for", e))
            }
            (Endpoint::Unix(path), true) => {
                // QEMU unlinks a stale socket file before binding.
                if let Ok(meta) = std::fs::symlink_metadata(path) {
                    use std::os::unix::fs::FileTypeExt;
                    if meta.file_type().is_socket() {
                        let _ = std::fs::remove_file(path);
                    }
                }
                let l = UnixListener::bind(path).map_err(|e| io_err("listen on", e))?;
                let stop = self.register_listener(endpoint.clone());
                self.accept_loop(proto, wait, stop, move || {
                    l.accept().map(|(s, _)| Box::new(s) as Box<dyn Conn>)
                })
                .map_err(|(action, e)| io_err(action, e))
            }
            (Endpoint::Tcp(h, p), true) => {
                let host = if h.is_empty() { "0.0.0.0" } else { h.as_str() };
                let l = TcpListener::bind((host, *p)).map_err(|e| io_err("listen on", e))?;
                // Record the real port (port 0 = any free port).
                let port = l.local_addr().map(|a| a.port()).unwrap_or(*p);
                let stop = self.register_listener(Endpoint::Tcp(h.clone(), port));
                self.accept_loop(proto, wait, stop, move || {
                    l.accept().map(|(s, _)| Box::new(s) as Box<dyn Conn>)
                })
                .map_err(|(action, e)| io_err(action, e))
            }
        }
    }

    /// Serves the connections `accept` yields: the first one before returning if `wait`
    /// (QEMU's `wait=on`), then the rest on a thread until `stop` is set.
    fn accept_loop(
        &self,
        proto: Protocol,
        wait: bool,
        stop: Arc<AtomicBool>,
        mut accept: impl FnMut() -> io::Result<Box<dyn Conn>> + Send + 'static,
    ) -> Result<(), (&'static str, io::Error)> {
        if wait {
            let s = accept().map_err(|e| ("accept on", e))?;
            self.spawn_conn(proto, s)
                .map_err(|e| ("start a thread for", e))?;
        }
        let this = self.clone();
        thread::Builder::new()
            .name("monitor-accept".into())
            .spawn(move || {
                this.init_thread("monitor-accept");
                loop {
                    let s = accept();
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    match s {
                        Ok(s) => {
                            let _ = this.spawn_conn(proto, s);
                        }
                        // e.g. out of file descriptors: do not spin on it.
                        Err(_) => thread::sleep(std::time::Duration::from_millis(10)),
                    }
                }
            })
            .map_err(|e| ("start a thread for", e))?;
        Ok(())
    }

    /// The TCP ports of the TCP listeners (useful with port 0).
    pub fn tcp_ports(&self) -> Vec<u16> {
        lock(&self.inner.listeners)
            .iter()
            .filter_map(|l| match l.endpoint {
                Endpoint::Tcp(_, p) => Some(p),
                _ => None,
            })
            .collect()
    }

    fn register_listener(&self, endpoint: Endpoint) -> Arc<AtomicBool> {
        let stop = Arc::new(AtomicBool::new(false));
        lock(&self.inner.listeners).push(ListenerEntry {
            endpoint,
            stop: Arc::clone(&stop),
        });
        stop
    }

    fn spawn_conn(&self, proto: Protocol, conn: Box<dyn Conn>) -> io::Result<()> {
        let this = self.clone();
        thread::Builder::new()
            .name("monitor-client".into())
            .spawn(move || {
                this.init_thread("monitor-client");
                this.serve_conn(proto, conn);
            })?;
        Ok(())
    }

    fn serve_conn(&self, proto: Protocol, conn: Box<dyn Conn>) {
        match proto {
            Protocol::Qmp => {
                let (reader, writer, closer) = match (conn.try_clone_conn(), conn.try_clone_conn())
                {
                    (Ok(w), Ok(c)) => (conn, w, c),
                    _ => return conn.shutdown_conn(),
                };
                let writer: Box<dyn Write + Send> = Box::new(writer);
                self.serve_qmp_inner(reader, writer, Some(closer));
            }
            Protocol::Hmp => {
                let mut conn = conn;
                if let Ok(w) = conn.try_clone_conn() {
                    let _ = self.serve_hmp(&mut conn, w);
                }
                conn.shutdown_conn();
            }
        }
    }

    fn serve_qmp_inner(
        &self,
        mut reader: impl Read,
        writer: Box<dyn Write + Send>,
        closer: Option<Box<dyn Conn>>,
    ) {
        let (tx, rx) = sync_channel::<Arc<str>>(CLIENT_QUEUE);
        let writer_closer = closer.as_ref().and_then(|c| c.try_clone_conn().ok());
        let init = lock(&self.inner.thread_init).clone();
        let writer_thread = thread::Builder::new()
            .name("monitor-writer".into())
            .spawn(move || {
                if let Some(f) = init {
                    f("monitor-writer");
                }
                write_loop(rx, writer, writer_closer)
            });
        let mut session = QmpSession::new(Arc::clone(&self.inner.core));
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.clients).push(Client {
            id,
            negotiated: session.negotiated_flag(),
            tx: tx.clone(),
            closer: closer.as_ref().and_then(|c| c.try_clone_conn().ok()),
        });
        let greeting: Arc<str> = Arc::from(wire_line(&session.greeting()));
        let mut alive = tx.send(greeting).is_ok();
        let mut buf = vec![0u8; 16 * 1024];
        while alive {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            session.feed_with(&buf[..n], |r| {
                if alive && tx.send(Arc::from(wire_line(&r))).is_err() {
                    alive = false;
                }
            });
        }
        lock(&self.inner.clients).retain(|c| c.id != id);
        drop(tx);
        if let Ok(t) = writer_thread {
            let _ = t.join();
        }
        if let Some(c) = closer {
            c.shutdown_conn();
        }
    }
}

fn write_loop(rx: Receiver<Arc<str>>, mut w: Box<dyn Write + Send>, closer: Option<Box<dyn Conn>>) {
    for line in rx {
        if w.write_all(line.as_bytes())
            .and_then(|()| w.flush())
            .is_err()
        {
            // The peer is gone: make the reader side notice too.
            if let Some(c) = &closer {
                c.shutdown_conn();
            }
            break;
        }
    }
}
