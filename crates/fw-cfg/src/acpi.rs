//! Laying ACPI tables out for the firmware: `etc/acpi/tables`, `etc/acpi/rsdp` and the
//! loader script that relocates and checksums them.
//!
//! The layout mirrors what QEMU's x86 machines do (`hw/i386/acpi-build.c`,
//! `hw/i386/acpi-microvm.c`): one tables file allocated in high memory with 64-byte
//! alignment (FACS, if any, first, since it needs 64-byte alignment), one RSDP file in the
//! F segment with 16-byte alignment (SeaBIOS finds the RSDP by scanning the F segment on
//! 16-byte boundaries, `find_acpi_rsdp` in `src/fw/biostables.c`). Every pointer is
//! written as an offset in the tables file and patched by ADD_POINTER; every header
//! checksum is zeroed and recomputed by ADD_CHECKSUM *after* all pointers (a pointer patch
//! changes the bytes the checksum covers).
//!
//! The FADT's 32-bit DSDT field matters for SeaBIOS: `acpi_dsdt_parse`
//! (`src/fw/dsdt_parser.c`) follows only `FADT.DSDT` to find the DSDT it scans for
//! virtio-mmio devices (`LNRO0005`), so [`AcpiTableSet::dsdt_32bit`] is on by default.
//! QEMU sets both DSDT fields the same way.

use crate::table_loader::{
    ACPI_RSDP_FILE, ACPI_TABLES_FILE, LOADER_FILE, LoaderError, TableLoader, Zone,
};
use crate::{FwCfg, FwCfgError, GuestMem};

/// ACPI table header length.
pub const HEADER_LEN: usize = 36;
/// Length of the ACPI 2.0+ RSDP.
pub const RSDP_LEN: usize = 36;
/// Alignment of the tables file (FACS needs 64).
pub const TABLES_ALIGN: u32 = 64;
/// Alignment of the RSDP file.
pub const RSDP_ALIGN: u32 = 16;
/// Alignment of each table inside the tables file.
const TABLE_ALIGN: usize = 8;

// FADT field offsets (ACPI 6.x, table 5.9).
const FADT_FIRMWARE_CTRL: usize = 36;
const FADT_DSDT: usize = 40;
const FADT_X_FIRMWARE_CTRL: usize = 132;
const FADT_X_DSDT: usize = 140;

/// The tables to publish. All blobs are complete tables (header included); their
/// checksums and pointer fields are rewritten here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcpiTableSet {
    /// FACS (not needed by hardware-reduced ACPI).
    pub facs: Option<Vec<u8>>,
    /// DSDT; reachable only through the FADT, so it needs one.
    pub dsdt: Option<Vec<u8>>,
    /// FADT; first XSDT entry.
    pub fadt: Option<Vec<u8>>,
    /// Every other table (MADT, SSDTs, NFIT...), listed in the XSDT in this order.
    pub tables: Vec<Vec<u8>>,
    /// Header identity of the XSDT and RSDP built here.
    pub oem_id: [u8; 6],
    pub oem_table_id: [u8; 8],
    pub oem_revision: u32,
    pub creator_id: [u8; 4],
    pub creator_revision: u32,
    /// Also fill the FADT's 32-bit DSDT field (SeaBIOS reads only that one).
    pub dsdt_32bit: bool,
}

impl AcpiTableSet {
    /// An empty set with the given identity, `dsdt_32bit` on.
    pub fn new(oem_id: [u8; 6], oem_table_id: [u8; 8], oem_revision: u32) -> Self {
        Self {
            facs: None,
            dsdt: None,
            fadt: None,
            tables: Vec::new(),
            oem_id,
            oem_table_id,
            oem_revision,
            creator_id: *b"PMVM",
            creator_revision: 1,
            dsdt_32bit: true,
        }
    }
}

/// Where each table landed in `etc/acpi/tables` (byte offsets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableLayout {
    pub facs: Option<u32>,
    pub dsdt: Option<u32>,
    pub fadt: Option<u32>,
    /// Offsets of [`AcpiTableSet::tables`], same order.
    pub tables: Vec<u32>,
    pub xsdt: u32,
}

/// The three fw_cfg files the firmware needs, plus the layout for tests and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcpiBlobs {
    /// `etc/acpi/tables`.
    pub tables: Vec<u8>,
    /// `etc/acpi/rsdp`.
    pub rsdp: Vec<u8>,
    /// `etc/table-loader`.
    pub loader: TableLoader,
    pub layout: TableLayout,
}

impl AcpiBlobs {
    /// Adds `etc/acpi/tables`, `etc/acpi/rsdp` and `etc/table-loader` to `fw`.
    pub fn install<M: GuestMem>(&self, fw: &mut FwCfg<M>) -> Result<(), FwCfgError> {
        fw.add_file(ACPI_TABLES_FILE, self.tables.clone())?;
        fw.add_file(ACPI_RSDP_FILE, self.rsdp.clone())?;
        fw.add_file(LOADER_FILE, self.loader.to_bytes())
    }
}

fn bad(table: &str, why: impl Into<String>) -> LoaderError {
    LoaderError::BadTable {
        table: table.to_owned(),
        why: why.into(),
    }
}

/// Checks a blob's signature and length field.
fn check_table(
    label: &str,
    t: &[u8],
    sig: Option<&[u8; 4]>,
    min: usize,
) -> Result<(), LoaderError> {
    if t.len() < min {
        return Err(bad(label, format!("{} bytes, fewer than {min}", t.len())));
    }
    if let Some(sig) = sig
        && &t[0..4] != sig
    {
        return Err(bad(
            label,
            format!("signature {:?}, want {:?}", &t[0..4], sig),
        ));
    }
    let len = u32::from_le_bytes([t[4], t[5], t[6], t[7]]) as usize;
    if len != t.len() {
        return Err(bad(
            label,
            format!("length field {len} but {} bytes", t.len()),
        ));
    }
    Ok(())
}

fn put(blob: &mut [u8], at: usize, v: u64, size: usize) {
    blob[at..at + size].copy_from_slice(&v.to_le_bytes()[..size]);
}

fn u32_of(n: usize) -> Result<u32, LoaderError> {
    u32::try_from(n).map_err(|_| LoaderError::TooLarge)
}

/// Lays out `set` (see the module docs) and builds the loader script.
pub fn build_acpi(set: &AcpiTableSet) -> Result<AcpiBlobs, LoaderError> {
    const T: &str = ACPI_TABLES_FILE;
    const R: &str = ACPI_RSDP_FILE;

    if let Some(f) = &set.facs {
        check_table("FACS", f, Some(b"FACS"), 64)?;
    }
    if let Some(d) = &set.dsdt {
        check_table("DSDT", d, Some(b"DSDT"), HEADER_LEN)?;
        if set.fadt.is_none() {
            return Err(bad("DSDT", "a DSDT needs a FADT to point at it"));
        }
    }
    if let Some(f) = &set.fadt {
        check_table("FADT", f, Some(b"FACP"), FADT_DSDT + 4)?;
    }
    for (i, t) in set.tables.iter().enumerate() {
        let label = format!("tables[{i}]");
        check_table(&label, t, None, HEADER_LEN)?;
        if matches!(&t[0..4], b"DSDT" | b"FACS" | b"FACP" | b"XSDT" | b"RSDT") {
            return Err(bad(
                &label,
                "DSDT, FACS and FADT have their own fields; XSDT/RSDT are built here",
            ));
        }
    }

    let mut blob: Vec<u8> = Vec::new();
    let mut place = |t: &[u8], align: usize| -> Result<u32, LoaderError> {
        let at = blob.len().next_multiple_of(align);
        blob.resize(at, 0);
        blob.extend_from_slice(t);
        u32_of(blob.len())?;
        u32_of(at)
    };
    let mut layout = TableLayout {
        facs: set.facs.as_deref().map(|f| place(f, 64)).transpose()?,
        ..TableLayout::default()
    };
    layout.dsdt = set
        .dsdt
        .as_deref()
        .map(|d| place(d, TABLE_ALIGN))
        .transpose()?;
    layout.fadt = set
        .fadt
        .as_deref()
        .map(|f| place(f, TABLE_ALIGN))
        .transpose()?;
    for t in &set.tables {
        layout.tables.push(place(t, TABLE_ALIGN)?);
    }
    let entries: Vec<u32> = layout.fadt.iter().chain(&layout.tables).copied().collect();
    let xsdt_len = HEADER_LEN + 8 * entries.len();
    let mut xsdt = vec![0u8; xsdt_len];
    xsdt[0..4].copy_from_slice(b"XSDT");
    put(&mut xsdt, 4, xsdt_len as u64, 4);
    xsdt[8] = 1;
    xsdt[10..16].copy_from_slice(&set.oem_id);
    xsdt[16..24].copy_from_slice(&set.oem_table_id);
    put(&mut xsdt, 24, u64::from(set.oem_revision), 4);
    xsdt[28..32].copy_from_slice(&set.creator_id);
    put(&mut xsdt, 32, u64::from(set.creator_revision), 4);
    for (i, e) in entries.iter().enumerate() {
        put(&mut xsdt, HEADER_LEN + 8 * i, u64::from(*e), 8);
    }
    layout.xsdt = place(&xsdt, TABLE_ALIGN)?;
    let mut tables = blob;

    let mut l = TableLoader::new();
    l.allocate(T, TABLES_ALIGN, Zone::High)?;
    l.allocate(R, RSDP_ALIGN, Zone::FSeg)?;

    // FADT pointer fields: offsets in the tables file, patched by the firmware.
    if let Some(fadt) = layout.fadt {
        let f = fadt as usize;
        let flen = set.fadt.as_ref().map_or(0, Vec::len);
        let has_x = |field: usize, size: usize| field + size <= flen;
        match layout.facs {
            Some(facs) => {
                put(&mut tables, f + FADT_FIRMWARE_CTRL, u64::from(facs), 4);
                l.add_pointer(T, T, fadt + FADT_FIRMWARE_CTRL as u32, 4)?;
                if has_x(FADT_X_FIRMWARE_CTRL, 8) {
                    put(&mut tables, f + FADT_X_FIRMWARE_CTRL, 0, 8);
                }
            }
            None => {
                put(&mut tables, f + FADT_FIRMWARE_CTRL, 0, 4);
                if has_x(FADT_X_FIRMWARE_CTRL, 8) {
                    put(&mut tables, f + FADT_X_FIRMWARE_CTRL, 0, 8);
                }
            }
        }
        let dsdt = layout.dsdt.map_or(0, u64::from);
        let want32 = layout.dsdt.is_some() && (set.dsdt_32bit || !has_x(FADT_X_DSDT, 8));
        put(&mut tables, f + FADT_DSDT, if want32 { dsdt } else { 0 }, 4);
        if want32 {
            l.add_pointer(T, T, fadt + FADT_DSDT as u32, 4)?;
        }
        if has_x(FADT_X_DSDT, 8) {
            put(&mut tables, f + FADT_X_DSDT, dsdt, 8);
            if layout.dsdt.is_some() {
                l.add_pointer(T, T, fadt + FADT_X_DSDT as u32, 8)?;
            }
        }
    }
    for i in 0..entries.len() {
        l.add_pointer(T, T, layout.xsdt + u32_of(HEADER_LEN + 8 * i)?, 8)?;
    }

    // Checksums last: every header-bearing table in the file.
    let mut headers: Vec<(u32, usize)> = Vec::new();
    if let (Some(o), Some(d)) = (layout.dsdt, &set.dsdt) {
        headers.push((o, d.len()));
    }
    if let (Some(o), Some(f)) = (layout.fadt, &set.fadt) {
        headers.push((o, f.len()));
    }
    for (o, t) in layout.tables.iter().zip(&set.tables) {
        headers.push((*o, t.len()));
    }
    headers.push((layout.xsdt, xsdt_len));
    for (o, len) in headers {
        tables[o as usize + 9] = 0;
        l.add_checksum(T, o + 9, o, u32_of(len)?)?;
    }

    let mut rsdp = vec![0u8; RSDP_LEN];
    rsdp[0..8].copy_from_slice(b"RSD PTR ");
    rsdp[9..15].copy_from_slice(&set.oem_id);
    rsdp[15] = 2;
    put(&mut rsdp, 20, RSDP_LEN as u64, 4);
    put(&mut rsdp, 24, u64::from(layout.xsdt), 8);
    l.add_pointer(R, T, 24, 8)?;
    // ACPI 1.0 checksum over the first 20 bytes, then the extended one over all 36.
    l.add_checksum(R, 8, 0, 20)?;
    l.add_checksum(R, 32, 0, RSDP_LEN as u32)?;

    Ok(AcpiBlobs {
        tables,
        rsdp,
        loader: l,
        layout,
    })
}
