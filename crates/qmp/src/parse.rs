//! Parsing one complete JSON message (QEMU's dialect) into [`Json`].
//!
//! The dialect is RFC 8259 plus QEMU's extensions: single-quoted strings and the `\'` escape.
//! Error texts follow QEMU's `json-parser.c` ("JSON parse error, expecting value", ...), which
//! clients may show to users. This module is self-contained: it re-validates everything, so it
//! is safe on arbitrary bytes, not only on what the streaming reader let through.

use crate::json::{Json, Number};

/// Default nesting limit, as QEMU's `MAX_NESTING`.
pub const MAX_NESTING: usize = 1024;

#[derive(Debug, PartialEq)]
enum Tok {
    LCurly,
    RCurly,
    LSquare,
    RSquare,
    Colon,
    Comma,
    Str(String),
    Num(Number),
    Keyword(String),
    Eof,
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    max_depth: usize,
}

fn err(msg: impl std::fmt::Display) -> String {
    format!("JSON parse error, {msg}")
}

/// Parses exactly one JSON value from `bytes` (surrounding whitespace allowed).
///
/// Errors are complete QMP error descriptions ("JSON parse error, ...").
pub fn parse_message(bytes: &[u8], max_depth: usize) -> Result<Json, String> {
    let mut p = Parser {
        s: bytes,
        pos: 0,
        max_depth,
    };
    let first = p.next()?;
    let v = p.value(first, 0)?;
    match p.next()? {
        Tok::Eof => Ok(v),
        _ => Err(err("expecting end of input")),
    }
}

impl Parser<'_> {
    fn peek_byte(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn next(&mut self) -> Result<Tok, String> {
        while let Some(b) = self.peek_byte() {
            if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
                self.pos += 1;
            } else {
                break;
            }
        }
        let Some(b) = self.peek_byte() else {
            return Ok(Tok::Eof);
        };
        self.pos += 1;
        Ok(match b {
            b'{' => Tok::LCurly,
            b'}' => Tok::RCurly,
            b'[' => Tok::LSquare,
            b']' => Tok::RSquare,
            b':' => Tok::Colon,
            b',' => Tok::Comma,
            b'"' | b'\'' => Tok::Str(self.string(b)?),
            b'-' | b'0'..=b'9' => Tok::Num(self.number()?),
            b'a'..=b'z' => {
                let start = self.pos - 1;
                while matches!(self.peek_byte(), Some(b'a'..=b'z')) {
                    self.pos += 1;
                }
                Tok::Keyword(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
            }
            _ => {
                let stray = String::from_utf8_lossy(&[b]).into_owned();
                return Err(format!("JSON parse error, stray '{stray}'"));
            }
        })
    }

    fn digits(&mut self) -> usize {
        let from = self.pos;
        while matches!(self.peek_byte(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - from
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, except that QEMU's lexer ends a
    /// bare `0` before an exponent.
    fn number(&mut self) -> Result<Number, String> {
        let start = self.pos - 1;
        let mut first = self.s[start];
        if first == b'-' {
            match self.peek_byte() {
                Some(d @ b'0'..=b'9') => {
                    self.pos += 1;
                    first = d;
                }
                _ => return Err(err("invalid number")),
            }
        }
        let zero = first == b'0';
        if zero {
            if matches!(self.peek_byte(), Some(b'0'..=b'9')) {
                return Err(err("invalid number"));
            }
        } else {
            self.digits();
        }
        let mut float = false;
        if self.peek_byte() == Some(b'.') {
            self.pos += 1;
            float = true;
            if self.digits() == 0 {
                return Err(err("invalid number"));
            }
        }
        if matches!(self.peek_byte(), Some(b'e' | b'E')) && (!zero || float) {
            self.pos += 1;
            float = true;
            if matches!(self.peek_byte(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(err("invalid number"));
            }
        }
        // The slice holds ASCII digits, signs, '.' and 'e' only.
        let text =
            std::str::from_utf8(&self.s[start..self.pos]).map_err(|_| err("invalid number"))?;
        if !float {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Number::Int(i));
            }
            if let Ok(u) = text.parse::<u64>() {
                return Ok(Number::UInt(u));
            }
        }
        // Overflow to infinity (1e400) has no JSON spelling: reject it.
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Number::Float(f)),
            _ => Err(err("number out of range")),
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self
            .s
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| err("invalid hex escape sequence in string"))?;
        let mut v = 0u32;
        for &c in h {
            let d = (c as char)
                .to_digit(16)
                .ok_or_else(|| err("invalid hex escape sequence in string"))?;
            v = v * 16 + d;
        }
        self.pos += 4;
        Ok(v)
    }

    fn string(&mut self, quote: u8) -> Result<String, String> {
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek_byte() else {
                return Err(err("premature EOI"));
            };
            self.pos += 1;
            match b {
                _ if b == quote => break,
                b'\\' => {
                    let Some(e) = self.peek_byte() else {
                        return Err(err("premature EOI"));
                    };
                    self.pos += 1;
                    let simple = match e {
                        b'"' => Some(b'"'),
                        b'\'' => Some(b'\''),
                        b'\\' => Some(b'\\'),
                        b'/' => Some(b'/'),
                        b'b' => Some(8),
                        b'f' => Some(12),
                        b'n' => Some(b'\n'),
                        b'r' => Some(b'\r'),
                        b't' => Some(b'\t'),
                        b'u' => None,
                        _ => return Err(err("invalid escape sequence in string")),
                    };
                    if let Some(c) = simple {
                        out.push(c);
                        continue;
                    }
                    let mut cp = self.hex4()?;
                    if (0xD800..0xDC00).contains(&cp) {
                        if self.s.get(self.pos..self.pos + 2) != Some(b"\\u") {
                            return Err(err("missing \\uDC00-\\uDFFF escape"));
                        }
                        self.pos += 2;
                        let lo = self.hex4()?;
                        if !(0xDC00..0xE000).contains(&lo) {
                            return Err(err("missing \\uDC00-\\uDFFF escape"));
                        }
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    if cp == 0 {
                        return Err(err("\\u0000 is not supported"));
                    }
                    let c = char::from_u32(cp)
                        .ok_or_else(|| err("invalid \\u escape sequence in string"))?;
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1F => return Err(err("control character in string")),
                0xFE | 0xFF => return Err(err("invalid UTF-8 sequence in string")),
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| err("invalid UTF-8 sequence in string"))
    }

    fn value(&mut self, tok: Tok, depth: usize) -> Result<Json, String> {
        match tok {
            Tok::LCurly | Tok::LSquare if depth >= self.max_depth => {
                Err("JSON nesting depth limit exceeded".to_string())
            }
            Tok::LCurly => self.object(depth + 1),
            Tok::LSquare => self.array(depth + 1),
            Tok::Str(s) => Ok(Json::String(s)),
            Tok::Num(n) => Ok(Json::Number(n)),
            Tok::Keyword(k) => match k.as_str() {
                "true" => Ok(Json::Bool(true)),
                "false" => Ok(Json::Bool(false)),
                "null" => Ok(Json::Null),
                _ => Err(err(format_args!("invalid keyword '{k}'"))),
            },
            Tok::Eof => Err(err("premature EOI")),
            Tok::RCurly | Tok::RSquare | Tok::Colon | Tok::Comma => Err(err("expecting value")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, String> {
        let mut members: Vec<(String, Json)> = Vec::new();
        // A set, not a scan of `members`: a 100k-member object must not cost O(n^2).
        let mut seen = std::collections::HashSet::new();
        let mut tok = self.next()?;
        if tok == Tok::RCurly {
            return Ok(Json::Object(members));
        }
        loop {
            let key = match tok {
                Tok::Str(k) => k,
                Tok::Eof => return Err(err("premature EOI")),
                _ => return Err(err("key is not a string in object")),
            };
            match self.next()? {
                Tok::Colon => {}
                Tok::Eof => return Err(err("premature EOI")),
                _ => return Err(err("missing : in object pair")),
            }
            let vt = self.next()?;
            let v = self.value(vt, depth)?;
            if !seen.insert(key.clone()) {
                return Err(err("duplicate key"));
            }
            members.push((key, v));
            match self.next()? {
                Tok::RCurly => return Ok(Json::Object(members)),
                Tok::Comma => tok = self.next()?,
                Tok::Eof => return Err(err("premature EOI")),
                _ => return Err(err("expected separator in dict")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, String> {
        let mut items = Vec::new();
        let mut tok = self.next()?;
        if tok == Tok::RSquare {
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value(tok, depth)?);
            match self.next()? {
                Tok::RSquare => return Ok(Json::Array(items)),
                Tok::Comma => tok = self.next()?,
                Tok::Eof => return Err(err("premature EOI")),
                _ => return Err(err("expected separator in list")),
            }
        }
    }
}
