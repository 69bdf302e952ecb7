//! The OEM identity every table pmvm builds carries (its own file so that each table builder
//! can use it without reaching back into `acpi/mod.rs`).

/// OEM ID of every table.
pub const OEM_ID: [u8; 6] = *b"PMVM  ";
/// OEM table ID of every table.
pub const OEM_TABLE_ID: [u8; 8] = *b"PMVMACPI";
/// OEM revision of every table.
pub const OEM_REVISION: u32 = 1;
