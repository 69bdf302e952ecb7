//! Interleave-set cookies for a single-DIMM region (Linux
//! `acpi_nfit_init_interleave_set`). Labels carry the cookie of the region
//! they were created in; Linux skips labels whose cookie does not match, so a
//! vNVDIMM must keep its serial number, vendor, date, location and region
//! offset stable for its namespaces to survive.

use crate::fletcher::fletcher64;

/// Vendor ID QEMU (and pmvm, for compatibility) put in the NFIT control region.
pub const QEMU_VENDOR_ID: u16 = 0x8086;
/// QEMU's serial number for slot 0; slot `n` gets `QEMU_SERIAL_BASE + n`.
pub const QEMU_SERIAL_BASE: u32 = 0x123456;

/// NFIT facts about one DIMM mapping that feed the cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterleaveSetInfo {
    /// Region offset from the memory-device-to-SPA map (0 for a QEMU vNVDIMM).
    pub region_offset: u64,
    /// Serial number from the control region.
    pub serial_number: u32,
    /// Vendor ID from the control region.
    pub vendor_id: u16,
    /// Manufacturing date from the control region.
    pub manufacturing_date: u16,
    /// Manufacturing location from the control region.
    pub manufacturing_location: u8,
}

impl InterleaveSetInfo {
    /// What QEMU describes for a vNVDIMM with this serial (offset 0, vendor 0x8086, date/location 0).
    pub const fn qemu(serial_number: u32) -> InterleaveSetInfo {
        InterleaveSetInfo {
            region_offset: 0,
            serial_number,
            vendor_id: QEMU_VENDOR_ID,
            manufacturing_date: 0,
            manufacturing_location: 0,
        }
    }

    /// v1.1 cookie: Fletcher-64 over `{u64 region_offset; u32 serial; u32 pad}`.
    pub fn cookie1(&self) -> u64 {
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&self.region_offset.to_le_bytes());
        b[8..12].copy_from_slice(&self.serial_number.to_le_bytes());
        fletcher64(&b)
    }

    /// v1.2 cookie: Fletcher-64 over `{u64 region_offset; u32 serial; u16 vendor;
    /// u16 date; u8 location; u8 reserved[31]}` (48 bytes).
    pub fn cookie2(&self) -> u64 {
        let mut b = [0u8; 48];
        b[0..8].copy_from_slice(&self.region_offset.to_le_bytes());
        b[8..12].copy_from_slice(&self.serial_number.to_le_bytes());
        b[12..14].copy_from_slice(&self.vendor_id.to_le_bytes());
        b[14..16].copy_from_slice(&self.manufacturing_date.to_le_bytes());
        b[16] = self.manufacturing_location;
        fletcher64(&b)
    }

    /// The cookie Linux expects for labels under an index of this kind
    /// (`uses_cookie1`: index major 1 minor 1).
    pub fn expected(&self, uses_cookie1: bool) -> u64 {
        if uses_cookie1 {
            self.cookie1()
        } else {
            self.cookie2()
        }
    }
}
