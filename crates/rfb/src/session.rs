//! The RFB protocol engine for one client, without any I/O (RFC 6143).
//!
//! Bytes from the client go in through [`Session::feed`], which returns what the client did
//! (keys, pointer, clipboard); bytes for the client come out of [`Session::take_output`] (the
//! handshake, bells, clipboard) and [`Session::build_update`] (framebuffer updates, made only
//! when the client has asked for one). Keeping sockets out makes the handshake, the hostile-input
//! rules and the update logic testable byte by byte and fuzzable.
//!
//! Bounds: input is parsed as it arrives and never buffered beyond one fixed-size message (a
//! clipboard longer than [`SessionConfig::max_cut_text`] is skipped without being stored);
//! output holds at most the handshake, one bell, one clipboard and one update, because update
//! requests are coalesced and updates are only built when the transport is ready to send.

use crate::auth::vnc_auth_check;
use crate::error::ProtocolError;
use crate::framebuffer::{Framebuffer, Rect};
use crate::pixel::PixelFormat;

/// Raw encoding.
pub const ENC_RAW: i32 = 0;
/// DesktopSize pseudo-encoding (RFC 6143 §7.8.2).
pub const ENC_DESKTOP_SIZE: i32 = -223;
/// QEMU Extended Key Event pseudo-encoding: key events also carry an XT scancode.
pub const ENC_QEMU_EXT_KEY: i32 = -258;

/// Security type None.
pub const SEC_NONE: u8 = 1;
/// Security type VNC Authentication.
pub const SEC_VNC_AUTH: u8 = 2;

/// Most rectangles in one update before they are merged into their bounding box.
const MAX_RECTS: usize = 4096;

/// Protocol version agreed with the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// RFB 3.3 (server picks the security type; no failure reasons).
    V3_3,
    /// RFB 3.7 (client picks; no SecurityResult for None).
    V3_7,
    /// RFB 3.8.
    V3_8,
}

/// How a session is set up.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Desktop name sent in ServerInit.
    pub name: String,
    /// Require VNC Authentication with this password (only 8 bytes count); `None`: no auth.
    pub password: Option<Vec<u8>>,
    /// The 16 random bytes to challenge with (the caller supplies randomness).
    pub challenge: [u8; 16],
    /// Longest ClientCutText kept; longer ones are skipped.
    pub max_cut_text: usize,
    /// Refuse the connection during the handshake with this reason (e.g. too many clients).
    pub refuse: Option<String>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            name: "pmvm".into(),
            password: None,
            challenge: [0; 16],
            max_cut_text: 1 << 20,
            refuse: None,
        }
    }
}

/// Something the client did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// Handshake finished; `shared` is the ClientInit flag (false: wants exclusive access).
    Ready {
        /// ClientInit shared-flag.
        shared: bool,
    },
    /// A key went down or up.
    Key {
        /// Pressed (true) or released.
        down: bool,
        /// X11 keysym.
        keysym: u32,
        /// With the QEMU extension: the XT scancode ("qnum": `0x80 | code` for E0 keys).
        scancode: Option<u32>,
    },
    /// Pointer position and button mask (bit 0 left, 1 middle, 2 right, 3/4 wheel).
    Pointer {
        /// Button mask.
        buttons: u8,
        /// X.
        x: u16,
        /// Y.
        y: u16,
    },
    /// The client's clipboard (Latin-1), at most `max_cut_text` bytes.
    CutText(Vec<u8>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Version,
    SecurityChoice,
    AuthResponse,
    ClientInit,
    Normal,
    Encodings { left: u16 },
    CutText { left: u32, keep: bool },
    Closed,
}

/// A pending FramebufferUpdateRequest (several coalesce into one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Request {
    incremental: bool,
    region: Rect,
}

/// One client's protocol state.
#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    state: State,
    version: Option<Version>,
    security: u8,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    ready: bool,
    shared: bool,
    format: PixelFormat,
    desktop_size: bool,
    ext_key: bool,
    ext_key_acked: bool,
    width: u16,
    height: u16,
    request: Option<Request>,
    fb_id: u64,
    fb_gen: u64,
    fb_size: (u16, u16),
    owed: Rect,
    cut: Vec<u8>,
    bell: bool,
    server_cut: Option<Vec<u8>>,
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn push_reason(out: &mut Vec<u8>, reason: &str) {
    let r = &reason.as_bytes()[..reason.len().min(1024)];
    out.extend_from_slice(&(r.len() as u32).to_be_bytes());
    out.extend_from_slice(r);
}

/// Parses a ProtocolVersion message into the version the server will speak. RFC 6143 §7.1.1:
/// other 3.x minors "should be interpreted as 3.3" (QEMU maps 3.4 and 3.5 so and refuses the
/// rest; we follow the RFC).
pub fn parse_version(msg: &[u8; 12]) -> Result<Version, ProtocolError> {
    let bad = || ProtocolError::BadVersion(String::from_utf8_lossy(msg).into_owned());
    if &msg[..4] != b"RFB " || msg[7] != b'.' || msg[11] != b'\n' {
        return Err(bad());
    }
    let num = |b: &[u8]| -> Option<u32> {
        b.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let (major, minor) = (
        num(&msg[4..7]).ok_or_else(bad)?,
        num(&msg[8..11]).ok_or_else(bad)?,
    );
    if major != 3 {
        return Err(bad());
    }
    Ok(match minor {
        7 => Version::V3_7,
        8 => Version::V3_8,
        _ => Version::V3_3,
    })
}

impl Session {
    /// A session for a freshly accepted client, showing a `width` x `height` screen. The
    /// server's ProtocolVersion is already queued in the output.
    pub fn new(cfg: SessionConfig, width: u16, height: u16) -> Session {
        let security = if cfg.password.is_some() {
            SEC_VNC_AUTH
        } else {
            SEC_NONE
        };
        Session {
            cfg,
            state: State::Version,
            version: None,
            security,
            inbuf: Vec::new(),
            out: b"RFB 003.008\n".to_vec(),
            ready: false,
            shared: true,
            format: PixelFormat::XRGB8888,
            desktop_size: false,
            ext_key: false,
            ext_key_acked: false,
            width,
            height,
            request: None,
            fb_id: 0,
            fb_gen: 0,
            fb_size: (0, 0),
            owed: Rect::default(),
            cut: Vec::new(),
            bell: false,
            server_cut: None,
        }
    }

    /// The negotiated version, once known.
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// The security type in use ([`SEC_NONE`] or [`SEC_VNC_AUTH`]).
    pub fn security(&self) -> u8 {
        self.security
    }

    /// True once ServerInit has been sent.
    pub fn is_ready(&self) -> bool {
        self.ready && self.state != State::Closed
    }

    /// True after a protocol error: nothing more will be parsed.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The ClientInit shared flag.
    pub fn shared(&self) -> bool {
        self.shared
    }

    /// The client's pixel format.
    pub fn pixel_format(&self) -> PixelFormat {
        self.format
    }

    /// The framebuffer size as the client knows it.
    pub fn size(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    /// True if the client asked for an update that has not been sent yet.
    pub fn update_requested(&self) -> bool {
        self.is_ready() && self.request.is_some()
    }

    /// True if [`Self::take_output`] has something.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty() || (self.is_ready() && (self.bell || self.server_cut.is_some()))
    }

    /// True if an update would be sent for `fb` now (requested, and non-incremental or changed).
    pub fn wants_update(&self, fb: &Framebuffer) -> bool {
        match self.request {
            Some(r) if self.is_ready() => {
                let size = (fb.width(), fb.height());
                !r.incremental
                    || fb.id() != self.fb_id
                    || size != self.fb_size
                    || (self.desktop_size && size != (self.width, self.height))
                    || fb.changed_since(self.fb_gen)
                    || intersect(&self.owed, &r.region).is_some()
            }
            _ => false,
        }
    }

    /// Sets the screen size before the handshake completes (ServerInit will carry it). After
    /// that, size changes are noticed by [`Self::build_update`].
    pub fn set_initial_size(&mut self, width: u16, height: u16) {
        if !self.ready {
            self.width = width;
            self.height = height;
        }
    }

    /// Queues a Bell (several coalesce into one).
    pub fn bell(&mut self) {
        self.bell = true;
    }

    /// Queues ServerCutText (Latin-1), replacing any not yet sent; truncated to `max_cut_text`.
    pub fn server_cut_text(&mut self, text: &[u8]) {
        let n = text.len().min(self.cfg.max_cut_text);
        self.server_cut = Some(text[..n].to_vec());
    }

    /// Takes the bytes queued for the client (handshake replies, bell, clipboard).
    pub fn take_output(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.out);
        if self.is_ready() {
            if std::mem::take(&mut self.bell) {
                out.push(2);
            }
            if let Some(t) = self.server_cut.take() {
                out.extend_from_slice(&[3, 0, 0, 0]);
                out.extend_from_slice(&(t.len() as u32).to_be_bytes());
                out.extend_from_slice(&t);
            }
        }
        out
    }

    /// Parses client bytes. On error the session is closed; output queued so far (e.g. a
    /// failure reason) should still be sent before the connection is dropped.
    pub fn feed(&mut self, data: &[u8]) -> Result<Vec<ClientEvent>, ProtocolError> {
        if self.state == State::Closed {
            return Err(ProtocolError::Closed);
        }
        let mut events = Vec::new();
        self.inbuf.extend_from_slice(data);
        let mut pos = 0;
        let r = self.parse(&mut pos, &mut events);
        self.inbuf.drain(..pos.min(self.inbuf.len()));
        if r.is_err() {
            self.state = State::Closed;
            self.inbuf = Vec::new();
        }
        r.map(|_| events)
    }

    fn parse(&mut self, pos: &mut usize, ev: &mut Vec<ClientEvent>) -> Result<(), ProtocolError> {
        loop {
            let avail = &self.inbuf[*pos..];
            let need = match self.state {
                State::Version => 12,
                State::SecurityChoice | State::ClientInit => 1,
                State::AuthResponse => 16,
                State::Encodings { .. } => 4,
                State::CutText { left: 0, .. } => 0,
                State::CutText { .. } => 1,
                State::Closed => return Err(ProtocolError::Closed),
                State::Normal => match avail.first() {
                    None => return Ok(()),
                    Some(0) => 20,
                    Some(2) => 4,
                    Some(3) => 10,
                    Some(4) => 8,
                    Some(5) => 6,
                    Some(6) => 8,
                    Some(255) => match avail.get(1) {
                        None => 2,
                        Some(0) => 12,
                        Some(&sub) => return Err(ProtocolError::UnknownQemuMessage(sub)),
                    },
                    Some(&t) => return Err(ProtocolError::UnknownMessage(t)),
                },
            };
            if avail.len() < need {
                return Ok(());
            }
            let mut buf = [0u8; 20];
            buf[..need].copy_from_slice(&avail[..need]);
            let msg = &buf[..need];
            let mut used = need;
            match self.state {
                State::Version => self.on_version(msg)?,
                State::SecurityChoice => self.on_security_choice(msg[0])?,
                State::AuthResponse => self.on_auth_response(msg)?,
                State::ClientInit => {
                    self.shared = msg[0] != 0;
                    self.send_server_init();
                    ev.push(ClientEvent::Ready {
                        shared: self.shared,
                    });
                }
                State::Encodings { left } => {
                    self.on_encoding(be32(msg) as i32);
                    if left > 1 {
                        self.state = State::Encodings { left: left - 1 };
                    } else {
                        self.encodings_done();
                    }
                }
                State::CutText { left, keep } => {
                    // Stream the text through: take what is here, never more than `left`.
                    let take = avail.len().min(left as usize);
                    if keep {
                        self.cut.extend_from_slice(&avail[..take]);
                    }
                    used = take;
                    self.state = State::CutText {
                        left: left - take as u32,
                        keep,
                    };
                    if take as u32 == left {
                        self.finish_cut(ev);
                    }
                }
                State::Normal => self.on_message(msg, ev)?,
                State::Closed => return Err(ProtocolError::Closed),
            }
            *pos += used;
        }
    }

    fn finish_cut(&mut self, ev: &mut Vec<ClientEvent>) {
        if let State::CutText { keep, .. } = self.state
            && keep
        {
            ev.push(ClientEvent::CutText(std::mem::take(&mut self.cut)));
        }
        self.state = State::Normal;
    }

    fn refuse(&mut self, version: Version, reason: &str) {
        // A server that will not talk sends "zero security types" plus a reason.
        match version {
            Version::V3_3 => self.out.extend_from_slice(&0u32.to_be_bytes()),
            _ => self.out.push(0),
        }
        push_reason(&mut self.out, reason);
    }

    fn on_version(&mut self, msg: &[u8]) -> Result<(), ProtocolError> {
        let mut m = [0u8; 12];
        m.copy_from_slice(msg);
        let v = parse_version(&m)?;
        self.version = Some(v);
        if let Some(reason) = self.cfg.refuse.clone() {
            self.refuse(v, &reason);
            return Err(ProtocolError::Refused(reason));
        }
        if v == Version::V3_3 {
            self.out
                .extend_from_slice(&u32::from(self.security).to_be_bytes());
            if self.security == SEC_VNC_AUTH {
                self.out.extend_from_slice(&self.cfg.challenge);
                self.state = State::AuthResponse;
            } else {
                self.state = State::ClientInit;
            }
        } else {
            self.out.extend_from_slice(&[1, self.security]);
            self.state = State::SecurityChoice;
        }
        Ok(())
    }

    fn on_security_choice(&mut self, choice: u8) -> Result<(), ProtocolError> {
        let v = self.version.unwrap_or(Version::V3_8);
        if choice != self.security {
            if v == Version::V3_8 {
                self.out.extend_from_slice(&1u32.to_be_bytes());
                push_reason(&mut self.out, "security type not offered");
            }
            return Err(ProtocolError::BadSecurityType(choice));
        }
        if self.security == SEC_VNC_AUTH {
            self.out.extend_from_slice(&self.cfg.challenge);
            self.state = State::AuthResponse;
        } else {
            if v == Version::V3_8 {
                self.out.extend_from_slice(&0u32.to_be_bytes());
            }
            self.state = State::ClientInit;
        }
        Ok(())
    }

    fn on_auth_response(&mut self, msg: &[u8]) -> Result<(), ProtocolError> {
        let mut resp = [0u8; 16];
        resp.copy_from_slice(msg);
        let pw = self.cfg.password.as_deref().unwrap_or_default();
        if vnc_auth_check(pw, &self.cfg.challenge, &resp) {
            self.out.extend_from_slice(&0u32.to_be_bytes());
            self.state = State::ClientInit;
            Ok(())
        } else {
            self.out.extend_from_slice(&1u32.to_be_bytes());
            if self.version == Some(Version::V3_8) {
                push_reason(&mut self.out, "authentication failed");
            }
            Err(ProtocolError::AuthFailed)
        }
    }

    fn send_server_init(&mut self) {
        self.out.extend_from_slice(&self.width.to_be_bytes());
        self.out.extend_from_slice(&self.height.to_be_bytes());
        self.out
            .extend_from_slice(&PixelFormat::XRGB8888.to_bytes());
        let name = &self.cfg.name.as_bytes()[..self.cfg.name.len().min(255)];
        self.out
            .extend_from_slice(&(name.len() as u32).to_be_bytes());
        self.out.extend_from_slice(name);
        self.ready = true;
        self.state = State::Normal;
    }

    fn on_encoding(&mut self, enc: i32) {
        match enc {
            ENC_DESKTOP_SIZE => self.desktop_size = true,
            ENC_QEMU_EXT_KEY => self.ext_key = true,
            _ => {} // Raw is always available; anything else is ignored.
        }
    }

    fn on_message(&mut self, m: &[u8], ev: &mut Vec<ClientEvent>) -> Result<(), ProtocolError> {
        match m[0] {
            0 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(&m[4..20]);
                let f = PixelFormat::from_bytes(&b);
                f.validate()?;
                self.format = f;
                // Pixels already on the client's screen are in the old format: resend all.
                self.fb_id = 0;
            }
            2 => {
                // A new list replaces the old one.
                self.desktop_size = false;
                self.ext_key = false;
                let n = be16(&m[2..4]);
                if n > 0 {
                    self.state = State::Encodings { left: n };
                } else {
                    self.encodings_done();
                }
            }
            3 => {
                let region = Rect::new(be16(&m[2..]), be16(&m[4..]), be16(&m[6..]), be16(&m[8..]))
                    .clip(self.width, self.height);
                let req = Request {
                    incremental: m[1] != 0,
                    region,
                };
                self.request = Some(match self.request {
                    Some(old) => Request {
                        incremental: old.incremental && req.incremental,
                        region: old.region.union(&req.region),
                    },
                    None => req,
                });
            }
            4 => ev.push(ClientEvent::Key {
                down: m[1] != 0,
                keysym: be32(&m[4..]),
                scancode: None,
            }),
            5 => ev.push(ClientEvent::Pointer {
                buttons: m[1],
                x: be16(&m[2..]),
                y: be16(&m[4..]),
            }),
            6 => {
                let len = be32(&m[4..]);
                let keep = len as usize <= self.cfg.max_cut_text;
                self.cut = Vec::new();
                self.state = State::CutText { left: len, keep };
                if len == 0 {
                    self.finish_cut(ev);
                }
            }
            _ => {
                // 255/0: QEMU Extended Key Event.
                ev.push(ClientEvent::Key {
                    down: be16(&m[2..]) != 0,
                    keysym: be32(&m[4..]),
                    scancode: Some(be32(&m[8..])),
                });
            }
        }
        Ok(())
    }

    fn encodings_done(&mut self) {
        self.state = State::Normal;
        if self.ext_key && !self.ext_key_acked {
            // QEMU confirms the extension at once with a screen-sized pseudo-rectangle.
            self.ext_key_acked = true;
            self.out.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
            self.out.extend_from_slice(&self.width.to_be_bytes());
            self.out.extend_from_slice(&self.height.to_be_bytes());
            self.out.extend_from_slice(&ENC_QEMU_EXT_KEY.to_be_bytes());
        }
    }

    /// Builds the FramebufferUpdate answering the pending request, if one is due: the whole
    /// requested region for a non-incremental request (or a new framebuffer or pixel format),
    /// otherwise only the tiles that changed since this client's last update. A size change is
    /// announced with DesktopSize to clients that support it (the picture follows at their next
    /// request); others keep their size and see the overlapping part.
    pub fn build_update(&mut self, fb: &Framebuffer) -> Option<Vec<u8>> {
        if !self.wants_update(fb) {
            return None;
        }
        let mut req = self.request.take()?;
        let size = (fb.width(), fb.height());
        let full = !req.incremental || fb.id() != self.fb_id || size != self.fb_size;
        if size != (self.width, self.height) {
            if self.desktop_size {
                self.width = fb.width();
                self.height = fb.height();
                self.fb_id = 0;
                let mut out = vec![0, 0, 0, 1, 0, 0, 0, 0];
                out.extend_from_slice(&self.width.to_be_bytes());
                out.extend_from_slice(&self.height.to_be_bytes());
                out.extend_from_slice(&ENC_DESKTOP_SIZE.to_be_bytes());
                return Some(out);
            }
            if size != self.fb_size {
                // A client that cannot resize gets the overlapping part, once, in full.
                req.region = Rect::new(0, 0, self.width, self.height);
            }
        }
        let (w, h) = (self.width.min(fb.width()), self.height.min(fb.height()));
        let region = req.region.clip(w, h);
        // Changes outside an incremental request's region are owed: sent when a later request
        // covers them (as a bounding box, so possibly with some unchanged pixels).
        let mut rects: Vec<Rect> = Vec::new();
        if full {
            rects.push(region);
            if self.fb_id != fb.id() || size != self.fb_size {
                // A new picture: everything outside the region is owed.
                self.owed = Rect::new(0, 0, w, h);
            } else {
                for r in fb.dirty_since(self.fb_gen) {
                    if intersect(&r, &region) != Some(r) {
                        self.owed = self.owed.union(&r);
                    }
                }
            }
        } else {
            rects.extend(intersect(&self.owed, &region));
            for r in fb.dirty_since(self.fb_gen) {
                let inside = intersect(&r, &region);
                if inside != Some(r) {
                    self.owed = self.owed.union(&r);
                }
                rects.extend(inside);
            }
        }
        if intersect(&self.owed, &region) == Some(self.owed) {
            self.owed = Rect::default();
        }
        rects.retain(|r| !r.is_empty());
        if rects.len() > MAX_RECTS {
            let all = rects.iter().fold(Rect::default(), |a, r| a.union(r));
            rects = vec![all];
        }
        self.fb_id = fb.id();
        self.fb_gen = fb.generation();
        self.fb_size = size;
        if rects.is_empty() && req.incremental {
            // Everything that changed lies outside the region (now owed): keep waiting.
            self.request = Some(req);
            return None;
        }
        let bpp = self.format.bytes_per_pixel();
        let pixels: usize = rects
            .iter()
            .map(|r| usize::from(r.w) * usize::from(r.h))
            .sum();
        let mut out = Vec::with_capacity(4 + rects.len() * 12 + pixels * bpp);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(rects.len() as u16).to_be_bytes());
        for r in &rects {
            for v in [r.x, r.y, r.w, r.h] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            out.extend_from_slice(&ENC_RAW.to_be_bytes());
            for y in r.y..r.y + r.h {
                self.format.encode_into(fb.row(r.x, y, r.w), &mut out);
            }
        }
        Some(out)
    }
}

fn intersect(a: &Rect, b: &Rect) -> Option<Rect> {
    let x0 = a.x.max(b.x);
    let y0 = a.y.max(b.y);
    let x1 = (u32::from(a.x) + u32::from(a.w)).min(u32::from(b.x) + u32::from(b.w));
    let y1 = (u32::from(a.y) + u32::from(a.h)).min(u32::from(b.y) + u32::from(b.h));
    (x1 > u32::from(x0) && y1 > u32::from(y0)).then(|| {
        Rect::new(
            x0,
            y0,
            (x1 - u32::from(x0)) as u16,
            (y1 - u32::from(y0)) as u16,
        )
    })
}
