//! QEMU-compatible size strings (`qemu_strtosz` semantics).
//!
//! Accepted: decimal integers, `0x` hex integers (no suffix, no fraction),
//! decimal fractions (`1.5G`, `.5M`, `1.k`) when the result is a whole number
//! of bytes, and one optional case-insensitive suffix `B K M G T P E`
//! (binary multiples). Without a suffix the caller's default applies: QEMU
//! reads `-m 512` as MiB but `size=4096` as bytes.
//!
//! Deviation from QEMU (deliberate): QEMU rounds a fraction to the nearest
//! byte (`1.3K` -> 1331); we reject fractions that are not whole bytes, since
//! a silently rounded memory/NVDIMM size is never what the user meant.

use thiserror::Error;

/// Hint appended to every size error.
const SIZE_HINT: &str = "use a non-negative integer with an optional binary suffix \
B, K, M, G, T, P or E (e.g. 4G, 512M, 1.5G, 4096, 0x1000)";

/// Binary size suffix (`K` = 2^10 ... `E` = 2^60).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suffix {
    /// Bytes (x1).
    B,
    /// KiB (x2^10).
    K,
    /// MiB (x2^20).
    M,
    /// GiB (x2^30).
    G,
    /// TiB (x2^40).
    T,
    /// PiB (x2^50).
    P,
    /// EiB (x2^60).
    E,
}

impl Suffix {
    /// All suffixes, smallest first.
    pub const ALL: [Suffix; 7] = [
        Suffix::B,
        Suffix::K,
        Suffix::M,
        Suffix::G,
        Suffix::T,
        Suffix::P,
        Suffix::E,
    ];

    /// log2 of the multiplier.
    pub const fn shift(self) -> u32 {
        match self {
            Suffix::B => 0,
            Suffix::K => 10,
            Suffix::M => 20,
            Suffix::G => 30,
            Suffix::T => 40,
            Suffix::P => 50,
            Suffix::E => 60,
        }
    }

    /// The multiplier in bytes.
    pub const fn multiplier(self) -> u64 {
        1u64 << self.shift()
    }

    /// Parse a suffix character, case-insensitively (like QEMU's `suffix_mul`).
    pub fn from_char(c: char) -> Option<Suffix> {
        match c.to_ascii_uppercase() {
            'B' => Some(Suffix::B),
            'K' => Some(Suffix::K),
            'M' => Some(Suffix::M),
            'G' => Some(Suffix::G),
            'T' => Some(Suffix::T),
            'P' => Some(Suffix::P),
            'E' => Some(Suffix::E),
            _ => None,
        }
    }

    /// Letter used on a QEMU command line (`B` for bytes).
    pub const fn letter(self) -> char {
        match self {
            Suffix::B => 'B',
            Suffix::K => 'K',
            Suffix::M => 'M',
            Suffix::G => 'G',
            Suffix::T => 'T',
            Suffix::P => 'P',
            Suffix::E => 'E',
        }
    }

    /// IEC unit name used by [`format_size`].
    pub const fn unit_name(self) -> &'static str {
        match self {
            Suffix::B => "B",
            Suffix::K => "KiB",
            Suffix::M => "MiB",
            Suffix::G => "GiB",
            Suffix::T => "TiB",
            Suffix::P => "PiB",
            Suffix::E => "EiB",
        }
    }
}

/// A size string that could not be parsed. Every message names the value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SizeError {
    /// The string was empty.
    #[error("invalid size '': empty value; {SIZE_HINT}")]
    Empty,
    /// A leading minus sign.
    #[error("invalid size '{value}': sizes cannot be negative; {SIZE_HINT}")]
    Negative {
        /// The offending input.
        value: String,
    },
    /// The result does not fit in 64 bits.
    #[error("invalid size '{value}': value exceeds 2^64-1 bytes (16 EiB); {SIZE_HINT}")]
    Overflow {
        /// The offending input.
        value: String,
    },
    /// A fraction that does not give a whole number of bytes.
    #[error(
        "invalid size '{value}': the fraction does not give a whole number of bytes; \
         write it as an integer in a smaller unit (e.g. 1331K instead of 1.3M)"
    )]
    Fraction {
        /// The offending input.
        value: String,
    },
    /// Anything else (bad characters, trailing garbage, hex with suffix...).
    #[error("invalid size '{value}': {reason}; {SIZE_HINT}")]
    Invalid {
        /// The offending input.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Longest input we look at; longer strings are rejected up front so
/// hostile input cannot make parsing slow.
const MAX_INPUT_LEN: usize = 256;

/// Parse a size like QEMU's `qemu_strtosz`, with `default_suffix` applying
/// when the string carries none (`Suffix::M` for `-m`, `Suffix::B` for
/// `size=`, `label-size=`, `align=`, `maxmem=`...).
pub fn parse_size(s: &str, default_suffix: Suffix) -> Result<u64, SizeError> {
    let invalid = |reason: &'static str| SizeError::Invalid {
        value: s.to_owned(),
        reason,
    };
    if s.is_empty() {
        return Err(SizeError::Empty);
    }
    if s.len() > MAX_INPUT_LEN {
        return Err(invalid("value is too long"));
    }
    if s.starts_with('-') {
        return Err(SizeError::Negative {
            value: s.to_owned(),
        });
    }
    let bytes = s.as_bytes();
    // Hex: "0x..." integer only, like QEMU (which refuses a fraction or suffix).
    if bytes.len() >= 2 && bytes[0] == b'0' && (bytes[1] == b'x' || bytes[1] == b'X') {
        let digits = &s[2..];
        if digits.is_empty() {
            return Err(invalid("'0x' must be followed by hex digits"));
        }
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("hex values take no fraction or suffix"));
        }
        let trimmed = digits.trim_start_matches('0');
        if trimmed.len() > 16 {
            return Err(SizeError::Overflow {
                value: s.to_owned(),
            });
        }
        if trimmed.is_empty() {
            return Ok(0);
        }
        return u64::from_str_radix(trimmed, 16).map_err(|_| invalid("bad hex digits"));
    }

    let int_len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let (int_part, rest) = s.split_at(int_len);
    let (frac_part, rest) = match rest.strip_prefix('.') {
        Some(after) => {
            let n = after.bytes().take_while(|b| b.is_ascii_digit()).count();
            after.split_at(n)
        }
        None => ("", rest),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(invalid("no digits"));
    }
    let mut chars = rest.chars();
    let suffix = match chars.next() {
        None => default_suffix,
        Some(c) => Suffix::from_char(c).ok_or_else(|| invalid("unknown suffix or garbage"))?,
    };
    if chars.next().is_some() {
        return Err(invalid(
            "trailing characters after the suffix (only one letter, e.g. G, not GiB)",
        ));
    }

    let mut int_val: u64 = 0;
    for b in int_part.bytes() {
        int_val = int_val
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or_else(|| SizeError::Overflow {
                value: s.to_owned(),
            })?;
    }
    let shift = suffix.shift();
    let scaled = int_val
        .checked_mul(1u64 << shift)
        .ok_or_else(|| SizeError::Overflow {
            value: s.to_owned(),
        })?;
    let frac_bytes = fraction_times_pow2(frac_part, shift).ok_or_else(|| SizeError::Fraction {
        value: s.to_owned(),
    })?;
    scaled
        .checked_add(frac_bytes)
        .ok_or_else(|| SizeError::Overflow {
            value: s.to_owned(),
        })
}

/// Exact value of `0.<digits> * 2^shift` if it is an integer, else `None`.
///
/// A terminating decimal fraction with `n` significant digits times `2^k` can
/// only be an integer when `n <= k`, so with `k <= 60` at most 60 digits ever
/// matter; the digit-doubling below is exact and bounded (<= 60 x 60 steps).
fn fraction_times_pow2(digits: &str, shift: u32) -> Option<u64> {
    let sig = digits.trim_end_matches('0');
    if sig.is_empty() {
        return Some(0);
    }
    if sig.len() > shift as usize {
        return None;
    }
    let mut d: Vec<u8> = sig.bytes().map(|b| b - b'0').collect();
    let mut whole: u64 = 0;
    for _ in 0..shift {
        let mut carry = 0u8;
        for digit in d.iter_mut().rev() {
            let v = *digit * 2 + carry;
            *digit = v % 10;
            carry = v / 10;
        }
        // whole < 2^shift <= 2^60 throughout, so this cannot overflow.
        whole = whole * 2 + u64::from(carry);
    }
    if d.iter().all(|&x| x == 0) {
        Some(whole)
    } else {
        None
    }
}

/// Largest suffix whose multiplier divides `v` exactly (B for 0).
fn exact_suffix(v: u64) -> Suffix {
    if v == 0 {
        return Suffix::B;
    }
    let mut best = Suffix::B;
    for s in Suffix::ALL {
        if v.is_multiple_of(s.multiplier()) {
            best = s;
        }
    }
    best
}

/// Human-readable exact size: "4 GiB", "130 MiB", "128 KiB", or "4097 B"
/// when no binary unit divides the value. Never rounds.
pub fn format_size(v: u64) -> String {
    let s = exact_suffix(v);
    format!("{} {}", v >> s.shift(), s.unit_name())
}

/// Exact size for a QEMU/pmvm command line: "4G", "130M", "128K", "4097B".
/// Always carries a suffix, so it parses back to `v` whatever the option's
/// default suffix is (`-m` defaults to MiB).
pub fn format_size_arg(v: u64) -> String {
    let s = exact_suffix(v);
    format!("{}{}", v >> s.shift(), s.letter())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GIB, KIB, MIB};

    #[test]
    fn plain_and_suffixes() {
        assert_eq!(parse_size("4096", Suffix::B), Ok(4096));
        assert_eq!(parse_size("512", Suffix::M), Ok(512 * MIB));
        assert_eq!(parse_size("4G", Suffix::B), Ok(4 * GIB));
        assert_eq!(parse_size("4g", Suffix::M), Ok(4 * GIB));
        assert_eq!(parse_size("2M", Suffix::B), Ok(2 * MIB));
        assert_eq!(parse_size("256K", Suffix::B), Ok(256 * KIB));
        assert_eq!(parse_size("256k", Suffix::B), Ok(256 * KIB));
        assert_eq!(parse_size("10b", Suffix::M), Ok(10));
        assert_eq!(parse_size("1T", Suffix::B), Ok(1 << 40));
        assert_eq!(parse_size("1p", Suffix::B), Ok(1 << 50));
        assert_eq!(parse_size("15E", Suffix::B), Ok(15 << 60));
        assert_eq!(parse_size("010", Suffix::B), Ok(10));
        assert_eq!(parse_size("0x1000", Suffix::M), Ok(4096));
        assert_eq!(parse_size("0X1e", Suffix::B), Ok(30));
        assert_eq!(parse_size("18446744073709551615", Suffix::B), Ok(u64::MAX));
    }

    #[test]
    fn fractions() {
        assert_eq!(parse_size("1.5G", Suffix::B), Ok(1536 * MIB));
        assert_eq!(parse_size(".5M", Suffix::B), Ok(512 * KIB));
        assert_eq!(parse_size("1.k", Suffix::B), Ok(1024));
        assert_eq!(parse_size("1.0", Suffix::B), Ok(1));
        assert_eq!(parse_size("0.25", Suffix::M), Ok(256 * KIB));
        assert_eq!(parse_size("1.125K", Suffix::B), Ok(1152));
        assert_eq!(parse_size("1.00000", Suffix::G), Ok(GIB));
        // 2^-60 * 2^60 = 1 byte: the deepest fraction that is still whole.
        assert_eq!(
            parse_size(
                "0.000000000000000000867361737988403547205962240695953369140625E",
                Suffix::B
            ),
            Ok(1)
        );
        assert!(matches!(
            parse_size("1.3K", Suffix::B),
            Err(SizeError::Fraction { .. })
        ));
        assert!(matches!(
            parse_size("1.5", Suffix::B),
            Err(SizeError::Fraction { .. })
        ));
        assert!(matches!(
            parse_size("0.1G", Suffix::B),
            Err(SizeError::Fraction { .. })
        ));
    }

    #[test]
    fn rejects() {
        assert_eq!(parse_size("", Suffix::B), Err(SizeError::Empty));
        assert!(matches!(
            parse_size("-1", Suffix::B),
            Err(SizeError::Negative { .. })
        ));
        assert!(matches!(
            parse_size("16E", Suffix::B),
            Err(SizeError::Overflow { .. })
        ));
        assert!(matches!(
            parse_size("18446744073709551616", Suffix::B),
            Err(SizeError::Overflow { .. })
        ));
        assert!(matches!(
            parse_size("0x10000000000000000", Suffix::B),
            Err(SizeError::Overflow { .. })
        ));
        for bad in [
            "abc", "4GiB", "4 G", " 4G", "4G ", "1x", "0x", "0x10K", "0x1.5", ".", "G", "1..5",
            "+5", "4Q", "1e3",
        ] {
            assert!(
                matches!(parse_size(bad, Suffix::B), Err(SizeError::Invalid { .. })),
                "{bad} should be rejected as invalid: {:?}",
                parse_size(bad, Suffix::B)
            );
        }
    }

    #[test]
    fn messages_name_the_value() {
        let e = parse_size("4GiB", Suffix::B).unwrap_err().to_string();
        assert!(e.contains("'4GiB'"), "{e}");
        assert!(e.contains("4G"), "{e}");
        let e = parse_size("-5M", Suffix::B).unwrap_err().to_string();
        assert!(
            e.starts_with("invalid size '-5M': sizes cannot be negative"),
            "{e}"
        );
    }

    #[test]
    fn formatting() {
        assert_eq!(format_size(4 * GIB), "4 GiB");
        assert_eq!(format_size(130 * MIB), "130 MiB");
        assert_eq!(format_size(128 * KIB), "128 KiB");
        assert_eq!(format_size(4097), "4097 B");
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(4 * GIB - 2 * MIB), "4094 MiB");
        assert_eq!(format_size(u64::MAX), "18446744073709551615 B");
        assert_eq!(format_size_arg(16_913_530_880), "16130M");
        assert_eq!(format_size_arg(128 * KIB), "128K");
        assert_eq!(format_size_arg(4097), "4097B");
        assert_eq!(format_size_arg(1 << 60), "1E");
    }
}
