//! QEMU's `Ctrl-a` escapes on a stdio serial console, as a pure state machine over the bytes
//! typed on the terminal (QEMU's "mux" chardev, what `-nographic` and `-serial mon:stdio` give):
//!
//! * `Ctrl-a x` quits, `Ctrl-a h` prints the list, `Ctrl-a Ctrl-a` sends one `Ctrl-a` on;
//! * `Ctrl-a c` switches between the guest's serial port and the human monitor (`(qemu)`
//!   prompt, the same commands as `-monitor`), when a monitor is there.
//!
//! In the monitor the terminal is still in raw mode, so this echoes what is typed, handles
//! backspace, drops cursor-key escape sequences and hands over each line on Enter.

/// What the console must do with the bytes fed in, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MuxOut {
    /// Bytes for the guest's UART.
    Guest(Vec<u8>),
    /// Bytes for the terminal (echo, prompts, help).
    Term(Vec<u8>),
    /// A complete monitor line: run it, print its output and then [`PROMPT`].
    Monitor(String),
    /// `Ctrl-a x`: quit; bytes after it are not looked at.
    Quit,
}

/// The monitor prompt, as QEMU's.
pub const PROMPT: &str = "(qemu) ";

const CTRL_A: u8 = 0x01;
/// Longest monitor line kept; longer input is cut (and said so when the line runs).
pub const MAX_LINE: usize = 4096;

const HELP: &str = "\r\nC-a h    print this help\r\nC-a x    exit emulator\r\nC-a c    switch between console and monitor\r\nC-a C-a  sends C-a\r\n";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Esc {
    #[default]
    None,
    /// ESC seen.
    Start,
    /// ESC [ seen: parameters until a final byte 0x40..=0x7e.
    Csi,
}

/// The escape and line-editing state of one stdio console.
#[derive(Debug, Default)]
pub struct Mux {
    has_monitor: bool,
    ctrl_a: bool,
    in_monitor: bool,
    line: Vec<u8>,
    esc: Esc,
}

impl Mux {
    /// A console; `has_monitor` enables `Ctrl-a c`.
    pub fn new(has_monitor: bool) -> Mux {
        Mux {
            has_monitor,
            ..Mux::default()
        }
    }

    /// Whether keys go to the monitor now.
    pub fn in_monitor(&self) -> bool {
        self.in_monitor
    }

    /// Feeds typed bytes; returns what to do, in order.
    pub fn feed(&mut self, input: &[u8]) -> Vec<MuxOut> {
        let mut out = Vec::new();
        for &b in input {
            if self.ctrl_a {
                self.ctrl_a = false;
                match b {
                    b'x' | b'X' => {
                        out.push(MuxOut::Quit);
                        return out;
                    }
                    b'h' | b'H' | b'?' => term(&mut out, HELP.as_bytes()),
                    b'c' | b'C' if self.has_monitor => {
                        self.in_monitor = !self.in_monitor;
                        if self.in_monitor {
                            self.line.clear();
                            self.esc = Esc::None;
                            term(
                                &mut out,
                                b"\r\npmvm monitor - type 'help' for more information\r\n",
                            );
                            term(&mut out, PROMPT.as_bytes());
                        } else {
                            term(&mut out, b"\r\n");
                        }
                    }
                    CTRL_A if !self.in_monitor => guest(&mut out, CTRL_A),
                    _ => {} // QEMU ignores other escapes too
                }
                continue;
            }
            if b == CTRL_A {
                self.ctrl_a = true;
                continue;
            }
            if !self.in_monitor {
                guest(&mut out, b);
                continue;
            }
            match (self.esc, b) {
                (Esc::Start, b'[') => self.esc = Esc::Csi,
                (Esc::Start, _) => self.esc = Esc::None,
                (Esc::Csi, 0x40..=0x7e) => self.esc = Esc::None,
                (Esc::Csi, _) => {}
                (Esc::None, 0x1b) => self.esc = Esc::Start,
                (Esc::None, b'\r' | b'\n') => {
                    term(&mut out, b"\r\n");
                    let line = String::from_utf8_lossy(&self.line).into_owned();
                    self.line.clear();
                    out.push(MuxOut::Monitor(line));
                }
                (Esc::None, 0x7f | 0x08) => {
                    if self.line.pop().is_some() {
                        term(&mut out, b"\x08 \x08");
                    }
                }
                (Esc::None, 0x20..=0x7e) if self.line.len() < MAX_LINE => {
                    self.line.push(b);
                    term(&mut out, &[b]);
                }
                (Esc::None, _) => {} // other control keys, and input past MAX_LINE
            }
        }
        out
    }
}

/// Appends a guest byte, merging with a preceding `Guest`.
fn guest(out: &mut Vec<MuxOut>, b: u8) {
    match out.last_mut() {
        Some(MuxOut::Guest(g)) => g.push(b),
        _ => out.push(MuxOut::Guest(vec![b])),
    }
}

/// Appends terminal bytes, merging with a preceding `Term`.
fn term(out: &mut Vec<MuxOut>, bytes: &[u8]) {
    match out.last_mut() {
        Some(MuxOut::Term(t)) => t.extend_from_slice(bytes),
        _ => out.push(MuxOut::Term(bytes.to_vec())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn to_guest(b: &[u8]) -> MuxOut {
        MuxOut::Guest(b.to_vec())
    }

    #[test]
    fn serial_bytes_pass_and_ctrl_a_escapes() {
        let mut m = Mux::new(true);
        assert_eq!(m.feed(b"ls\r"), [to_guest(b"ls\r")]);
        assert_eq!(m.feed(b"a\x01\x01b"), [to_guest(b"a\x01b")]);
        assert_eq!(m.feed(b"\x01"), []); // escape pending across reads
        assert_eq!(m.feed(b"q"), []); // unknown escape: dropped
        assert_eq!(m.feed(b"\x01h")[0], MuxOut::Term(HELP.as_bytes().to_vec()));
        assert_eq!(m.feed(b"ab\x01xcd"), [to_guest(b"ab"), MuxOut::Quit]);
    }

    #[test]
    fn monitor_line_editing() {
        let mut m = Mux::new(true);
        let out = m.feed(b"\x01c");
        assert!(m.in_monitor());
        assert!(matches!(&out[..], [MuxOut::Term(t)] if t.ends_with(PROMPT.as_bytes())));
        // typing echoes; backspace erases; an arrow key is dropped; Enter hands the line over
        let out = m.feed(b"info statuz\x7fs\x1b[A\r");
        assert_eq!(
            out,
            [
                MuxOut::Term(b"info statuz\x08 \x08s\r\n".to_vec()),
                MuxOut::Monitor("info status".into())
            ]
        );
        assert_eq!(
            m.feed(b"\r"),
            [
                MuxOut::Term(b"\r\n".to_vec()),
                MuxOut::Monitor(String::new())
            ]
        );
        assert_eq!(m.feed(b"\x7f"), []); // nothing to erase
        // back to the guest
        assert_eq!(
            m.feed(b"\x01cls"),
            [MuxOut::Term(b"\r\n".to_vec()), to_guest(b"ls")]
        );
        assert!(!m.in_monitor());
    }

    #[test]
    fn without_a_monitor_ctrl_a_c_does_nothing() {
        let mut m = Mux::new(false);
        assert_eq!(m.feed(b"\x01cx"), [to_guest(b"x")]);
        assert!(!m.in_monitor());
    }

    #[test]
    fn monitor_lines_are_bounded() {
        let mut m = Mux::new(true);
        m.feed(b"\x01c");
        let long = vec![b'a'; MAX_LINE + 100];
        m.feed(&long);
        let out = m.feed(b"\n");
        assert!(matches!(&out[..], [MuxOut::Term(_), MuxOut::Monitor(l)] if l.len() == MAX_LINE));
    }

    proptest! {
        /// Whatever is typed: no panic; in serial mode every byte that is not part of an escape
        /// reaches the guest, in order; monitor lines are printable ASCII within MAX_LINE.
        #[test]
        fn any_input(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut m = Mux::new(true);
            let mut sent = Vec::new();
            for c in &chunks {
                for o in m.feed(c) {
                    match o {
                        MuxOut::Guest(g) => sent.extend(g),
                        MuxOut::Monitor(l) => prop_assert!(l.len() <= MAX_LINE && l.bytes().all(|b| (0x20..0x7f).contains(&b))),
                        MuxOut::Term(_) => {}
                        MuxOut::Quit => return Ok(()),
                    }
                }
            }
            let all: Vec<u8> = chunks.concat();
            if !all.contains(&CTRL_A) {
                prop_assert_eq!(sent, all);
            }
        }
    }
}
