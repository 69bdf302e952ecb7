//! Sockets and threads: listeners, and two threads per client (one reading, one writing).
//!
//! Same shape as pmvm's QMP server: std threads, no async runtime, bounded everything. The
//! reader feeds a [`Session`] and hands key and pointer events to the [`Display`]; the writer
//! sends handshake bytes and, when the client has asked for one, builds an update from the
//! display's framebuffer and writes it. A client that stops reading blocks only its own writer,
//! and because updates are built only when the previous one has been written, it costs at most
//! one update's worth of memory however long it sleeps (its requests and the framebuffer's dirty
//! tiles just accumulate).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use crate::error::ServerError;
use crate::framebuffer::Framebuffer;
use crate::keymap::{ConsoleSwitch, KeyAction, Scancode, keysym_to_set1};
use crate::listen::{Listen, Share, VncSpec};
use crate::session::{ClientEvent, SEC_VNC_AUTH, Session, SessionConfig, Version};
use crate::websocket::{WsReader, WsWriter, server_handshake};

/// A key event for the VMM, with the PS/2 key when one is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyEvent {
    /// Pressed or released.
    pub down: bool,
    /// X11 keysym as sent by the client.
    pub keysym: u32,
    /// The set 1 key: from the client's scancode (QEMU extension) or the keysym table.
    pub scancode: Option<Scancode>,
}

/// What the VMM provides: the picture, and somewhere for input to go. Called from client
/// threads, so implementations lock internally.
pub trait Display: Send + Sync + 'static {
    /// Runs `f` on the framebuffer clients should see. Called whenever a client wants an update
    /// (at most every refresh interval per client, or at once after [`VncServer::notify`]); a
    /// VMM with a framebuffer in guest memory refreshes it here with
    /// [`Framebuffer::update_from`], which marks only the tiles that changed.
    fn with_framebuffer(&self, f: &mut dyn FnMut(&Framebuffer));
    /// A key for the guest (Ctrl-Alt-N console switches are filtered out first).
    fn key_event(&self, ev: KeyEvent);
    /// Pointer position and buttons (bit 0 left, 1 middle, 2 right, 3/4 wheel up/down).
    fn pointer_event(&self, buttons: u8, x: u16, y: u16);
    /// The client's clipboard (Latin-1). Ignored by default.
    fn cut_text(&self, _text: &[u8]) {}
    /// Ctrl-Alt-`n`: show console `n` (QEMU: 1 graphics, 2 monitor, 3 serial).
    fn console_switch(&self, _n: u8) {}
}

/// How the server behaves.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Desktop name in ServerInit.
    pub name: String,
    /// Require VNC Authentication (`password=on`); until a password is set, nobody gets in.
    pub password_required: bool,
    /// Exclusive-access policy.
    pub share: Share,
    /// Most clients at once.
    pub connections: usize,
    /// Longest clipboard accepted from a client.
    pub max_cut_text: usize,
    /// How often a waiting client's writer looks for changes without being notified.
    pub refresh: Duration,
    /// How long a client may take to finish the handshake.
    pub handshake_timeout: Duration,
}

impl ServerOptions {
    /// The options a parsed `-vnc` argument sets (the rest default).
    pub fn for_spec(spec: &VncSpec) -> ServerOptions {
        ServerOptions {
            password_required: spec.password,
            share: spec.share,
            connections: spec.connections,
            ..ServerOptions::default()
        }
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            name: "pmvm".into(),
            password_required: false,
            share: Share::AllowExclusive,
            connections: 32,
            max_cut_text: 1 << 20,
            refresh: Duration::from_millis(30),
            handshake_timeout: Duration::from_secs(30),
        }
    }
}

/// Called first thing in every thread the server starts, with the thread's name (a VMM installs
/// its seccomp filter there; this crate knows nothing of it). Same shape as `qmp::ThreadInit`.
pub type ThreadInit = Arc<dyn Fn(&str) + Send + Sync>;

/// A connected client, for `info vnc` / `query-vnc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    /// Server-assigned id.
    pub id: u64,
    /// Peer host (`""` for Unix sockets).
    pub host: String,
    /// Peer port as a string (QMP's `service`).
    pub service: String,
    /// `ipv4`, `ipv6` or `unix`.
    pub family: &'static str,
    /// Came in through the WebSocket listener.
    pub websocket: bool,
    /// `none` or `vnc` (once the security type is known).
    pub auth: &'static str,
    /// Finished the handshake.
    pub ready: bool,
    /// Negotiated protocol version.
    pub version: Option<Version>,
}

/// A connected byte stream we can clone, time out and shut down.
trait Conn: Read + Write + Send + Sync + 'static {
    fn try_clone_conn(&self) -> io::Result<Box<dyn Conn>>;
    fn shutdown_conn(&self);
    fn set_timeout(&self, t: Option<Duration>);
    fn peer(&self) -> Option<(String, String, &'static str)>;
}

impl Conn for UnixStream {
    fn peer(&self) -> Option<(String, String, &'static str)> {
        Some((String::new(), String::new(), "unix"))
    }
    fn try_clone_conn(&self) -> io::Result<Box<dyn Conn>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn shutdown_conn(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
    fn set_timeout(&self, t: Option<Duration>) {
        let _ = self.set_read_timeout(t);
    }
}

impl Conn for TcpStream {
    fn peer(&self) -> Option<(String, String, &'static str)> {
        let a = self.peer_addr().ok()?;
        let family = if a.is_ipv4() { "ipv4" } else { "ipv6" };
        Some((a.ip().to_string(), a.port().to_string(), family))
    }
    fn try_clone_conn(&self) -> io::Result<Box<dyn Conn>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn shutdown_conn(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
    fn set_timeout(&self, t: Option<Duration>) {
        let _ = self.set_read_timeout(t);
    }
}

type AcceptFn = Box<dyn FnMut() -> io::Result<Box<dyn Conn>> + Send>;

struct ClientShared {
    session: Mutex<Session>,
    wake: Condvar,
    done: AtomicBool,
    closer: Box<dyn Conn>,
}

struct Client {
    info: ClientInfo,
    shared: Arc<ClientShared>,
}

struct ListenerEntry {
    addr: Listen,
    stop: Arc<AtomicBool>,
}

struct Inner {
    display: Arc<dyn Display>,
    opts: ServerOptions,
    password: Mutex<Option<Vec<u8>>>,
    clients: Mutex<Vec<Client>>,
    listeners: Mutex<Vec<ListenerEntry>>,
    next_id: AtomicU64,
    thread_init: Mutex<Option<ThreadInit>>,
}

/// The VNC server. Cheap to clone; clones share clients and listeners.
#[derive(Clone)]
pub struct VncServer {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn random_challenge() -> [u8; 16] {
    let mut c = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut c))
        .is_err()
    {
        // No urandom: still differ per connection, though predictably; VNC auth is weak anyway.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        c.copy_from_slice(&t.to_le_bytes());
    }
    c
}

impl VncServer {
    /// A server showing `display`.
    pub fn new(display: Arc<dyn Display>, opts: ServerOptions) -> VncServer {
        VncServer {
            inner: Arc::new(Inner {
                display,
                opts,
                password: Mutex::new(None),
                clients: Mutex::new(Vec::new()),
                listeners: Mutex::new(Vec::new()),
                next_id: AtomicU64::new(1),
                thread_init: Mutex::new(None),
            }),
        }
    }

    /// Sets the hook every thread the server starts from now on calls first (see
    /// [`ThreadInit`]); set it before [`VncServer::listen`] / [`VncServer::listen_spec`].
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

    /// A server configured and listening as a parsed `-vnc` argument says.
    pub fn from_spec(display: Arc<dyn Display>, spec: &VncSpec) -> Result<VncServer, ServerError> {
        let s = VncServer::new(display, ServerOptions::for_spec(spec));
        s.listen_spec(spec)?;
        Ok(s)
    }

    /// Starts the listeners a parsed `-vnc` argument asks for (after [`VncServer::new`] with
    /// [`ServerOptions::for_spec`] and, if wanted, [`VncServer::set_thread_init`]).
    pub fn listen_spec(&self, spec: &VncSpec) -> Result<(), ServerError> {
        let s = self;
        if let Some(l) = &spec.listen {
            let mut result = s.listen(l.clone());
            // `to=L`: try the following displays while the port is taken.
            if let (Listen::Tcp(h, p), Some(to)) = (l, spec.to) {
                let mut port = *p;
                while result.is_err() && port < crate::listen::VNC_BASE_PORT + to {
                    port += 1;
                    result = s.listen(Listen::Tcp(h.clone(), port));
                }
            }
            result?;
        }
        if let Some(ws) = &spec.websocket {
            s.listen_websocket(ws.clone())?;
        }
        Ok(())
    }

    /// Sets (or with `None` clears) the VNC password. Only the first 8 bytes count. With a
    /// password set, new clients must authenticate even without `password=on`.
    pub fn set_password(&self, password: Option<&str>) {
        *lock(&self.inner.password) = password.map(|p| p.as_bytes().to_vec());
    }

    /// Listens for RFB clients; returns the bound address (useful with port 0).
    pub fn listen(&self, addr: Listen) -> Result<Listen, ServerError> {
        self.start(addr, false)
    }

    /// Listens for noVNC (RFB over WebSocket) clients.
    pub fn listen_websocket(&self, addr: Listen) -> Result<Listen, ServerError> {
        if matches!(addr, Listen::Unix(_)) {
            return Err(ServerError::Unsupported(
                "websocket on a Unix socket".into(),
            ));
        }
        self.start(addr, true)
    }

    /// Connected clients, for `info vnc` / `query-vnc`.
    pub fn clients(&self) -> Vec<ClientInfo> {
        lock(&self.inner.clients)
            .iter()
            .map(|c| {
                let s = lock(&c.shared.session);
                let mut info = c.info.clone();
                info.ready = s.is_ready();
                info.version = s.version();
                info.auth = if s.security() == SEC_VNC_AUTH {
                    "vnc"
                } else {
                    "none"
                };
                info
            })
            .collect()
    }

    /// Addresses being listened on.
    pub fn listeners(&self) -> Vec<Listen> {
        lock(&self.inner.listeners)
            .iter()
            .map(|l| l.addr.clone())
            .collect()
    }

    /// Tells client writers the framebuffer changed (they also poll every refresh interval).
    pub fn notify(&self) {
        for c in lock(&self.inner.clients).iter() {
            c.shared.wake.notify_all();
        }
    }

    /// Rings the bell on every client.
    pub fn bell(&self) {
        for c in lock(&self.inner.clients).iter() {
            lock(&c.shared.session).bell();
            c.shared.wake.notify_all();
        }
    }

    /// Puts `text` (Latin-1) on every client's clipboard.
    pub fn server_cut_text(&self, text: &[u8]) {
        for c in lock(&self.inner.clients).iter() {
            lock(&c.shared.session).server_cut_text(text);
            c.shared.wake.notify_all();
        }
    }

    /// Stops all listeners (removing Unix socket files) and disconnects all clients.
    pub fn shutdown(&self) {
        let listeners: Vec<ListenerEntry> = lock(&self.inner.listeners).drain(..).collect();
        for l in listeners {
            l.stop.store(true, Ordering::Release);
            // Wake the blocked accept() with a throw-away connection.
            match &l.addr {
                Listen::Unix(p) => {
                    let _ = UnixStream::connect(p);
                    let _ = std::fs::remove_file(p);
                }
                Listen::Tcp(h, port) => {
                    let host = if h.is_empty() || h == "0.0.0.0" {
                        "127.0.0.1"
                    } else {
                        h
                    };
                    let _ = TcpStream::connect((host, *port));
                }
            }
        }
        for c in lock(&self.inner.clients).iter() {
            close(&c.shared);
        }
    }

    fn start(&self, addr: Listen, websocket: bool) -> Result<Listen, ServerError> {
        let io_err = |what: String| move |source| ServerError::Io { what, source };
        let no_password =
            !self.inner.opts.password_required && lock(&self.inner.password).is_none();
        if addr.is_public() && no_password {
            eprintln!(
                "pmvm: warning: VNC server on {addr} is reachable from other hosts and has no \
                 password (add password=on and set one, or listen on 127.0.0.1)"
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (bound, accept): (Listen, AcceptFn) = match &addr {
            Listen::Tcp(h, port) => {
                let host = if h.is_empty() { "0.0.0.0" } else { h.as_str() };
                let l = TcpListener::bind((host, *port))
                    .map_err(io_err(format!("binding VNC to {addr}")))?;
                let port = l.local_addr().map(|a| a.port()).unwrap_or(*port);
                (
                    Listen::Tcp(h.clone(), port),
                    Box::new(move || {
                        let (s, _) = l.accept()?;
                        let _ = s.set_nodelay(true);
                        Ok(Box::new(s) as Box<dyn Conn>)
                    }),
                )
            }
            Listen::Unix(p) => {
                let _ = std::fs::remove_file(p);
                let l = UnixListener::bind(p).map_err(io_err(format!("binding VNC to {addr}")))?;
                (
                    addr.clone(),
                    Box::new(move || Ok(Box::new(l.accept()?.0) as Box<dyn Conn>)),
                )
            }
        };
        lock(&self.inner.listeners).push(ListenerEntry {
            addr: bound.clone(),
            stop: Arc::clone(&stop),
        });
        let this = self.clone();
        let mut accept = accept;
        thread::Builder::new()
            .name("vnc-listen".into())
            .spawn(move || {
                this.init_thread("vnc-listen");
                while !stop.load(Ordering::Acquire) {
                    match accept() {
                        Ok(_) if stop.load(Ordering::Acquire) => break,
                        Ok(conn) => {
                            let _ = this.spawn_client(conn, websocket);
                        }
                        Err(_) => thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
            .map_err(io_err("spawning the VNC listener".into()))?;
        Ok(bound)
    }

    fn spawn_client(&self, conn: Box<dyn Conn>, websocket: bool) -> io::Result<()> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (host, service, family) = conn.peer().unwrap_or_default();
        let info = ClientInfo {
            id,
            host,
            service,
            family: if family.is_empty() { "unix" } else { family },
            websocket,
            auth: "none",
            ready: false,
            version: None,
        };
        let closer = conn.try_clone_conn()?;
        let writer = conn.try_clone_conn()?;
        let this = self.clone();
        thread::Builder::new()
            .name(format!("vnc-client-{id}"))
            .spawn(move || {
                this.init_thread("vnc-client");
                this.run_client(conn, writer, closer, info)
            })?;
        Ok(())
    }

    fn run_client(
        &self,
        mut conn: Box<dyn Conn>,
        mut writer: Box<dyn Conn>,
        closer: Box<dyn Conn>,
        info: ClientInfo,
    ) {
        let opts = &self.inner.opts;
        conn.set_timeout(Some(opts.handshake_timeout));
        let (mut reader, writer): (Box<dyn Read + Send>, Box<dyn Write + Send>) = if info.websocket
        {
            if server_handshake(&mut conn).is_err() {
                conn.shutdown_conn();
                return;
            }
            (
                Box::new(WsReader::new(conn)),
                Box::new(WsWriter::new(writer)),
            )
        } else {
            let _ = writer.flush();
            (Box::new(conn), writer)
        };
        let mut size = (0, 0);
        self.inner
            .display
            .with_framebuffer(&mut |fb| size = (fb.width(), fb.height()));
        let password = lock(&self.inner.password).clone();
        let count = lock(&self.inner.clients).len();
        let refuse = if count >= opts.connections {
            Some("too many VNC clients".to_string())
        } else if opts.password_required && password.is_none() {
            Some("no VNC password is set".to_string())
        } else {
            None
        };
        let cfg = SessionConfig {
            name: opts.name.clone(),
            password,
            challenge: random_challenge(),
            max_cut_text: opts.max_cut_text,
            refuse,
        };
        let shared = Arc::new(ClientShared {
            session: Mutex::new(Session::new(cfg, size.0, size.1)),
            wake: Condvar::new(),
            done: AtomicBool::new(false),
            closer,
        });
        let id = info.id;
        lock(&self.inner.clients).push(Client {
            info,
            shared: Arc::clone(&shared),
        });
        let w = {
            let this = self.clone();
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("vnc-write-{id}"))
                .spawn(move || {
                    this.init_thread("vnc-write");
                    this.write_loop(&shared, writer)
                })
        };
        if let Ok(w) = w {
            self.read_loop(&shared, &mut reader, id);
            // Let the writer flush what the session queued (a refusal reason, say), but do not
            // wait long for a client that does not read.
            shared.done.store(true, Ordering::Release);
            shared.wake.notify_all();
            for _ in 0..100 {
                if w.is_finished() {
                    break;
                }
                thread::sleep(Duration::from_millis(10));
            }
            close(&shared);
            let _ = w.join();
        }
        close(&shared);
        lock(&self.inner.clients).retain(|c| c.info.id != id);
    }

    fn read_loop(&self, shared: &ClientShared, reader: &mut dyn Read, id: u64) {
        let display = &self.inner.display;
        let mut keys = ConsoleSwitch::new();
        let mut buf = vec![0u8; 16384];
        while !shared.done.load(Ordering::Acquire) {
            let n = match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let result = lock(&shared.session).feed(&buf[..n]);
            shared.wake.notify_all();
            let Ok(events) = result else {
                // The writer flushes any reason queued by the session, then closes.
                break;
            };
            for ev in events {
                match ev {
                    ClientEvent::Ready { shared: share } => {
                        shared.closer.set_timeout(None);
                        if !self.on_ready(id, share) {
                            return;
                        }
                    }
                    ClientEvent::Key {
                        down,
                        keysym,
                        scancode,
                    } => match keys.key(keysym, down) {
                        KeyAction::Forward => display.key_event(KeyEvent {
                            down,
                            keysym,
                            scancode: scancode
                                .and_then(Scancode::from_qnum)
                                .or_else(|| keysym_to_set1(keysym)),
                        }),
                        KeyAction::Switch(n) => display.console_switch(n),
                        KeyAction::Swallow => {}
                    },
                    ClientEvent::Pointer { buttons, x, y } => display.pointer_event(buttons, x, y),
                    ClientEvent::CutText(t) => display.cut_text(&t),
                }
            }
        }
    }

    /// Applies the share policy when client `id` finishes its handshake; false: drop it.
    fn on_ready(&self, id: u64, shared: bool) -> bool {
        if shared {
            return true;
        }
        let clients = lock(&self.inner.clients);
        match self.inner.opts.share {
            Share::Ignore => true,
            Share::AllowExclusive => {
                for c in clients.iter().filter(|c| c.info.id != id) {
                    close(&c.shared);
                }
                true
            }
            Share::ForceShared => clients.len() <= 1,
        }
    }

    fn write_loop(&self, shared: &ClientShared, mut out: Box<dyn Write + Send>) {
        let refresh = self.inner.opts.refresh;
        loop {
            let mut s = lock(&shared.session);
            loop {
                if s.has_output() {
                    let bytes = s.take_output();
                    drop(s);
                    if out.write_all(&bytes).and_then(|_| out.flush()).is_err() {
                        close(shared);
                        return;
                    }
                    s = lock(&shared.session);
                    continue;
                }
                if shared.done.load(Ordering::Acquire) || s.is_closed() {
                    close(shared);
                    return;
                }
                if s.update_requested() {
                    break;
                }
                // Idle: the reader wakes us when a request or output arrives.
                s = shared
                    .wake
                    .wait_timeout(s, Duration::from_secs(1))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            drop(s);
            let mut update = None;
            self.inner
                .display
                .with_framebuffer(&mut |fb| update = lock(&shared.session).build_update(fb));
            match update {
                Some(u) => {
                    if out.write_all(&u).and_then(|_| out.flush()).is_err() {
                        close(shared);
                        return;
                    }
                }
                None => {
                    // Nothing changed yet: wait for a notify or the next refresh tick.
                    let s = lock(&shared.session);
                    let _ = shared.wake.wait_timeout(s, refresh);
                }
            }
        }
    }
}

fn close(shared: &ClientShared) {
    shared.done.store(true, Ordering::Release);
    shared.closer.shutdown_conn();
    shared.wake.notify_all();
}
