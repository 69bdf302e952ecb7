//! X11 keysyms (what RFB KeyEvents carry, RFC 6143 §7.5.4) to PS/2 scancode set 1 (what an
//! i8042 keyboard in translated mode delivers to the guest), and QEMU's Ctrl-Alt-N console keys.
//!
//! Keysyms name symbols, not keys, so each symbol maps to the key that produces it on a US
//! layout (`A` and `a` both map to the A key; `!` to the 1 key): the client sends Shift itself.
//! Clients that know the physical key (QEMU Extended Key Event) bypass this table through
//! [`Scancode::from_qnum`]. Not mapped: Print Screen and Pause (multi-byte sequences), and
//! non-US symbols.

/// One key in scancode set 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scancode {
    /// Sent with the 0xE0 prefix (the "extended" keys: arrows, right Ctrl/Alt, ...).
    pub e0: bool,
    /// The make code, `0x01..=0x7f`.
    pub code: u8,
}

impl Scancode {
    const fn new(code: u8) -> Scancode {
        Scancode { e0: false, code }
    }

    const fn ext(code: u8) -> Scancode {
        Scancode { e0: true, code }
    }

    /// The bytes the keyboard sends: the make code when pressed, make | 0x80 when released,
    /// each preceded by 0xE0 for extended keys.
    pub fn bytes(self, down: bool) -> Vec<u8> {
        let code = if down { self.code } else { self.code | 0x80 };
        if self.e0 {
            vec![0xe0, code]
        } else {
            vec![code]
        }
    }

    /// From QEMU's "qnum" numbering (Extended Key Event): the set 1 code, plus 0x80 for keys
    /// with an E0 prefix. `None` for codes outside 1..=0xff.
    pub fn from_qnum(q: u32) -> Option<Scancode> {
        let b = u8::try_from(q).ok().filter(|&b| b & 0x7f != 0)?;
        Some(Scancode {
            e0: b & 0x80 != 0,
            code: b & 0x7f,
        })
    }
}

/// Letters a..z in alphabetical order, as set 1 codes.
const LETTERS: [u8; 26] = [
    0x1e, 0x30, 0x2e, 0x20, 0x12, 0x21, 0x22, 0x23, 0x17, 0x24, 0x25, 0x26, 0x32, 0x31, 0x18, 0x19,
    0x10, 0x13, 0x1f, 0x14, 0x16, 0x2f, 0x11, 0x2d, 0x15, 0x2c,
];

/// The set 1 key for an X11 keysym, or `None` if this table has none.
pub fn keysym_to_set1(keysym: u32) -> Option<Scancode> {
    let s = Scancode::new;
    let e = Scancode::ext;
    Some(match keysym {
        0x61..=0x7a => s(LETTERS[(keysym - 0x61) as usize]),
        0x41..=0x5a => s(LETTERS[(keysym - 0x41) as usize]),
        0x31..=0x39 => s((keysym - 0x31) as u8 + 0x02),
        0x30 => s(0x0b),
        0x20 => s(0x39),
        // Punctuation, unshifted and shifted, on a US layout.
        0x21 => s(0x02),                                      // !
        0x40 => s(0x03),                                      // @
        0x23 => s(0x04),                                      // #
        0x24 => s(0x05),                                      // $
        0x25 => s(0x06),                                      // %
        0x5e => s(0x07),                                      // ^
        0x26 => s(0x08),                                      // &
        0x2a => s(0x09),                                      // *
        0x28 => s(0x0a),                                      // (
        0x29 => s(0x0b),                                      // )
        0x2d | 0x5f => s(0x0c),                               // - _
        0x3d | 0x2b => s(0x0d),                               // = +
        0x5b | 0x7b => s(0x1a),                               // [ {
        0x5d | 0x7d => s(0x1b),                               // ] }
        0x3b | 0x3a => s(0x27),                               // ; :
        0x27 | 0x22 => s(0x28),                               // ' "
        0x60 | 0x7e => s(0x29),                               // ` ~
        0x5c | 0x7c => s(0x2b),                               // \ |
        0x2c | 0x3c => s(0x33),                               // , <
        0x2e | 0x3e => s(0x34),                               // . >
        0x2f | 0x3f => s(0x35),                               // / ?
        0xff08 => s(0x0e),                                    // BackSpace
        0xff09 | 0xfe20 => s(0x0f),                           // Tab, ISO_Left_Tab (Shift-Tab)
        0xff0d => s(0x1c),                                    // Return
        0xff1b => s(0x01),                                    // Escape
        0xffe1 => s(0x2a),                                    // Shift_L
        0xffe2 => s(0x36),                                    // Shift_R
        0xffe3 => s(0x1d),                                    // Control_L
        0xffe4 => e(0x1d),                                    // Control_R
        0xffe9 | 0xffe7 => s(0x38),                           // Alt_L, Meta_L
        0xffea | 0xffe8 | 0xfe03 => e(0x38), // Alt_R, Meta_R, ISO_Level3_Shift (AltGr)
        0xffeb => e(0x5b),                   // Super_L
        0xffec => e(0x5c),                   // Super_R
        0xff67 => e(0x5d),                   // Menu
        0xffe5 => s(0x3a),                   // Caps_Lock
        0xff7f => s(0x45),                   // Num_Lock
        0xff14 => s(0x46),                   // Scroll_Lock
        0xffbe..=0xffc7 => s((keysym - 0xffbe) as u8 + 0x3b), // F1..F10
        0xffc8 => s(0x57),                   // F11
        0xffc9 => s(0x58),                   // F12
        0xff50 => e(0x47),                   // Home
        0xff51 => e(0x4b),                   // Left
        0xff52 => e(0x48),                   // Up
        0xff53 => e(0x4d),                   // Right
        0xff54 => e(0x50),                   // Down
        0xff55 => e(0x49),                   // Page_Up
        0xff56 => e(0x51),                   // Page_Down
        0xff57 => e(0x4f),                   // End
        0xff63 => e(0x52),                   // Insert
        0xffff => e(0x53),                   // Delete
        0xff8d => e(0x1c),                   // KP_Enter
        0xffaf => e(0x35),                   // KP_Divide
        0xffaa => s(0x37),                   // KP_Multiply
        0xffad => s(0x4a),                   // KP_Subtract
        0xffab => s(0x4e),                   // KP_Add
        0xffae | 0xff9f => s(0x53),          // KP_Decimal, KP_Delete
        0xffb7 | 0xff95 => s(0x47),          // KP_7, KP_Home
        0xffb8 | 0xff97 => s(0x48),          // KP_8, KP_Up
        0xffb9 | 0xff9a => s(0x49),          // KP_9, KP_Prior
        0xffb4 | 0xff96 => s(0x4b),          // KP_4, KP_Left
        0xffb5 | 0xff9d => s(0x4c),          // KP_5, KP_Begin
        0xffb6 | 0xff98 => s(0x4d),          // KP_6, KP_Right
        0xffb1 | 0xff9c => s(0x4f),          // KP_1, KP_End
        0xffb2 | 0xff99 => s(0x50),          // KP_2, KP_Down
        0xffb3 | 0xff9b => s(0x51),          // KP_3, KP_Next
        0xffb0 | 0xff9e => s(0x52),          // KP_0, KP_Insert
        _ => return None,
    })
}

/// What to do with a key event after console-switch tracking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAction {
    /// Pass it to the guest (or the active console).
    Forward,
    /// Ctrl-Alt-`n` was pressed: switch to console `n` (1: graphics, 2: monitor, 3: serial,
    /// as QEMU numbers them). The digit is not forwarded.
    Switch(u8),
    /// The release of a digit that switched consoles: drop it.
    Swallow,
}

/// Tracks Ctrl and Alt across key events to recognise Ctrl-Alt-1..9.
#[derive(Clone, Debug, Default)]
pub struct ConsoleSwitch {
    ctrl: u8,
    alt: u8,
    swallow: u16,
}

impl ConsoleSwitch {
    /// A tracker with no modifier held.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one key event; returns what to do with it.
    pub fn key(&mut self, keysym: u32, down: bool) -> KeyAction {
        let set = |mask: &mut u8, bit: u8| {
            if down {
                *mask |= bit;
            } else {
                *mask &= !bit;
            }
        };
        match keysym {
            0xffe3 => set(&mut self.ctrl, 1),
            0xffe4 => set(&mut self.ctrl, 2),
            0xffe9 | 0xffe7 => set(&mut self.alt, 1),
            0xffea | 0xffe8 => set(&mut self.alt, 2),
            0x31..=0x39 => {
                let bit = 1u16 << (keysym - 0x30);
                if down && self.ctrl != 0 && self.alt != 0 {
                    self.swallow |= bit;
                    return KeyAction::Switch((keysym - 0x30) as u8);
                }
                if !down && self.swallow & bit != 0 {
                    self.swallow &= !bit;
                    return KeyAction::Swallow;
                }
            }
            _ => {}
        }
        KeyAction::Forward
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_keys() {
        let k = |c: char| keysym_to_set1(c as u32).unwrap();
        assert_eq!(k('a').bytes(true), [0x1e]);
        assert_eq!(k('A').bytes(false), [0x9e]);
        assert_eq!(k('z').code, 0x2c);
        assert_eq!(k('1').code, 0x02);
        assert_eq!(k('0').code, 0x0b);
        assert_eq!(k('!').code, 0x02);
        assert_eq!(k('?').code, 0x35);
        assert_eq!(k(' ').code, 0x39);
        assert_eq!(keysym_to_set1(0xff0d).unwrap().bytes(true), [0x1c]);
        assert_eq!(keysym_to_set1(0xff08).unwrap().code, 0x0e);
        assert_eq!(keysym_to_set1(0xff1b).unwrap().code, 0x01);
        assert_eq!(keysym_to_set1(0xffbe).unwrap().code, 0x3b); // F1
        assert_eq!(keysym_to_set1(0xffc7).unwrap().code, 0x44); // F10
        assert_eq!(keysym_to_set1(0xffc9).unwrap().code, 0x58); // F12
        assert_eq!(keysym_to_set1(0xff52).unwrap().bytes(true), [0xe0, 0x48]); // Up
        assert_eq!(keysym_to_set1(0xff52).unwrap().bytes(false), [0xe0, 0xc8]);
        assert_eq!(keysym_to_set1(0xffe4).unwrap().bytes(true), [0xe0, 0x1d]); // Control_R
        assert_eq!(keysym_to_set1(0x20ac), None); // EuroSign
    }

    #[test]
    fn every_letter_distinct_and_every_mapping_valid() {
        let mut seen = std::collections::HashSet::new();
        for c in 'a'..='z' {
            assert!(seen.insert(keysym_to_set1(c as u32).unwrap()));
        }
        for ks in (0..0x100).chain(0xfe00..0x1_0000) {
            if let Some(sc) = keysym_to_set1(ks) {
                assert!(sc.code != 0 && sc.code < 0x80, "{ks:#x}");
            }
        }
    }

    #[test]
    fn qnum() {
        assert_eq!(Scancode::from_qnum(0x1e), Some(Scancode::new(0x1e)));
        assert_eq!(Scancode::from_qnum(0xc8), Some(Scancode::ext(0x48)));
        assert_eq!(Scancode::from_qnum(0x100), None);
        assert_eq!(Scancode::from_qnum(0x80), None);
    }

    #[test]
    fn ctrl_alt_digit_switches() {
        let mut t = ConsoleSwitch::new();
        assert_eq!(t.key(0x32, true), KeyAction::Forward);
        assert_eq!(t.key(0x32, false), KeyAction::Forward);
        assert_eq!(t.key(0xffe3, true), KeyAction::Forward);
        assert_eq!(t.key(0x32, true), KeyAction::Forward); // Ctrl alone
        assert_eq!(t.key(0x32, false), KeyAction::Forward);
        assert_eq!(t.key(0xffe9, true), KeyAction::Forward);
        assert_eq!(t.key(0x32, true), KeyAction::Switch(2));
        assert_eq!(t.key(0xffe9, false), KeyAction::Forward);
        assert_eq!(t.key(0x32, false), KeyAction::Swallow); // release after Alt went up
        assert_eq!(t.key(0xffea, true), KeyAction::Forward); // right Alt counts too
        assert_eq!(t.key(0x31, true), KeyAction::Switch(1));
        assert_eq!(t.key(0x31, false), KeyAction::Swallow);
        assert_eq!(t.key(0xffe3, false), KeyAction::Forward);
        assert_eq!(t.key(0x33, true), KeyAction::Forward);
    }
}
