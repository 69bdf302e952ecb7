//! Streaming splitter: bytes from a socket in, complete JSON messages (or errors) out.
//!
//! Mirrors QEMU's `json-lexer.c` + `json-streamer.c`: a message ends when its braces and
//! brackets balance, so several objects may share a line and one object may span many reads.
//! Differences that matter for a hostile peer:
//!
//! * the per-message byte limit is checked while bytes arrive, before they are stored, so a
//!   100 MB message costs at most [`Limits::max_bytes`] of memory; the rest of that message is
//!   scanned (to find where it ends) but not kept, and one error is reported for it;
//! * after a lexical error (a byte such as 0xFF, a control character, an invalid number) the
//!   reader reports `JSON parse error, stray '...'`, drops the pending message and skips input
//!   up to the next structural character, control character, 0xFE or 0xFF, exactly like QEMU's
//!   `IN_RECOVERY` state, so a client can always resynchronise.

use crate::json::Json;
use crate::parse::{MAX_NESTING, parse_message};

/// Per-message resource limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message in bytes (QEMU: 64 MiB of tokens; we default to 4 MiB).
    pub max_bytes: usize,
    /// Largest number of tokens in one message (bounds the parsed tree's size).
    pub max_tokens: usize,
    /// Deepest nesting of objects and arrays (QEMU: 1024).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 4 << 20,
            max_tokens: 1 << 18,
            max_depth: MAX_NESTING,
        }
    }
}

/// One item produced by the reader: a parsed message, or the error QMP reports for it.
pub type ReadItem = Result<Json, String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Start,
    Str { quote: u8, escape: bool },
    Sign,
    Zero,
    Digits,
    Mantissa,
    MantissaDigits,
    ExpE,
    ExpSign,
    ExpDigits,
    Keyword,
    Recovery,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    LCurly,
    RCurly,
    LSquare,
    RSquare,
    Other,
}

/// The streaming splitter. Feed it bytes as they arrive; it returns complete messages.
#[derive(Debug)]
pub struct MessageReader {
    limits: Limits,
    state: State,
    /// Bytes of the current message (only while not `skipping`).
    buf: Vec<u8>,
    /// Where the token being lexed starts in `buf` (for "stray" error texts).
    token_start: usize,
    braces: i64,
    brackets: i64,
    tokens: usize,
    /// The current message exceeded a limit: it was reported, its bytes are not kept.
    skipping: bool,
}

impl Default for MessageReader {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

/// How a byte is handled once the lexer state is known.
enum Step {
    /// The byte belongs to the current token (or is whitespace); nothing more to do.
    Consumed,
    /// A token ended with this byte included.
    TokenEnd(Tok),
    /// A token ended before this byte; process the byte again from `Start`.
    TokenEndLookahead,
    /// Lexical error; the byte is part of the bad token.
    Error,
    /// Whitespace or a skipped byte: not part of any token.
    Skip,
}

impl MessageReader {
    /// A reader with the given limits.
    pub fn new(limits: Limits) -> Self {
        MessageReader {
            limits,
            state: State::Start,
            buf: Vec::new(),
            token_start: 0,
            braces: 0,
            brackets: 0,
            tokens: 0,
            skipping: false,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Bytes of the message being read that are held in memory (never above the size limit).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// True when no message is partially read (only whitespace seen since the last one).
    pub fn is_idle(&self) -> bool {
        self.state == State::Start && self.braces == 0 && self.brackets == 0 && !self.skipping
    }

    /// Feeds `data`; returns the messages (and errors) completed by it, in order.
    pub fn feed(&mut self, data: &[u8]) -> Vec<ReadItem> {
        let mut out = Vec::new();
        for &b in data {
            self.byte(b, &mut out);
        }
        out
    }

    fn byte(&mut self, b: u8, out: &mut Vec<ReadItem>) {
        // At most two passes: a token ended by lookahead re-examines the byte from Start.
        for _ in 0..2 {
            let step = self.step(b);
            match step {
                Step::Consumed => {
                    self.store(b, out);
                    return;
                }
                Step::Skip => return,
                Step::TokenEnd(tok) => {
                    self.store(b, out);
                    self.state = State::Start;
                    self.end_token(tok, out);
                    return;
                }
                Step::TokenEndLookahead => {
                    self.state = State::Start;
                    self.end_token(Tok::Other, out);
                }
                Step::Error => {
                    self.lexical_error(b, out);
                    return;
                }
            }
        }
    }

    fn step(&mut self, b: u8) -> Step {
        use State::*;
        match self.state {
            Recovery => match b {
                b'\t' => Step::Skip,
                0..=0x1F | 0xFE | 0xFF | b'[' | b']' | b'{' | b'}' | b':' | b',' => {
                    self.state = Start;
                    self.step(b)
                }
                _ => Step::Skip,
            },
            Start => {
                self.token_start = self.buf.len();
                match b {
                    b' ' | b'\t' | b'\r' | b'\n' => {
                        if self.braces > 0 || self.brackets > 0 {
                            Step::Consumed
                        } else {
                            Step::Skip
                        }
                    }
                    b'{' => Step::TokenEnd(Tok::LCurly),
                    b'}' => Step::TokenEnd(Tok::RCurly),
                    b'[' => Step::TokenEnd(Tok::LSquare),
                    b']' => Step::TokenEnd(Tok::RSquare),
                    b':' | b',' => Step::TokenEnd(Tok::Other),
                    b'"' | b'\'' => {
                        self.state = Str {
                            quote: b,
                            escape: false,
                        };
                        Step::Consumed
                    }
                    b'-' => {
                        self.state = Sign;
                        Step::Consumed
                    }
                    b'0' => {
                        self.state = Zero;
                        Step::Consumed
                    }
                    b'1'..=b'9' => {
                        self.state = Digits;
                        Step::Consumed
                    }
                    b'a'..=b'z' => {
                        self.state = Keyword;
                        Step::Consumed
                    }
                    _ => Step::Error,
                }
            }
            Str { quote, escape } => match b {
                0x20..=0xFD if escape => {
                    self.state = Str {
                        quote,
                        escape: false,
                    };
                    Step::Consumed
                }
                b'\\' => {
                    self.state = Str {
                        quote,
                        escape: true,
                    };
                    Step::Consumed
                }
                _ if b == quote => Step::TokenEnd(Tok::Other),
                0x20..=0xFD => Step::Consumed,
                _ => Step::Error,
            },
            Sign => match b {
                b'0' => {
                    self.state = Zero;
                    Step::Consumed
                }
                b'1'..=b'9' => {
                    self.state = Digits;
                    Step::Consumed
                }
                _ => Step::Error,
            },
            Zero => match b {
                b'0'..=b'9' => Step::Error,
                b'.' => {
                    self.state = Mantissa;
                    Step::Consumed
                }
                _ => Step::TokenEndLookahead,
            },
            Digits => match b {
                b'0'..=b'9' => Step::Consumed,
                b'.' => {
                    self.state = Mantissa;
                    Step::Consumed
                }
                b'e' | b'E' => {
                    self.state = ExpE;
                    Step::Consumed
                }
                _ => Step::TokenEndLookahead,
            },
            Mantissa => match b {
                b'0'..=b'9' => {
                    self.state = MantissaDigits;
                    Step::Consumed
                }
                _ => Step::Error,
            },
            MantissaDigits => match b {
                b'0'..=b'9' => Step::Consumed,
                b'e' | b'E' => {
                    self.state = ExpE;
                    Step::Consumed
                }
                _ => Step::TokenEndLookahead,
            },
            ExpE => match b {
                b'+' | b'-' => {
                    self.state = ExpSign;
                    Step::Consumed
                }
                b'0'..=b'9' => {
                    self.state = ExpDigits;
                    Step::Consumed
                }
                _ => Step::Error,
            },
            ExpSign => match b {
                b'0'..=b'9' => {
                    self.state = ExpDigits;
                    Step::Consumed
                }
                _ => Step::Error,
            },
            ExpDigits => match b {
                b'0'..=b'9' => Step::Consumed,
                _ => Step::TokenEndLookahead,
            },
            Keyword => match b {
                b'a'..=b'z' => Step::Consumed,
                _ => Step::TokenEndLookahead,
            },
        }
    }

    /// Appends a byte of the current message, enforcing the size limit.
    fn store(&mut self, b: u8, out: &mut Vec<ReadItem>) {
        if self.skipping {
            return;
        }
        if self.buf.len() >= self.limits.max_bytes {
            self.over_limit("JSON token size limit exceeded", out);
            return;
        }
        self.buf.push(b);
    }

    fn over_limit(&mut self, msg: &str, out: &mut Vec<ReadItem>) {
        out.push(Err(msg.to_string()));
        self.skipping = true;
        // Give the memory back: the message may have been megabytes.
        self.buf = Vec::new();
        self.token_start = 0;
    }

    fn end_token(&mut self, tok: Tok, out: &mut Vec<ReadItem>) {
        match tok {
            Tok::LCurly => self.braces += 1,
            Tok::RCurly => self.braces -= 1,
            Tok::LSquare => self.brackets += 1,
            Tok::RSquare => self.brackets -= 1,
            Tok::Other => {}
        }
        self.tokens += 1;
        if !self.skipping {
            if self.tokens > self.limits.max_tokens {
                self.over_limit("JSON token count limit exceeded", out);
            } else if self.braces + self.brackets > self.limits.max_depth as i64 {
                self.over_limit("JSON nesting depth limit exceeded", out);
            }
        }
        let open = (self.braces > 0 || self.brackets > 0) && self.braces >= 0 && self.brackets >= 0;
        if open {
            return;
        }
        if !self.skipping {
            let msg = std::mem::take(&mut self.buf);
            out.push(parse_message(&msg, self.limits.max_depth));
        }
        self.reset_message();
    }

    fn reset_message(&mut self) {
        self.buf.clear();
        if self.buf.capacity() > 64 * 1024 {
            self.buf = Vec::new();
        }
        self.token_start = 0;
        self.braces = 0;
        self.brackets = 0;
        self.tokens = 0;
        self.skipping = false;
    }

    fn lexical_error(&mut self, b: u8, out: &mut Vec<ReadItem>) {
        if !self.skipping {
            // The bad token: what was lexed of it so far plus the offending byte, capped so a
            // huge unterminated token does not become a huge error message.
            let from = self.token_start.min(self.buf.len());
            let mut tok: Vec<u8> = self.buf[from..].iter().copied().take(64).collect();
            if tok.len() < 64 {
                tok.push(b);
            }
            let text = String::from_utf8_lossy(&tok);
            out.push(Err(format!("JSON parse error, stray '{text}'")));
        }
        self.reset_message();
        self.state = State::Recovery;
    }
}
