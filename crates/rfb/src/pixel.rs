//! Pixel formats (RFC 6143 §7.4) and conversion from the server's XRGB8888 framebuffer.
//!
//! The server keeps one source format, XRGB8888 (`0x00RRGGBB` in a `u32`), because that is what
//! ramfb, `screen_info` linear framebuffers and the text renderer produce; each client may ask for
//! any true-colour format, so conversion happens once per rectangle, per client, on the way out.

use crate::error::ProtocolError;

/// A client's (or the server's) pixel format, as carried by ServerInit and SetPixelFormat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PixelFormat {
    /// Bits per pixel on the wire: 8, 16 or 32.
    pub bits_per_pixel: u8,
    /// Number of useful bits (informational).
    pub depth: u8,
    /// Multi-byte pixels are big-endian.
    pub big_endian: bool,
    /// True colour (the only kind this server produces); colour-map formats are refused.
    pub true_colour: bool,
    /// Maximum red value (2^n - 1).
    pub red_max: u16,
    /// Maximum green value.
    pub green_max: u16,
    /// Maximum blue value.
    pub blue_max: u16,
    /// Shift of red within a pixel.
    pub red_shift: u8,
    /// Shift of green.
    pub green_shift: u8,
    /// Shift of blue.
    pub blue_shift: u8,
}

impl Default for PixelFormat {
    fn default() -> Self {
        Self::XRGB8888
    }
}

impl PixelFormat {
    /// 32 bpp, depth 24, little-endian, `0x00RRGGBB`: the server's native format.
    pub const XRGB8888: PixelFormat = PixelFormat {
        bits_per_pixel: 32,
        depth: 24,
        big_endian: false,
        true_colour: true,
        red_max: 255,
        green_max: 255,
        blue_max: 255,
        red_shift: 16,
        green_shift: 8,
        blue_shift: 0,
    };

    /// 16 bpp RGB565, little-endian.
    pub const RGB565: PixelFormat = PixelFormat {
        bits_per_pixel: 16,
        depth: 16,
        big_endian: false,
        true_colour: true,
        red_max: 31,
        green_max: 63,
        blue_max: 31,
        red_shift: 11,
        green_shift: 5,
        blue_shift: 0,
    };

    /// 8 bpp BGR233 (the classic low-bandwidth true-colour format).
    pub const BGR233: PixelFormat = PixelFormat {
        bits_per_pixel: 8,
        depth: 8,
        big_endian: false,
        true_colour: true,
        red_max: 7,
        green_max: 7,
        blue_max: 3,
        red_shift: 0,
        green_shift: 3,
        blue_shift: 6,
    };

    /// Parses the 16-byte wire form. Does not validate; see [`Self::validate`].
    pub fn from_bytes(b: &[u8; 16]) -> PixelFormat {
        PixelFormat {
            bits_per_pixel: b[0],
            depth: b[1],
            big_endian: b[2] != 0,
            true_colour: b[3] != 0,
            red_max: u16::from_be_bytes([b[4], b[5]]),
            green_max: u16::from_be_bytes([b[6], b[7]]),
            blue_max: u16::from_be_bytes([b[8], b[9]]),
            red_shift: b[10],
            green_shift: b[11],
            blue_shift: b[12],
        }
    }

    /// The 16-byte wire form (3 bytes of padding at the end).
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0] = self.bits_per_pixel;
        b[1] = self.depth;
        b[2] = u8::from(self.big_endian);
        b[3] = u8::from(self.true_colour);
        b[4..6].copy_from_slice(&self.red_max.to_be_bytes());
        b[6..8].copy_from_slice(&self.green_max.to_be_bytes());
        b[8..10].copy_from_slice(&self.blue_max.to_be_bytes());
        b[10] = self.red_shift;
        b[11] = self.green_shift;
        b[12] = self.blue_shift;
        b
    }

    /// Bytes per pixel on the wire.
    pub fn bytes_per_pixel(&self) -> usize {
        usize::from(self.bits_per_pixel / 8)
    }

    /// Checks that this server can produce the format: true colour, 8/16/32 bpp, every colour
    /// channel non-empty and inside the pixel.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        let bad = |why: &str| Err(ProtocolError::BadPixelFormat(why.to_string()));
        if !matches!(self.bits_per_pixel, 8 | 16 | 32) {
            return bad(&format!("{} bits per pixel", self.bits_per_pixel));
        }
        if !self.true_colour {
            return bad("colour-map formats are not supported");
        }
        let bpp = u32::from(self.bits_per_pixel);
        for (max, shift, name) in [
            (self.red_max, self.red_shift, "red"),
            (self.green_max, self.green_shift, "green"),
            (self.blue_max, self.blue_shift, "blue"),
        ] {
            if max == 0 {
                return bad(&format!("{name} max is zero"));
            }
            let bits = 16 - max.leading_zeros();
            if u32::from(shift) + bits > bpp {
                return bad(&format!("{name} channel does not fit in {bpp} bits"));
            }
        }
        Ok(())
    }

    /// Converts one `0x00RRGGBB` pixel to this format's pixel value (not yet byte-ordered).
    /// Each 8-bit channel is scaled to `0..=max` with rounding.
    #[inline]
    pub fn pixel_value(&self, xrgb: u32) -> u32 {
        let scale = |c: u32, max: u16| (c * u32::from(max) + 127) / 255;
        let r = scale((xrgb >> 16) & 0xff, self.red_max);
        let g = scale((xrgb >> 8) & 0xff, self.green_max);
        let b = scale(xrgb & 0xff, self.blue_max);
        // Shifts are validated to fit; checked_shl keeps an unvalidated format from panicking.
        r.checked_shl(u32::from(self.red_shift)).unwrap_or(0)
            | g.checked_shl(u32::from(self.green_shift)).unwrap_or(0)
            | b.checked_shl(u32::from(self.blue_shift)).unwrap_or(0)
    }

    /// Appends the wire bytes of `src` pixels (XRGB8888) converted to this format.
    pub fn encode_into(&self, src: &[u32], out: &mut Vec<u8>) {
        if *self == Self::XRGB8888 {
            // The common case: a straight little-endian copy.
            for &p in src {
                out.extend_from_slice(&(p & 0x00ff_ffff).to_le_bytes());
            }
            return;
        }
        for &p in src {
            let v = self.pixel_value(p);
            match (self.bits_per_pixel, self.big_endian) {
                (8, _) => out.push(v as u8),
                (16, false) => out.extend_from_slice(&(v as u16).to_le_bytes()),
                (16, true) => out.extend_from_slice(&(v as u16).to_be_bytes()),
                (_, false) => out.extend_from_slice(&v.to_le_bytes()),
                (_, true) => out.extend_from_slice(&v.to_be_bytes()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reference conversion written independently: float scaling, bit-by-bit placement.
    fn reference(fmt: &PixelFormat, xrgb: u32) -> Vec<u8> {
        let ch = |c: u32, max: u16| ((c as f64) * (max as f64) / 255.0).round() as u64;
        let r = ch((xrgb >> 16) & 0xff, fmt.red_max);
        let g = ch((xrgb >> 8) & 0xff, fmt.green_max);
        let b = ch(xrgb & 0xff, fmt.blue_max);
        let v = (r << fmt.red_shift) | (g << fmt.green_shift) | (b << fmt.blue_shift);
        let n = fmt.bytes_per_pixel();
        let mut bytes: Vec<u8> = (0..n).map(|i| (v >> (8 * i)) as u8).collect();
        if fmt.big_endian {
            bytes.reverse();
        }
        bytes
    }

    #[test]
    fn known_formats() {
        let mut out = Vec::new();
        PixelFormat::RGB565.encode_into(&[0x00ff_0000, 0x0000_ff00, 0x0000_00ff], &mut out);
        assert_eq!(out, [0x00, 0xf8, 0xe0, 0x07, 0x1f, 0x00]);
        out.clear();
        PixelFormat::BGR233.encode_into(&[0x00ff_ffff, 0x00ff_0000, 0], &mut out);
        assert_eq!(out, [0xff, 0x07, 0x00]);
        out.clear();
        let be = PixelFormat {
            big_endian: true,
            ..PixelFormat::XRGB8888
        };
        be.encode_into(&[0x0012_3456], &mut out);
        assert_eq!(out, [0x00, 0x12, 0x34, 0x56]);
        out.clear();
        PixelFormat::XRGB8888.encode_into(&[0xff12_3456], &mut out);
        assert_eq!(out, [0x56, 0x34, 0x12, 0x00]);
    }

    #[test]
    fn wire_round_trip_and_validation() {
        for f in [
            PixelFormat::XRGB8888,
            PixelFormat::RGB565,
            PixelFormat::BGR233,
        ] {
            assert_eq!(PixelFormat::from_bytes(&f.to_bytes()), f);
            f.validate().unwrap();
        }
        let mut f = PixelFormat::XRGB8888;
        f.bits_per_pixel = 24;
        assert!(f.validate().is_err());
        f = PixelFormat::RGB565;
        f.green_max = 0;
        assert!(f.validate().is_err());
        f = PixelFormat::RGB565;
        f.red_shift = 12;
        assert!(f.validate().is_err());
        f = PixelFormat::BGR233;
        f.true_colour = false;
        assert!(f.validate().is_err());
    }

    fn any_valid_format() -> impl Strategy<Value = PixelFormat> {
        (
            prop_oneof![Just(8u8), Just(16u8), Just(32u8)],
            any::<bool>(),
            1u32..=8,
            1u32..=8,
            1u32..=8,
            any::<[u8; 3]>(),
        )
            .prop_filter_map("fits", |(bpp, be, rb, gb, bb, sh)| {
                let bits = [rb, gb, bb];
                let mut shifts = [0u8; 3];
                for i in 0..3 {
                    let room = u32::from(bpp).checked_sub(bits[i])?;
                    shifts[i] = (u32::from(sh[i]) % (room + 1)) as u8;
                }
                let f = PixelFormat {
                    bits_per_pixel: bpp,
                    depth: bpp,
                    big_endian: be,
                    true_colour: true,
                    red_max: ((1u32 << rb) - 1) as u16,
                    green_max: ((1u32 << gb) - 1) as u16,
                    blue_max: ((1u32 << bb) - 1) as u16,
                    red_shift: shifts[0],
                    green_shift: shifts[1],
                    blue_shift: shifts[2],
                };
                f.validate().ok().map(|_| f)
            })
    }

    proptest! {
        #[test]
        fn conversion_matches_reference(fmt in any_valid_format(), px in any::<u32>()) {
            let px = px & 0x00ff_ffff;
            let mut out = Vec::new();
            fmt.encode_into(&[px], &mut out);
            // Channels may overlap in a hostile-but-valid format; the reference ORs likewise.
            prop_assert_eq!(out, reference(&fmt, px));
        }

        #[test]
        fn from_bytes_never_panics(b in any::<[u8; 16]>(), px in any::<u32>()) {
            let f = PixelFormat::from_bytes(&b);
            let _ = f.validate();
            let _ = f.pixel_value(px);
        }
    }
}
