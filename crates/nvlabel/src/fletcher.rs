//! Fletcher-64 as used by Linux `nd_fletcher64` and ndctl `util/fletcher.h`.

/// Fletcher-64 over the little-endian 32-bit words of `buf`.
///
/// `lo` is a wrapping 32-bit sum of the words, `hi` a wrapping 64-bit sum of
/// the running `lo` values; the result is `(hi << 32) | lo` (the shift drops
/// the upper half of `hi`). Trailing bytes that do not form a whole word are
/// ignored, exactly like the C original. Used for index blocks, v1.2 labels
/// and interleave-set cookies, always with the checksum field zeroed.
pub fn fletcher64(buf: &[u8]) -> u64 {
    let mut lo: u32 = 0;
    let mut hi: u64 = 0;
    for word in buf.chunks_exact(4) {
        let w = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        lo = lo.wrapping_add(w);
        hi = hi.wrapping_add(u64::from(lo));
    }
    (hi << 32) | u64::from(lo)
}

/// Fletcher-64 of `buf` computed as if the 8 bytes at `field_off` were zero
/// (the way every checksummed structure in the LSA is verified). Bytes of
/// the field that lie outside `buf` are simply absent.
pub(crate) fn fletcher64_zeroed(buf: &[u8], field_off: usize) -> u64 {
    let mut lo: u32 = 0;
    let mut hi: u64 = 0;
    for (i, word) in buf.chunks_exact(4).enumerate() {
        let off = i * 4;
        let w = if off >= field_off && off < field_off.saturating_add(8) {
            0
        } else {
            u32::from_le_bytes([word[0], word[1], word[2], word[3]])
        };
        lo = lo.wrapping_add(w);
        hi = hi.wrapping_add(u64::from(lo));
    }
    (hi << 32) | u64::from(lo)
}
