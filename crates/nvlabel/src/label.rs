//! Namespace label (`struct nvdimm_efi_label`): 128 bytes in v1.1, 256 in v1.2.

use crate::bytes::{le_u16, le_u32, le_u64, put_u16, put_u32, put_u64};
use crate::fletcher::fletcher64_zeroed;

/// Label flag: read-only label.
pub const NSLABEL_FLAG_ROLABEL: u32 = 0x1;
/// Label flag: BLK (local) namespace.
pub const NSLABEL_FLAG_LOCAL: u32 = 0x2;
/// Label flag: v1.1 BTT marker.
pub const NSLABEL_FLAG_BTT: u32 = 0x4;
/// Label flag: label is being updated.
pub const NSLABEL_FLAG_UPDATING: u32 = 0x8;
/// Length of the name field, including its terminating NUL.
pub const NSLABEL_NAME_LEN: usize = 64;
/// Offset of the v1.2 label checksum.
pub const LABEL_CHECKSUM_OFFSET: usize = 248;

/// One namespace label, decoded. Fields beyond `slot` only exist in 256-byte
/// (v1.2) labels; they are zero when decoded from a 128-byte slot and ignored
/// when encoding one. Reserved bytes are not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// Namespace UUID, bytes in RFC 4122 order as stored.
    pub uuid: [u8; 16],
    /// Name bytes, NUL-padded (see [`Label::name_str`], [`Label::set_name`]).
    pub name: [u8; NSLABEL_NAME_LEN],
    /// `NSLABEL_FLAG_*` bits.
    pub flags: u32,
    /// Number of labels in the set (interleave ways; 1 for a pmvm/QEMU vNVDIMM).
    pub nlabel: u16,
    /// Position of this DIMM in the set.
    pub position: u16,
    /// Interleave-set cookie (see [`crate::cookie`]).
    pub isetcookie: u64,
    /// Sector size (0 = default) for pmem.
    pub lbasize: u64,
    /// DIMM physical address of the extent.
    pub dpa: u64,
    /// Size of the extent in bytes.
    pub rawsize: u64,
    /// Slot number this label claims to be stored in.
    pub slot: u32,
    /// v1.2 alignment hint (Linux writes 0).
    pub align: u8,
    /// v1.2 address-type GUID, `guid_t` byte order (pmem: [`crate::PMEM_TYPE_GUID`]).
    pub type_guid: [u8; 16],
    /// v1.2 claim-class GUID, `guid_t` byte order.
    pub abstraction_guid: [u8; 16],
    /// v1.2 checksum as stored (recomputed by [`Label::encode`]).
    pub checksum: u64,
}

impl Default for Label {
    fn default() -> Self {
        Label {
            uuid: [0; 16],
            name: [0; NSLABEL_NAME_LEN],
            flags: 0,
            nlabel: 1,
            position: 0,
            isetcookie: 0,
            lbasize: 0,
            dpa: 0,
            rawsize: 0,
            slot: 0,
            align: 0,
            type_guid: [0; 16],
            abstraction_guid: [0; 16],
            checksum: 0,
        }
    }
}

/// Error from [`Label::set_name`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "label name is {0} bytes long; the label field holds at most 63 bytes plus a NUL, shorten it"
)]
pub struct NameTooLong(pub usize);

impl Label {
    /// Decode a label from a slot. `raw.len()` selects the format: at least 256
    /// bytes decodes v1.2 fields, at least 128 decodes v1.1; shorter input
    /// returns `None`.
    pub fn decode(raw: &[u8]) -> Option<Label> {
        let v11 = raw.get(..128)?;
        let mut l = Label {
            uuid: arr16(&v11[0..16]),
            name: [0; NSLABEL_NAME_LEN],
            flags: le_u32(v11, 80),
            nlabel: le_u16(v11, 84),
            position: le_u16(v11, 86),
            isetcookie: le_u64(v11, 88),
            lbasize: le_u64(v11, 96),
            dpa: le_u64(v11, 104),
            rawsize: le_u64(v11, 112),
            slot: le_u32(v11, 120),
            ..Label::default()
        };
        l.name.copy_from_slice(&v11[16..80]);
        if let Some(v12) = raw.get(..256) {
            l.align = v12[124];
            l.type_guid = arr16(&v12[128..144]);
            l.abstraction_guid = arr16(&v12[144..160]);
            l.checksum = le_u64(v12, LABEL_CHECKSUM_OFFSET);
        }
        Some(l)
    }

    /// Encode into `out` (128 or 256 bytes; other lengths are filled as far as
    /// the v1.1 / v1.2 layout reaches and only 256-byte output gets a checksum).
    /// Returns the checksum written (0 for 128-byte labels).
    pub fn encode(&self, out: &mut [u8]) -> u64 {
        out.fill(0);
        if out.len() < 128 {
            return 0;
        }
        out[0..16].copy_from_slice(&self.uuid);
        out[16..80].copy_from_slice(&self.name);
        put_u32(out, 80, self.flags);
        put_u16(out, 84, self.nlabel);
        put_u16(out, 86, self.position);
        put_u64(out, 88, self.isetcookie);
        put_u64(out, 96, self.lbasize);
        put_u64(out, 104, self.dpa);
        put_u64(out, 112, self.rawsize);
        put_u32(out, 120, self.slot);
        if out.len() < 256 {
            return 0;
        }
        out[124] = self.align;
        out[128..144].copy_from_slice(&self.type_guid);
        out[144..160].copy_from_slice(&self.abstraction_guid);
        let sum = fletcher64_zeroed(&out[..256], LABEL_CHECKSUM_OFFSET);
        put_u64(out, LABEL_CHECKSUM_OFFSET, sum);
        sum
    }

    /// The name up to its first NUL (at most 63 bytes, like ndctl), lossily decoded as UTF-8.
    pub fn name_str(&self) -> String {
        let field = &self.name[..NSLABEL_NAME_LEN - 1];
        let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
        String::from_utf8_lossy(&field[..end]).into_owned()
    }

    /// Set the name (at most 63 bytes; the rest is NUL-padded).
    pub fn set_name(&mut self, name: &str) -> Result<(), NameTooLong> {
        let b = name.as_bytes();
        if b.len() >= NSLABEL_NAME_LEN {
            return Err(NameTooLong(b.len()));
        }
        self.name = [0; NSLABEL_NAME_LEN];
        self.name[..b.len()].copy_from_slice(b);
        Ok(())
    }
}

/// Whether a 256-byte label's stored checksum matches its contents.
pub fn label_checksum_ok(raw: &[u8]) -> bool {
    match raw.get(..256) {
        Some(v12) => {
            fletcher64_zeroed(v12, LABEL_CHECKSUM_OFFSET) == le_u64(v12, LABEL_CHECKSUM_OFFSET)
        }
        None => false,
    }
}

fn arr16(b: &[u8]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    a
}
