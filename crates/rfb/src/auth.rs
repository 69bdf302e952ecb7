//! VNC Authentication (RFC 6143 §7.2.2): DES-encrypt a 16-byte challenge with the password.
//!
//! The key is the password truncated or zero-padded to 8 bytes, with the bits of each byte
//! mirrored: the original VNC code fed the bytes to a DES implementation that numbered key bits
//! from the other end, and every client since does the same (RFC 6143 §7.2.2 leaves this out;
//! see the RFB errata and QEMU's `ui/vnc.c`, which reverses the bits the same way). Only the
//! first 8 bytes of a password matter. This is weak (56-bit DES, no channel protection): it keeps
//! strangers out of a loopback or tunnelled display, nothing more.

use des::Des;
use des::cipher::{Array, BlockCipherEncrypt, KeyInit};

/// The 8-byte DES key VNC derives from a password.
pub fn vnc_key(password: &[u8]) -> [u8; 8] {
    let mut key = [0u8; 8];
    for (k, p) in key.iter_mut().zip(password) {
        *k = p.reverse_bits();
    }
    key
}

/// The response a client computes for `challenge` with `password`.
pub fn vnc_auth_response(password: &[u8], challenge: &[u8; 16]) -> [u8; 16] {
    let cipher = Des::new(&Array(vnc_key(password)));
    let mut out = *challenge;
    for half in out.chunks_exact_mut(8) {
        let mut block = Array::default();
        block.copy_from_slice(half);
        cipher.encrypt_block(&mut block);
        half.copy_from_slice(&block);
    }
    out
}

/// True if `response` is right for `challenge` and `password`; compares in constant time.
pub fn vnc_auth_check(password: &[u8], challenge: &[u8; 16], response: &[u8; 16]) -> bool {
    let want = vnc_auth_response(password, challenge);
    want.iter()
        .zip(response)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_bits_are_mirrored_and_truncated() {
        assert_eq!(vnc_key(b"\x01\x80"), [0x80, 0x01, 0, 0, 0, 0, 0, 0]);
        assert_eq!(vnc_key(b"abcdefghXYZ"), vnc_key(b"abcdefgh"));
    }

    #[test]
    fn matches_openssl_des_with_mirrored_key() {
        // `openssl enc -des-ecb -K cea6c64ea62e0000 -nopad` of "0123456789abcdef";
        // cea6c64ea62e0000 is "secret\0\0" with each byte's bits mirrored.
        let want = [
            0x75, 0x24, 0x40, 0xee, 0x2b, 0xfc, 0xc2, 0xa0, 0xd9, 0x01, 0x3f, 0xd2, 0x03, 0x71,
            0xe2, 0x3b,
        ];
        assert_eq!(
            vnc_key(b"secret"),
            [0xce, 0xa6, 0xc6, 0x4e, 0xa6, 0x2e, 0, 0]
        );
        assert_eq!(vnc_auth_response(b"secret", b"0123456789abcdef"), want);
    }

    #[test]
    fn check_accepts_right_and_rejects_wrong() {
        let ch = *b"0123456789abcdef";
        let r = vnc_auth_response(b"secret", &ch);
        assert!(vnc_auth_check(b"secret", &ch, &r));
        assert!(!vnc_auth_check(b"secreT", &ch, &r));
        // Bytes beyond the eighth are ignored, as in every VNC implementation.
        let r = vnc_auth_response(b"longpassword", &ch);
        assert!(vnc_auth_check(b"longpass", &ch, &r));
    }
}
