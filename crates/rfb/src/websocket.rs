//! WebSocket transport for noVNC (RFC 6455): the HTTP upgrade handshake, then RFB bytes carried
//! in binary frames.
//!
//! Browsers cannot open raw TCP sockets, so noVNC speaks RFB inside WebSocket frames, as QEMU's
//! `websocket=` listener accepts. Only what that needs is here: the server side of the opening
//! handshake (`Sec-WebSocket-Accept` = base64(SHA-1(key + GUID))), reading masked client frames
//! of any size as a byte stream (payloads stream through without being buffered), and writing
//! each outgoing chunk as one unmasked binary frame. Ping frames are read and dropped (noVNC does
//! not send them); a Close frame ends the stream. No extensions, no TLS (`wss://` needs a proxy).

use std::io::{self, Read, Write};

use sha1::{Digest, Sha1};

/// The GUID RFC 6455 §1.3 appends to the client's key.
pub const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Longest handshake request accepted.
pub const MAX_REQUEST: usize = 8192;

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(WS_GUID.as_bytes());
    base64(&h.finalize())
}

fn bad(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("websocket handshake: {why}"),
    )
}

/// Given a complete request head (through the blank line), the 101 response to send, or why
/// the request is not a WebSocket upgrade. Offers the `binary` subprotocol if asked for.
pub fn handshake_response(request: &str) -> io::Result<String> {
    let mut lines = request.split("\r\n");
    let first = lines.next().unwrap_or_default();
    if !first.starts_with("GET ") || !first.ends_with(" HTTP/1.1") {
        return Err(bad("not a GET HTTP/1.1 request"));
    }
    let (mut key, mut upgrade, mut binary) = (None, false, false);
    for l in lines {
        let Some((name, value)) = l.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "sec-websocket-key" => key = Some(value.to_string()),
            "upgrade" => upgrade = value.eq_ignore_ascii_case("websocket"),
            "sec-websocket-protocol" => binary = value.split(',').any(|p| p.trim() == "binary"),
            _ => {}
        }
    }
    let key = key.ok_or_else(|| bad("no Sec-WebSocket-Key"))?;
    if !upgrade {
        return Err(bad("no Upgrade: websocket"));
    }
    let mut resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        accept_key(&key)
    );
    if binary {
        resp.push_str("Sec-WebSocket-Protocol: binary\r\n");
    }
    resp.push_str("\r\n");
    Ok(resp)
}

/// Reads the request head from `conn` byte by byte (so no RFB bytes are swallowed), answers
/// it, and leaves `conn` ready for frames. A bad request gets a 400 and an error.
pub fn server_handshake(conn: &mut (impl Read + Write)) -> io::Result<()> {
    let mut req = Vec::new();
    let mut b = [0u8; 1];
    while !req.ends_with(b"\r\n\r\n") {
        if req.len() >= MAX_REQUEST {
            return Err(bad("request too long"));
        }
        conn.read_exact(&mut b)?;
        req.push(b[0]);
    }
    match handshake_response(&String::from_utf8_lossy(&req)) {
        Ok(r) => conn.write_all(r.as_bytes()),
        Err(e) => {
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            Err(e)
        }
    }
}

/// Reads a stream of client frames as the concatenation of their data payloads.
#[derive(Debug)]
pub struct WsReader<R> {
    inner: R,
    left: u64,
    mask: [u8; 4],
    offset: usize,
    closed: bool,
}

impl<R: Read> WsReader<R> {
    /// Wraps a connection whose handshake is done.
    pub fn new(inner: R) -> Self {
        WsReader {
            inner,
            left: 0,
            mask: [0; 4],
            offset: 0,
            closed: false,
        }
    }

    /// Reads frame headers until a data frame with payload starts; false at Close or EOF.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            let mut h = [0u8; 2];
            match self.inner.read_exact(&mut h) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
                r => r?,
            }
            let opcode = h[0] & 0x0f;
            let masked = h[1] & 0x80 != 0;
            let mut len = u64::from(h[1] & 0x7f);
            if len == 126 {
                let mut b = [0u8; 2];
                self.inner.read_exact(&mut b)?;
                len = u64::from(u16::from_be_bytes(b));
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.inner.read_exact(&mut b)?;
                len = u64::from_be_bytes(b);
            }
            if !masked {
                return Err(bad("client frame not masked"));
            }
            self.inner.read_exact(&mut self.mask)?;
            self.offset = 0;
            match opcode {
                0x8 => return Ok(false),
                0x0..=0x2 if len > 0 => {
                    self.left = len;
                    return Ok(true);
                }
                0x0..=0x2 | 0x9 | 0xa => {
                    // Empty data frame, ping or pong: skip the payload (control frames are small).
                    if len > 125 && opcode >= 0x8 {
                        return Err(bad("control frame too long"));
                    }
                    io::copy(&mut (&mut self.inner).take(len), &mut io::sink())?;
                }
                _ => return Err(bad("unknown opcode")),
            }
        }
    }
}

impl<R: Read> Read for WsReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.closed {
            return Ok(0);
        }
        if self.left == 0 && !self.next_frame()? {
            self.closed = true;
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            self.closed = true;
            return Ok(0);
        }
        for b in &mut buf[..n] {
            *b ^= self.mask[self.offset % 4];
            self.offset += 1;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Writes each chunk as one unmasked binary frame.
#[derive(Debug)]
pub struct WsWriter<W> {
    inner: W,
}

impl<W: Write> WsWriter<W> {
    /// Wraps a connection whose handshake is done.
    pub fn new(inner: W) -> Self {
        WsWriter { inner }
    }
}

/// The header of a final binary frame carrying `len` bytes.
pub fn frame_header(len: usize) -> Vec<u8> {
    let mut h = vec![0x82];
    if len < 126 {
        h.push(len as u8);
    } else if let Ok(l) = u16::try_from(len) {
        h.push(126);
        h.extend_from_slice(&l.to_be_bytes());
    } else {
        h.push(127);
        h.extend_from_slice(&(len as u64).to_be_bytes());
    }
    h
}

impl<W: Write> Write for WsWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        self.inner.write_all(&frame_header(buf.len()))?;
        self.inner.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_example_key() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn handshake() {
        let req = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Protocol: binary, base64\r\n\r\n";
        let r = handshake_response(req).unwrap();
        assert!(r.starts_with("HTTP/1.1 101"));
        assert!(r.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(r.contains("Sec-WebSocket-Protocol: binary\r\n"));
        assert!(handshake_response("GET / HTTP/1.1\r\n\r\n").is_err());
        assert!(handshake_response("POST / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n").is_err());
    }

    fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut f = frame_header(payload.len());
        f[0] = 0x80 | opcode;
        f[1] |= 0x80;
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    #[test]
    fn frames_in_and_out() {
        let mut wire = client_frame(2, b"RFB 003.008\n");
        wire.extend(client_frame(9, b"ping"));
        wire.extend(client_frame(2, &[7u8; 300]));
        wire.extend(client_frame(8, b""));
        wire.extend(client_frame(2, b"after close"));
        let mut out = Vec::new();
        WsReader::new(&wire[..]).read_to_end(&mut out).unwrap();
        assert_eq!(&out[..12], b"RFB 003.008\n");
        assert_eq!(&out[12..], &[7u8; 300][..]);

        let mut w = WsWriter::new(Vec::new());
        w.write_all(&[9u8; 70000]).unwrap();
        let v = w.inner;
        assert_eq!(&v[..2], &[0x82, 127]);
        assert_eq!(v.len(), 10 + 70000);

        let unmasked = frame_header(3)
            .into_iter()
            .chain(*b"abc")
            .collect::<Vec<_>>();
        assert!(WsReader::new(&unmasked[..]).read_to_end(&mut out).is_err());
    }
}
