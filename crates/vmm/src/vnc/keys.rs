//! Keys typed in a VNC viewer as the bytes a terminal would send: what the guest's serial port
//! gets on consoles 1 and 3 (exactly what the stdin console would feed the UART), and what the
//! monitor console's line editor reads.

/// X11 keysyms used here (`X11/keysymdef.h`).
pub mod sym {
    pub const BACKSPACE: u32 = 0xff08;
    pub const TAB: u32 = 0xff09;
    pub const RETURN: u32 = 0xff0d;
    pub const ESCAPE: u32 = 0xff1b;
    pub const HOME: u32 = 0xff50;
    pub const LEFT: u32 = 0xff51;
    pub const UP: u32 = 0xff52;
    pub const RIGHT: u32 = 0xff53;
    pub const DOWN: u32 = 0xff54;
    pub const PAGE_UP: u32 = 0xff55;
    pub const PAGE_DOWN: u32 = 0xff56;
    pub const END: u32 = 0xff57;
    pub const INSERT: u32 = 0xff63;
    pub const KP_ENTER: u32 = 0xff8d;
    pub const CONTROL_L: u32 = 0xffe3;
    pub const CONTROL_R: u32 = 0xffe4;
    pub const DELETE: u32 = 0xffff;
}

/// The bytes for a key press (`None`: a key that sends nothing, such as Shift). `ctrl`: a
/// Control key is held, which turns letters and `@[\]^_` into control codes, as a terminal
/// does. Enter is CR (raw-mode terminals send CR; the guest's tty maps it), Backspace DEL.
pub fn keysym_to_bytes(keysym: u32, ctrl: bool) -> Option<Vec<u8>> {
    let esc = |s: &str| Some(s.as_bytes().to_vec());
    match keysym {
        0x20..=0x7e => {
            let c = keysym as u8;
            if ctrl {
                match c {
                    b'a'..=b'z' => Some(vec![c - b'a' + 1]),
                    b'@'..=b'_' => Some(vec![c - b'@']),
                    b' ' => Some(vec![0]),
                    b'?' => Some(vec![0x7f]),
                    _ => Some(vec![c]),
                }
            } else {
                Some(vec![c])
            }
        }
        sym::RETURN | sym::KP_ENTER => Some(vec![b'\r']),
        sym::BACKSPACE => Some(vec![0x7f]),
        sym::TAB => Some(vec![b'\t']),
        sym::ESCAPE => Some(vec![0x1b]),
        sym::UP => esc("\x1b[A"),
        sym::DOWN => esc("\x1b[B"),
        sym::RIGHT => esc("\x1b[C"),
        sym::LEFT => esc("\x1b[D"),
        sym::HOME => esc("\x1b[H"),
        sym::END => esc("\x1b[F"),
        sym::INSERT => esc("\x1b[2~"),
        sym::DELETE => esc("\x1b[3~"),
        sym::PAGE_UP => esc("\x1b[5~"),
        sym::PAGE_DOWN => esc("\x1b[6~"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_bytes() {
        let k = |s: u32| keysym_to_bytes(s, false).unwrap();
        assert_eq!(k('a' as u32), b"a");
        assert_eq!(k('~' as u32), b"~");
        assert_eq!(k(sym::RETURN), b"\r");
        assert_eq!(k(sym::BACKSPACE), [0x7f]);
        assert_eq!(k(sym::UP), b"\x1b[A");
        assert_eq!(k(sym::LEFT), b"\x1b[D");
        assert_eq!(k(sym::DELETE), b"\x1b[3~");
        assert_eq!(keysym_to_bytes('c' as u32, true).unwrap(), [3]);
        assert_eq!(keysym_to_bytes('C' as u32, true).unwrap(), [3]);
        assert_eq!(keysym_to_bytes('[' as u32, true).unwrap(), [0x1b]);
        assert_eq!(keysym_to_bytes(sym::CONTROL_L, false), None);
        assert_eq!(keysym_to_bytes(0xffe1, false), None); // Shift_L
    }
}
