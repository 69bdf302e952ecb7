//! UUID/GUID text forms and the well-known label GUIDs.
//!
//! Labels store the namespace `uuid` in RFC 4122 byte order, but the Linux
//! kernel stores `type_guid` and `abstraction_guid` as `guid_t`: the first
//! three groups are little-endian. `ndctl read-labels -j` prints every field
//! with `uuid_unparse` over the raw bytes, so those two GUIDs show up with the
//! first three groups byte-swapped relative to their canonical spelling.

/// Canonical spelling of the NFIT persistent-memory SPA range type GUID.
pub const PMEM_TYPE_GUID_STR: &str = "66f0d379-b4f3-4074-ac43-0d3318b78cdb";
/// Abstraction GUID of a BTT (claim class `btt`, v1.1 BTT layout).
pub const BTT_GUID_STR: &str = "8aed63a2-29a2-4c66-8b12-f05d15d3922a";
/// Abstraction GUID of a BTT2 (v1.2 "sector" mode).
pub const BTT2_GUID_STR: &str = "18633bfc-1735-4217-8ac9-17239282d3f8";
/// Abstraction GUID of a PFN info block (fsdax).
pub const PFN_GUID_STR: &str = "266400ba-fb9f-4677-bcb0-968f11d0d225";
/// Abstraction GUID of a DAX info block (devdax).
pub const DAX_GUID_STR: &str = "97a86d9c-3cdd-4eda-986f-5068b4f80088";

/// Format 16 raw bytes the way `uuid_unparse` does: lowercase, 8-4-4-4-12, bytes in storage order.
pub fn format_uuid(bytes: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        s.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    s
}

/// Parse a canonical `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` string into bytes in
/// text order (RFC 4122 / `uuid_parse`). `None` if it is not a well-formed UUID.
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let t = text.as_bytes();
    if t.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut nibbles = Vec::with_capacity(32);
    for (i, &c) in t.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        nibbles.push(char::from(c).to_digit(16)?);
    }
    for (i, pair) in nibbles.chunks_exact(2).enumerate() {
        // Each nibble is < 16, so the byte fits.
        out[i] = ((pair[0] << 4) | pair[1]) as u8;
    }
    Some(out)
}

/// Convert between RFC 4122 byte order and `guid_t` (mixed-endian) byte order.
/// The swap is its own inverse.
pub fn swap_guid_bytes(b: &[u8; 16]) -> [u8; 16] {
    let mut o = *b;
    o[0..4].reverse();
    o[4..6].reverse();
    o[6..8].reverse();
    o
}

/// Parse a canonical GUID string into the `guid_t` bytes the kernel stores in labels.
pub fn parse_guid(text: &str) -> Option<[u8; 16]> {
    parse_uuid(text).map(|b| swap_guid_bytes(&b))
}

/// Format `guid_t` bytes back to the canonical GUID spelling (inverse of [`parse_guid`]).
pub fn format_guid(bytes: &[u8; 16]) -> String {
    format_uuid(&swap_guid_bytes(bytes))
}

const fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

/// Compile-time version of [`parse_guid`] for the constants below (input is trusted).
const fn guid_const(s: &str) -> [u8; 16] {
    let t = s.as_bytes();
    let mut rfc = [0u8; 16];
    let mut i = 0;
    let mut j = 0;
    while i < t.len() {
        if t[i] == b'-' {
            i += 1;
            continue;
        }
        rfc[j] = (hex(t[i]) << 4) | hex(t[i + 1]);
        j += 1;
        i += 2;
    }
    [
        rfc[3], rfc[2], rfc[1], rfc[0], rfc[5], rfc[4], rfc[7], rfc[6], rfc[8], rfc[9], rfc[10],
        rfc[11], rfc[12], rfc[13], rfc[14], rfc[15],
    ]
}

/// `type_guid` bytes of a pmem label (the NFIT PM SPA range GUID as `guid_t`).
pub const PMEM_TYPE_GUID: [u8; 16] = guid_const(PMEM_TYPE_GUID_STR);
/// `abstraction_guid` bytes for BTT.
pub const BTT_GUID: [u8; 16] = guid_const(BTT_GUID_STR);
/// `abstraction_guid` bytes for BTT2.
pub const BTT2_GUID: [u8; 16] = guid_const(BTT2_GUID_STR);
/// `abstraction_guid` bytes for PFN (fsdax).
pub const PFN_GUID: [u8; 16] = guid_const(PFN_GUID_STR);
/// `abstraction_guid` bytes for DAX (devdax).
pub const DAX_GUID: [u8; 16] = guid_const(DAX_GUID_STR);

/// Namespace personality ("claim class") named by a v1.2 abstraction GUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimClass {
    /// All-zero GUID: raw namespace.
    None,
    /// BTT v1.
    Btt,
    /// BTT v2 (sector mode with v1.2 labels).
    Btt2,
    /// fsdax (PFN info block).
    Pfn,
    /// devdax (DAX info block).
    Dax,
    /// A GUID Linux does not know; preserved on update.
    Unknown,
}

impl ClaimClass {
    /// Classify `guid_t` bytes read from a label.
    pub fn from_guid(bytes: &[u8; 16]) -> ClaimClass {
        match *bytes {
            b if b == [0; 16] => ClaimClass::None,
            b if b == BTT_GUID => ClaimClass::Btt,
            b if b == BTT2_GUID => ClaimClass::Btt2,
            b if b == PFN_GUID => ClaimClass::Pfn,
            b if b == DAX_GUID => ClaimClass::Dax,
            _ => ClaimClass::Unknown,
        }
    }
}
