//! The BIOS linker/loader script (`etc/table-loader`).
//!
//! Why: the host cannot know where the firmware will put the ACPI tables, so it ships them
//! as fw_cfg files with every pointer written as an offset into the pointed-to file, plus
//! a script telling the firmware how to finish the job: allocate each file in a memory
//! zone, add the final address of one file to a pointer field in another, recompute
//! checksums, and optionally report an address back to the host. SeaBIOS runs it in
//! `romfile_loader_execute` (`src/fw/romfile_loader.c`); OVMF has an equivalent. The host
//! side in QEMU is `hw/acpi/bios-linker-loader.c`.
//!
//! Format (SeaBIOS `src/fw/romfile_loader.h`): an array of 128-byte little-endian entries,
//! `u32 command` then a 124-byte union; file names are 56-byte NUL-terminated fields.
//!
//! | command | fields after the command word (byte offsets in the entry) |
//! |---|---|
//! | 1 ALLOCATE | file @4, u32 align @60 (power of two), u8 zone @64 (1 HIGH, 2 FSEG) |
//! | 2 ADD_POINTER | dest @4, src @60, u32 offset @116, u8 size @120 (1, 2, 4, 8) |
//! | 3 ADD_CHECKSUM | file @4, u32 offset @60, u32 start @64, u32 length @68 |
//! | 4 WRITE_POINTER | dest @4, src @60, u32 dst_offset @116, u32 src_offset @120, u8 size @124 |
//!
//! ADD_POINTER adds the source file's address to the little-endian integer already at
//! `offset` in the destination (so the host writes the offset within the source there).
//! ADD_CHECKSUM subtracts the 8-bit sum of `start..start+length` from the byte at `offset`,
//! which makes the range sum to zero whatever that byte held. WRITE_POINTER writes
//! `address(src) + src_offset` into the fw_cfg file `dest` at `dst_offset` through a DMA
//! write (the file must be writable). Unknown commands are skipped by the firmware.
//!
//! [`build_acpi`] turns a set of ACPI tables into the three files the firmware expects.

/// Name of the script file.
pub const LOADER_FILE: &str = "etc/table-loader";
/// Name of the file holding every ACPI table except the RSDP.
pub const ACPI_TABLES_FILE: &str = "etc/acpi/tables";
/// Name of the file holding the RSDP.
pub const ACPI_RSDP_FILE: &str = "etc/acpi/rsdp";

/// Size of one script entry.
pub const ENTRY_LEN: usize = 128;
/// Size of a file name field, NUL included.
pub const NAME_FIELD_LEN: usize = 56;

const CMD_ALLOCATE: u32 = 1;
const CMD_ADD_POINTER: u32 = 2;
const CMD_ADD_CHECKSUM: u32 = 3;
const CMD_WRITE_POINTER: u32 = 4;

/// Where the firmware allocates a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// High memory (SeaBIOS: below 4 GiB, top of RAM).
    High,
    /// The F segment (0xf0000..0x100000): where the RSDP must be for BIOS-era searches.
    FSeg,
}

impl Zone {
    fn code(self) -> u8 {
        match self {
            Zone::High => 1,
            Zone::FSeg => 2,
        }
    }
}

/// One script command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Allocate {
        file: String,
        align: u32,
        /// Raw zone code (1 HIGH, 2 FSEG; anything else is rejected by the firmware).
        zone: u8,
    },
    AddPointer {
        dest_file: String,
        src_file: String,
        offset: u32,
        size: u8,
    },
    AddChecksum {
        file: String,
        offset: u32,
        start: u32,
        length: u32,
    },
    WritePointer {
        dest_file: String,
        src_file: String,
        dst_offset: u32,
        src_offset: u32,
        size: u8,
    },
    /// A command number the firmware does not know (it skips it).
    Unknown(u32),
}

/// A command the builder refuses to emit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoaderError {
    #[error("file name {0:?} is empty, has a NUL or is longer than 55 bytes")]
    BadName(String),
    #[error("alignment {0} is not a power of two")]
    BadAlign(u32),
    #[error("pointer size {0} is not 1, 2, 4 or 8")]
    BadPointerSize(u8),
    #[error("file {0:?} is allocated twice")]
    DuplicateAllocate(String),
    #[error("file {0:?} is used before it is allocated")]
    NotAllocated(String),
    #[error("ACPI table {table} is malformed: {why}")]
    BadTable { table: String, why: String },
    #[error("the ACPI tables are larger than 4 GiB")]
    TooLarge,
}

/// Builder of a linker/loader script. It checks what it can (names, alignment, sizes,
/// allocate-before-use); ranges within files are checked by [`crate::interp`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableLoader {
    commands: Vec<Command>,
    allocated: Vec<String>,
}

impl TableLoader {
    pub fn new() -> Self {
        Self::default()
    }

    /// The commands so far, in order.
    pub fn commands(&self) -> &[Command] {
        &self.commands
    }

    /// Allocate `file` with `align` (a power of two) in `zone`. Once per file, before any
    /// command that uses it.
    pub fn allocate(&mut self, file: &str, align: u32, zone: Zone) -> Result<(), LoaderError> {
        check_name(file)?;
        if !align.is_power_of_two() {
            return Err(LoaderError::BadAlign(align));
        }
        if self.allocated.iter().any(|f| f == file) {
            return Err(LoaderError::DuplicateAllocate(file.to_owned()));
        }
        self.allocated.push(file.to_owned());
        self.commands.push(Command::Allocate {
            file: file.to_owned(),
            align,
            zone: zone.code(),
        });
        Ok(())
    }

    /// Add the address of `src_file` to the `size`-byte integer at `offset` in `dest_file`.
    pub fn add_pointer(
        &mut self,
        dest_file: &str,
        src_file: &str,
        offset: u32,
        size: u8,
    ) -> Result<(), LoaderError> {
        self.check_allocated(dest_file)?;
        self.check_allocated(src_file)?;
        check_size(size)?;
        self.commands.push(Command::AddPointer {
            dest_file: dest_file.to_owned(),
            src_file: src_file.to_owned(),
            offset,
            size,
        });
        Ok(())
    }

    /// Fix the checksum byte at `offset` in `file` so `start..start + length` sums to 0.
    pub fn add_checksum(
        &mut self,
        file: &str,
        offset: u32,
        start: u32,
        length: u32,
    ) -> Result<(), LoaderError> {
        self.check_allocated(file)?;
        self.commands.push(Command::AddChecksum {
            file: file.to_owned(),
            offset,
            start,
            length,
        });
        Ok(())
    }

    /// Write `address(src_file) + src_offset` into the (writable, not allocated) fw_cfg
    /// file `dest_file` at `dst_offset`.
    pub fn write_pointer(
        &mut self,
        dest_file: &str,
        dst_offset: u32,
        size: u8,
        src_file: &str,
        src_offset: u32,
    ) -> Result<(), LoaderError> {
        check_name(dest_file)?;
        self.check_allocated(src_file)?;
        check_size(size)?;
        self.commands.push(Command::WritePointer {
            dest_file: dest_file.to_owned(),
            src_file: src_file.to_owned(),
            dst_offset,
            src_offset,
            size,
        });
        Ok(())
    }

    fn check_allocated(&self, file: &str) -> Result<(), LoaderError> {
        check_name(file)?;
        if !self.allocated.iter().any(|f| f == file) {
            return Err(LoaderError::NotAllocated(file.to_owned()));
        }
        Ok(())
    }

    /// The script bytes (the `etc/table-loader` file).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.commands.len() * ENTRY_LEN);
        for c in &self.commands {
            out.extend_from_slice(&encode(c));
        }
        out
    }
}

fn check_name(name: &str) -> Result<(), LoaderError> {
    if name.is_empty() || name.len() >= NAME_FIELD_LEN || name.as_bytes().contains(&0) {
        return Err(LoaderError::BadName(name.to_owned()));
    }
    Ok(())
}

fn check_size(size: u8) -> Result<(), LoaderError> {
    if !matches!(size, 1 | 2 | 4 | 8) {
        return Err(LoaderError::BadPointerSize(size));
    }
    Ok(())
}

fn put_name(e: &mut [u8; ENTRY_LEN], at: usize, name: &str) {
    let n = name.len().min(NAME_FIELD_LEN - 1);
    e[at..at + n].copy_from_slice(&name.as_bytes()[..n]);
}

fn put_u32(e: &mut [u8; ENTRY_LEN], at: usize, v: u32) {
    e[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// One command as its 128-byte entry.
pub fn encode(c: &Command) -> [u8; ENTRY_LEN] {
    let mut e = [0u8; ENTRY_LEN];
    match c {
        Command::Allocate { file, align, zone } => {
            put_u32(&mut e, 0, CMD_ALLOCATE);
            put_name(&mut e, 4, file);
            put_u32(&mut e, 60, *align);
            e[64] = *zone;
        }
        Command::AddPointer {
            dest_file,
            src_file,
            offset,
            size,
        } => {
            put_u32(&mut e, 0, CMD_ADD_POINTER);
            put_name(&mut e, 4, dest_file);
            put_name(&mut e, 60, src_file);
            put_u32(&mut e, 116, *offset);
            e[120] = *size;
        }
        Command::AddChecksum {
            file,
            offset,
            start,
            length,
        } => {
            put_u32(&mut e, 0, CMD_ADD_CHECKSUM);
            put_name(&mut e, 4, file);
            put_u32(&mut e, 60, *offset);
            put_u32(&mut e, 64, *start);
            put_u32(&mut e, 68, *length);
        }
        Command::WritePointer {
            dest_file,
            src_file,
            dst_offset,
            src_offset,
            size,
        } => {
            put_u32(&mut e, 0, CMD_WRITE_POINTER);
            put_name(&mut e, 4, dest_file);
            put_name(&mut e, 60, src_file);
            put_u32(&mut e, 116, *dst_offset);
            put_u32(&mut e, 120, *src_offset);
            e[124] = *size;
        }
        Command::Unknown(n) => put_u32(&mut e, 0, *n),
    }
    e
}

/// A name field: `None` when it has no terminating NUL (the firmware rejects those) or
/// is not UTF-8.
fn get_name(e: &[u8], at: usize) -> Option<String> {
    let field = &e[at..at + NAME_FIELD_LEN];
    let end = field.iter().position(|&b| b == 0)?;
    String::from_utf8(field[..end].to_vec()).ok()
}

fn get_u32(e: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([e[at], e[at + 1], e[at + 2], e[at + 3]])
}

/// Why a script cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("script length {0} is not a multiple of 128")]
    Length(usize),
    #[error("entry {0} has a file name without a NUL or not in UTF-8")]
    Name(usize),
}

/// Parses a script (for tests and the interpreter).
pub fn parse(bytes: &[u8]) -> Result<Vec<Command>, ParseError> {
    if !bytes.len().is_multiple_of(ENTRY_LEN) {
        return Err(ParseError::Length(bytes.len()));
    }
    let mut out = Vec::with_capacity(bytes.len() / ENTRY_LEN);
    for (i, e) in bytes.chunks_exact(ENTRY_LEN).enumerate() {
        let name = |at| get_name(e, at).ok_or(ParseError::Name(i));
        let cmd = match get_u32(e, 0) {
            CMD_ALLOCATE => Command::Allocate {
                file: name(4)?,
                align: get_u32(e, 60),
                zone: e[64],
            },
            CMD_ADD_POINTER => Command::AddPointer {
                dest_file: name(4)?,
                src_file: name(60)?,
                offset: get_u32(e, 116),
                size: e[120],
            },
            CMD_ADD_CHECKSUM => Command::AddChecksum {
                file: name(4)?,
                offset: get_u32(e, 60),
                start: get_u32(e, 64),
                length: get_u32(e, 68),
            },
            CMD_WRITE_POINTER => Command::WritePointer {
                dest_file: name(4)?,
                src_file: name(60)?,
                dst_offset: get_u32(e, 116),
                src_offset: get_u32(e, 120),
                size: e[124],
            },
            n => Command::Unknown(n),
        };
        out.push(cmd);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_entries() {
        let mut l = TableLoader::new();
        l.allocate("etc/acpi/rsdp", 16, Zone::FSeg).unwrap();
        l.allocate("etc/acpi/tables", 64, Zone::High).unwrap();
        l.add_pointer("etc/acpi/rsdp", "etc/acpi/tables", 24, 8)
            .unwrap();
        l.add_checksum("etc/acpi/rsdp", 8, 0, 20).unwrap();
        l.write_pointer("etc/vmgenid_addr", 0, 8, "etc/acpi/tables", 40)
            .unwrap();
        let b = l.to_bytes();
        assert_eq!(b.len(), 5 * ENTRY_LEN);
        let e0 = &b[..128];
        assert_eq!(&e0[0..4], &[1, 0, 0, 0]);
        assert_eq!(&e0[4..18], b"etc/acpi/rsdp\0");
        assert_eq!(&e0[60..65], &[16, 0, 0, 0, 2]);
        let e2 = &b[256..384];
        assert_eq!(&e2[0..4], &[2, 0, 0, 0]);
        assert_eq!(&e2[60..76], b"etc/acpi/tables\0");
        assert_eq!(&e2[116..121], &[24, 0, 0, 0, 8]);
        let e3 = &b[384..512];
        assert_eq!(&e3[60..72], &[8, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0]);
        let e4 = &b[512..640];
        assert_eq!(&e4[0..4], &[4, 0, 0, 0]);
        assert_eq!(&e4[116..125], &[0, 0, 0, 0, 40, 0, 0, 0, 8]);
        assert_eq!(parse(&b).unwrap(), l.commands());
    }

    #[test]
    fn builder_refuses_bad_commands() {
        let mut l = TableLoader::new();
        assert_eq!(
            l.allocate("x", 3, Zone::High),
            Err(LoaderError::BadAlign(3))
        );
        assert!(matches!(
            l.allocate(&"n".repeat(56), 8, Zone::High),
            Err(LoaderError::BadName(_))
        ));
        l.allocate("a", 8, Zone::High).unwrap();
        assert!(matches!(
            l.allocate("a", 8, Zone::High),
            Err(LoaderError::DuplicateAllocate(_))
        ));
        assert!(matches!(
            l.add_pointer("a", "b", 0, 8),
            Err(LoaderError::NotAllocated(_))
        ));
        assert_eq!(
            l.add_pointer("a", "a", 0, 3),
            Err(LoaderError::BadPointerSize(3))
        );
        assert!(parse(&[0u8; 127]).is_err());
    }
}
