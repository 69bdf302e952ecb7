//! NFIT / FIT bytes exactly as QEMU builds them (`qemu-nvdimm.md` §3).
//!
//! The "FIT" is the NFIT body without its 40-byte header: per device an SPA Range, a Memory
//! Device to SPA Range Map and an NVDIMM Control Region structure, then optionally one Platform
//! Capabilities structure. The same bytes are returned by `\_SB.NVDR._FIT` at run time, so
//! hotplug only appends: the entries of a device never change once built.

use std::fmt;
use std::str::FromStr;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{Immutable, IntoBytes, KnownLayout};

use crate::header::{OemIds, build_table};

/// NFIT structure type: System Physical Address Range.
pub const NFIT_TYPE_SPA: u16 = 0;
/// NFIT structure type: Memory Device to SPA Range Map.
pub const NFIT_TYPE_MEMDEV: u16 = 1;
/// NFIT structure type: NVDIMM Control Region.
pub const NFIT_TYPE_DCR: u16 = 4;
/// NFIT structure type: Platform Capabilities.
pub const NFIT_TYPE_CAPS: u16 = 7;

/// Persistent-memory range type GUID 66F0D379-B4F3-4074-AC43-0D3318B78CDB, in table byte order.
pub const PM_RANGE_GUID: [u8; 16] = [
    0x79, 0xd3, 0xf0, 0x66, 0xf3, 0xb4, 0x74, 0x40, 0xac, 0x43, 0x0d, 0x33, 0x18, 0xb7, 0x8c, 0xdb,
];
/// SPA flags: bit0 "control region for hot add only" | bit1 "proximity domain valid" (QEMU: 3).
pub const SPA_FLAGS: u16 = 0x3;
/// SPA memory mapping attributes: EFI_MEMORY_WB | EFI_MEMORY_NV.
pub const SPA_MEM_ATTR: u64 = 0x8008;
/// MemDev NVDIMM state flag bit 3: NOT_ARMED (set for `unarmed=on`).
pub const MEMDEV_FLAG_NOT_ARMED: u16 = 0x8;
/// DCR vendor ID (Intel), as QEMU.
pub const DCR_VENDOR_ID: u16 = 0x8086;
/// DCR device ID, as QEMU.
pub const DCR_DEVICE_ID: u16 = 0x0001;
/// DCR revision ID, as QEMU.
pub const DCR_REVISION_ID: u16 = 0x0001;
/// Region format interface code: byte-addressable persistent memory, no energy source.
pub const DCR_FORMAT_CODE: u16 = 0x0301;
/// Base of the DCR serial number: serial = `SERIAL_BASE + slot`, as QEMU.
pub const SERIAL_BASE: u32 = 0x0012_3456;
/// Size of the NFIT header: 36-byte SDT header + 4 reserved bytes.
pub const NFIT_HEADER_SIZE: usize = 40;

/// System Physical Address Range structure (type 0), 56 bytes.
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, IntoBytes, Immutable, KnownLayout)]
pub struct NfitSpa {
    /// Structure type, [`NFIT_TYPE_SPA`].
    pub type_: U16,
    /// Structure length, 56.
    pub length: U16,
    /// SPA range structure index, `(slot + 1) * 2`.
    pub spa_index: U16,
    /// Flags, [`SPA_FLAGS`].
    pub flags: U16,
    /// Reserved.
    pub reserved: U32,
    /// Proximity domain (NUMA node).
    pub proximity_domain: U32,
    /// Address range type GUID, [`PM_RANGE_GUID`].
    pub range_guid: [u8; 16],
    /// Guest-physical base address.
    pub base: U64,
    /// Length in bytes (the guest-visible pmem size).
    pub range_length: U64,
    /// Memory mapping attributes, [`SPA_MEM_ATTR`].
    pub mem_attr: U64,
}
const _: () = assert!(size_of::<NfitSpa>() == 56);

/// Memory Device to SPA Range Map structure (type 1), 48 bytes.
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, IntoBytes, Immutable, KnownLayout)]
pub struct NfitMemDev {
    /// Structure type, [`NFIT_TYPE_MEMDEV`].
    pub type_: U16,
    /// Structure length, 48.
    pub length: U16,
    /// NFIT device handle, `slot + 1` (equals the child device's `_ADR`).
    pub device_handle: U32,
    /// NVDIMM physical ID.
    pub physical_id: U16,
    /// NVDIMM region ID.
    pub region_id: U16,
    /// SPA range structure index.
    pub spa_index: U16,
    /// Control region structure index.
    pub dcr_index: U16,
    /// Region size (pmem size).
    pub region_size: U64,
    /// Region offset.
    pub region_offset: U64,
    /// DIMM physical address of the region base (0).
    pub region_dpa: U64,
    /// Interleave structure index (0 = none).
    pub interleave_index: U16,
    /// Interleave ways (1).
    pub interleave_ways: U16,
    /// NVDIMM state flags ([`MEMDEV_FLAG_NOT_ARMED`]).
    pub flags: U16,
    /// Reserved.
    pub reserved: U16,
}
const _: () = assert!(size_of::<NfitMemDev>() == 48);

/// NVDIMM Control Region structure (type 4), 80 bytes.
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, IntoBytes, Immutable, KnownLayout)]
pub struct NfitDcr {
    /// Structure type, [`NFIT_TYPE_DCR`].
    pub type_: U16,
    /// Structure length, 80.
    pub length: U16,
    /// Control region structure index, SPA index + 1.
    pub dcr_index: U16,
    /// Vendor ID.
    pub vendor_id: U16,
    /// Device ID.
    pub device_id: U16,
    /// Revision ID.
    pub revision_id: U16,
    /// Subsystem vendor ID.
    pub subsystem_vendor_id: U16,
    /// Subsystem device ID.
    pub subsystem_device_id: U16,
    /// Subsystem revision ID.
    pub subsystem_revision_id: U16,
    /// Valid fields (bit 0: manufacturing location/date valid).
    pub valid_fields: u8,
    /// Manufacturing location.
    pub manufacturing_location: u8,
    /// Manufacturing date.
    pub manufacturing_date: U16,
    /// Reserved.
    pub reserved: [u8; 2],
    /// Serial number, `SERIAL_BASE + slot`.
    pub serial_number: U32,
    /// Region format interface code.
    pub code: U16,
    /// Number of block control windows (0) and everything after it (all zero).
    pub windows: U16,
    /// Block control window fields, unused (all zero).
    pub unused: [u8; 48],
}
const _: () = assert!(size_of::<NfitDcr>() == 80);

/// Platform Capabilities structure (type 7), 16 bytes.
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, IntoBytes, Immutable, KnownLayout)]
pub struct NfitCaps {
    /// Structure type, [`NFIT_TYPE_CAPS`].
    pub type_: U16,
    /// Structure length, 16.
    pub length: U16,
    /// Highest valid capability bit index.
    pub highest_capability: u8,
    /// Reserved.
    pub reserved1: [u8; 3],
    /// Capabilities bitmap.
    pub capabilities: U32,
    /// Reserved.
    pub reserved2: U32,
}
const _: () = assert!(size_of::<NfitCaps>() == 16);

/// Bytes of FIT that one device contributes (SPA + MemDev + DCR).
pub const DEVICE_FIT_SIZE: usize =
    size_of::<NfitSpa>() + size_of::<NfitMemDev>() + size_of::<NfitDcr>();

/// What the NFIT says about one NVDIMM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NvdimmAcpiInfo {
    /// 0-based slot. Handle = slot + 1, SPA index = (slot + 1) * 2, DCR index = SPA index + 1,
    /// serial = 0x123456 + slot (all QEMU-compatible, so labels written under QEMU stay valid).
    pub slot: u32,
    /// Guest-physical base address of the pmem range.
    pub gpa: u64,
    /// Guest-visible pmem size in bytes (label area excluded).
    pub pmem_size: u64,
    /// NUMA proximity domain.
    pub node: u32,
    /// Sets NOT_ARMED in the MemDev state flags (guest treats the region as read-only).
    pub unarmed: bool,
}

impl NvdimmAcpiInfo {
    /// NFIT device handle (= child `_ADR`): `slot + 1`.
    pub fn handle(&self) -> u32 {
        self.slot.wrapping_add(1)
    }

    /// SPA range structure index: `(slot + 1) * 2` (16-bit field; QEMU truncates likewise).
    pub fn spa_index(&self) -> u16 {
        (self.handle().wrapping_mul(2)) as u16
    }

    /// Control region structure index: SPA index + 1.
    pub fn dcr_index(&self) -> u16 {
        self.spa_index().wrapping_add(1)
    }

    /// DCR serial number: `0x123456 + slot`.
    pub fn serial(&self) -> u32 {
        SERIAL_BASE.wrapping_add(self.slot)
    }
}

/// Platform persistence domain advertised in the Platform Capabilities structure
/// (`-machine nvdimm-persistence=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// `cpu`: CPU caches are flushed on power loss (capabilities 0x3).
    Cpu,
    /// `mem-ctrl`: the memory controller is flushed on power loss (capabilities 0x2).
    MemCtrl,
}

impl Persistence {
    /// The capabilities bitmap QEMU writes for this value.
    pub fn capabilities(self) -> u32 {
        match self {
            Persistence::Cpu => 0x3,
            Persistence::MemCtrl => 0x2,
        }
    }
}

impl fmt::Display for Persistence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Persistence::Cpu => "cpu",
            Persistence::MemCtrl => "mem-ctrl",
        })
    }
}

/// A `nvdimm-persistence=` value that is neither `cpu` nor `mem-ctrl`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "-machine nvdimm-persistence={0}: unsupported option; use nvdimm-persistence=cpu or \
     nvdimm-persistence=mem-ctrl (or omit it)"
)]
pub struct ParsePersistenceError(pub String);

impl FromStr for Persistence {
    type Err = ParsePersistenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Persistence::Cpu),
            "mem-ctrl" => Ok(Persistence::MemCtrl),
            other => Err(ParsePersistenceError(other.to_string())),
        }
    }
}

/// The FIT fragment of one device: SPA (56) + MemDev (48) + DCR (80) = 184 bytes.
///
/// A device's fragment depends only on its own [`NvdimmAcpiInfo`], so it stays byte-identical
/// when other devices are hot-plugged (Linux rejects FIT updates that change old entries).
pub fn device_fit_entries(d: &NvdimmAcpiInfo) -> Vec<u8> {
    let spa = NfitSpa {
        type_: U16::new(NFIT_TYPE_SPA),
        length: U16::new(size_of::<NfitSpa>() as u16),
        spa_index: U16::new(d.spa_index()),
        flags: U16::new(SPA_FLAGS),
        reserved: U32::ZERO,
        proximity_domain: U32::new(d.node),
        range_guid: PM_RANGE_GUID,
        base: U64::new(d.gpa),
        range_length: U64::new(d.pmem_size),
        mem_attr: U64::new(SPA_MEM_ATTR),
    };
    let memdev = NfitMemDev {
        type_: U16::new(NFIT_TYPE_MEMDEV),
        length: U16::new(size_of::<NfitMemDev>() as u16),
        device_handle: U32::new(d.handle()),
        physical_id: U16::ZERO,
        region_id: U16::ZERO,
        spa_index: U16::new(d.spa_index()),
        dcr_index: U16::new(d.dcr_index()),
        region_size: U64::new(d.pmem_size),
        region_offset: U64::ZERO,
        region_dpa: U64::ZERO,
        interleave_index: U16::ZERO,
        interleave_ways: U16::new(1),
        flags: U16::new(if d.unarmed { MEMDEV_FLAG_NOT_ARMED } else { 0 }),
        reserved: U16::ZERO,
    };
    let dcr = NfitDcr {
        type_: U16::new(NFIT_TYPE_DCR),
        length: U16::new(size_of::<NfitDcr>() as u16),
        dcr_index: U16::new(d.dcr_index()),
        vendor_id: U16::new(DCR_VENDOR_ID),
        device_id: U16::new(DCR_DEVICE_ID),
        revision_id: U16::new(DCR_REVISION_ID),
        subsystem_vendor_id: U16::ZERO,
        subsystem_device_id: U16::ZERO,
        subsystem_revision_id: U16::ZERO,
        valid_fields: 0,
        manufacturing_location: 0,
        manufacturing_date: U16::ZERO,
        reserved: [0; 2],
        serial_number: U32::new(d.serial()),
        code: U16::new(DCR_FORMAT_CODE),
        windows: U16::ZERO,
        unused: [0; 48],
    };
    let mut out = Vec::with_capacity(DEVICE_FIT_SIZE);
    out.extend_from_slice(spa.as_bytes());
    out.extend_from_slice(memdev.as_bytes());
    out.extend_from_slice(dcr.as_bytes());
    out
}

/// The Platform Capabilities structure for `p`.
pub fn caps_entry(p: Persistence) -> Vec<u8> {
    let cap = p.capabilities();
    let caps = NfitCaps {
        type_: U16::new(NFIT_TYPE_CAPS),
        length: U16::new(size_of::<NfitCaps>() as u16),
        // 31 - clz32(cap): index of the highest set bit (cap is never 0).
        highest_capability: (31 - cap.leading_zeros()) as u8,
        reserved1: [0; 3],
        capabilities: U32::new(cap),
        reserved2: U32::ZERO,
    };
    caps.as_bytes().to_vec()
}

/// The whole FIT: every device's entries in the given order, then the capabilities structure
/// if a persistence domain is configured. Returned as is by `_FIT`; wrap with [`build_nfit`]
/// for the static table.
pub fn build_fit(devs: &[NvdimmAcpiInfo], p: Option<Persistence>) -> Vec<u8> {
    let mut out = Vec::with_capacity(devs.len() * DEVICE_FIT_SIZE + size_of::<NfitCaps>());
    for d in devs {
        out.extend_from_slice(&device_fit_entries(d));
    }
    if let Some(p) = p {
        out.extend_from_slice(&caps_entry(p));
    }
    out
}

/// The NFIT table (revision 1): 36-byte header, 4 reserved bytes, then `fit`; checksum set.
pub fn build_nfit(fit: &[u8], oem: &OemIds) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + fit.len());
    body.extend_from_slice(&[0u8; 4]);
    body.extend_from_slice(fit);
    build_table(*b"NFIT", 1, oem, oem.oem_table_id, &body)
}
