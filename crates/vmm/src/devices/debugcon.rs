//! The firmware's debug port (0x402, QEMU's `isa-debugcon` at the address SeaBIOS writes its
//! log to): bytes are collected into lines and written to `-debugcon file:PATH|stdio`. A read
//! returns 0xe9, the value QEMU's debugcon answers (SeaBIOS probes it before logging).

use std::io::Write;

use crate::bus::BusDevice;

/// The port SeaBIOS's QEMU build logs to.
pub const DEBUGCON_PORT: u16 = 0x402;
/// A line longer than this is written out in pieces (a guest cannot grow the buffer).
const MAX_LINE: usize = 4096;

/// Line-buffered sink for the debug port.
pub struct Debugcon {
    out: Box<dyn Write + Send>,
    prefix: &'static str,
    line: Vec<u8>,
}

impl Debugcon {
    /// Writes each line to `out` after `prefix`.
    pub fn new(out: Box<dyn Write + Send>, prefix: &'static str) -> Debugcon {
        Debugcon {
            out,
            prefix,
            line: Vec::new(),
        }
    }

    fn flush_line(&mut self) {
        let mut text = Vec::with_capacity(self.prefix.len() + self.line.len() + 1);
        text.extend_from_slice(self.prefix.as_bytes());
        text.extend(self.line.drain(..).filter(|b| *b != b'\r'));
        text.push(b'\n');
        // A full disk or closed pipe must not stop the guest.
        let _ = self.out.write_all(&text);
        let _ = self.out.flush();
    }
}

impl BusDevice for Debugcon {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
        if let Some(b) = data.first_mut() {
            *b = 0xe9;
        }
    }

    fn write(&mut self, _offset: u64, data: &[u8]) {
        for &b in data {
            if b == b'\n' || self.line.len() >= MAX_LINE {
                self.flush_line();
                if b == b'\n' {
                    continue;
                }
            }
            self.line.push(b);
        }
    }
}

impl Drop for Debugcon {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.flush_line();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_prefixed_and_bounded() {
        let sink = Sink::default();
        let mut d = Debugcon::new(Box::new(sink.clone()), "fw: ");
        let mut b = [0u8; 1];
        d.read(0, &mut b);
        assert_eq!(b[0], 0xe9);
        d.write(0, b"Found QEMU fw_cfg\r\nhalf");
        assert_eq!(&*sink.0.lock().unwrap(), b"fw: Found QEMU fw_cfg\n");
        d.write(0, &vec![b'x'; MAX_LINE + 10]);
        drop(d);
        let all = sink.0.lock().unwrap().clone();
        assert_eq!(all.iter().filter(|c| **c == b'\n').count(), 3);
    }
}
