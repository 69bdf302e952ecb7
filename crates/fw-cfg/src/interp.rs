//! What the firmware does with `etc/table-loader`: a pure model of SeaBIOS's
//! `romfile_loader_execute` (`src/fw/romfile_loader.c`), written from its documented
//! behaviour, so tests can check that a script really produces valid ACPI tables.
//!
//! Like SeaBIOS, a command that fails its checks is skipped (and recorded in
//! [`Loaded::errors`]) rather than aborting the run; unknown commands are ignored; a file
//! missing from fw_cfg, or empty, is silently not allocated. Allocation here is a simple
//! upward bump allocator per zone, starting at caller-chosen bases so tests can place the
//! tables anywhere. WRITE_POINTER results are recorded, not performed.
//!
//! [`check_acpi`] then walks the result the way an OS would: RSDP (both checksums) →
//! XSDT → every table (checksum, length), FADT → DSDT/FACS.

use crate::sum8;
use crate::table_loader::{Command, ParseError, parse};

/// SeaBIOS's minimum allocation alignment.
const MIN_ALIGN: u64 = 16;

/// Where the interpreter allocates each zone: `[base, limit)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zones {
    pub high_base: u64,
    pub high_limit: u64,
    pub fseg_base: u64,
    pub fseg_limit: u64,
}

impl Default for Zones {
    /// High memory at 0x7ff0_0000 (as if below a 2 GiB top of RAM), F segment
    /// 0xf0000..0x100000.
    fn default() -> Self {
        Self {
            high_base: 0x7ff0_0000,
            high_limit: 0x8000_0000,
            fseg_base: 0xf_0000,
            fseg_limit: 0x10_0000,
        }
    }
}

/// A file the script allocated, at its final address with its final bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedFile {
    pub name: String,
    pub addr: u64,
    pub zone: u8,
    pub data: Vec<u8>,
}

/// A WRITE_POINTER the firmware would send back to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenPointer {
    pub file: String,
    pub offset: u32,
    pub size: u8,
    pub value: u64,
}

/// The outcome of running a script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    pub files: Vec<LoadedFile>,
    pub write_pointers: Vec<WrittenPointer>,
    /// (command index, reason) of every command the firmware would reject.
    pub errors: Vec<(usize, &'static str)>,
}

impl Loaded {
    /// A loaded file by name.
    pub fn file(&self, name: &str) -> Option<&LoadedFile> {
        self.files.iter().find(|f| f.name == name)
    }

    /// `len` bytes at guest address `addr`, if one allocated file holds them all.
    pub fn read(&self, addr: u64, len: usize) -> Option<&[u8]> {
        self.files.iter().find_map(|f| {
            let start = usize::try_from(addr.checked_sub(f.addr)?).ok()?;
            f.data.get(start..start.checked_add(len)?)
        })
    }
}

fn align_up(v: u64, align: u64) -> Option<u64> {
    v.checked_add(align - 1).map(|x| x & !(align - 1))
}

fn fits(offset: u32, size: u64, file_len: usize) -> bool {
    u64::from(offset)
        .checked_add(size)
        .is_some_and(|end| end <= file_len as u64)
}

/// Runs `script` over the fw_cfg files `files` returns (by name), allocating in `zones`.
pub fn run<F>(script: &[u8], files: F, zones: Zones) -> Result<Loaded, ParseError>
where
    F: Fn(&str) -> Option<Vec<u8>>,
{
    let commands = parse(script)?;
    let mut out = Loaded::default();
    let mut next = (zones.high_base, zones.fseg_base);
    for (i, c) in commands.into_iter().enumerate() {
        if let Err(why) = exec(c, &files, &zones, &mut next, &mut out) {
            out.errors.push((i, why));
        }
    }
    Ok(out)
}

/// One command; `Err` is the firmware's "internal error, skipped".
fn exec<F>(
    c: Command,
    files: &F,
    zones: &Zones,
    next: &mut (u64, u64),
    out: &mut Loaded,
) -> Result<(), &'static str>
where
    F: Fn(&str) -> Option<Vec<u8>>,
{
    match c {
        Command::Allocate { file, align, zone } => {
            if align & align.wrapping_sub(1) != 0 {
                return Err("alignment is not a power of two");
            }
            let (next, limit) = match zone {
                1 => (&mut next.0, zones.high_limit),
                2 => (&mut next.1, zones.fseg_limit),
                _ => return Err("unknown zone"),
            };
            let Some(data) = files(&file).filter(|d| !d.is_empty()) else {
                return Ok(());
            };
            if out.files.iter().any(|f| f.name == file) {
                return Err("file allocated twice");
            }
            let align = u64::from(align).max(MIN_ALIGN);
            let Some(addr) = align_up(*next, align) else {
                return Err("out of memory");
            };
            match addr.checked_add(data.len() as u64) {
                Some(end) if end <= limit => *next = end,
                _ => return Err("out of memory"),
            }
            out.files.push(LoadedFile {
                name: file,
                addr,
                zone,
                data,
            });
        }
        Command::AddPointer {
            dest_file,
            src_file,
            offset,
            size,
        } => {
            let Some(src) = out.file(&src_file).map(|f| f.addr) else {
                return Err("unknown source file");
            };
            let Some(dest) = out.files.iter_mut().find(|f| f.name == dest_file) else {
                return Err("unknown destination file");
            };
            if !matches!(size, 1 | 2 | 4 | 8) || !fits(offset, u64::from(size), dest.data.len()) {
                return Err("bad pointer size or offset");
            }
            let (o, n) = (offset as usize, usize::from(size));
            let mut b = [0u8; 8];
            b[..n].copy_from_slice(&dest.data[o..o + n]);
            let v = u64::from_le_bytes(b).wrapping_add(src);
            dest.data[o..o + n].copy_from_slice(&v.to_le_bytes()[..n]);
        }
        Command::AddChecksum {
            file,
            offset,
            start,
            length,
        } => {
            let Some(f) = out.files.iter_mut().find(|f| f.name == file) else {
                return Err("unknown file");
            };
            if !fits(offset, 1, f.data.len()) || !fits(start, u64::from(length), f.data.len()) {
                return Err("checksum range outside the file");
            }
            let s = sum8(&f.data[start as usize..start as usize + length as usize]);
            let b = &mut f.data[offset as usize];
            *b = b.wrapping_sub(s);
        }
        Command::WritePointer {
            dest_file,
            src_file,
            dst_offset,
            src_offset,
            size,
        } => {
            let Some(dest_len) = files(&dest_file).map(|d| d.len()) else {
                return Err("unknown destination file");
            };
            let Some(src) = out.file(&src_file) else {
                return Err("unknown source file");
            };
            if !matches!(size, 1 | 2 | 4 | 8)
                || !fits(dst_offset, u64::from(size), dest_len)
                || src_offset as usize >= src.data.len()
            {
                return Err("bad pointer size or offset");
            }
            let value = src.addr.wrapping_add(u64::from(src_offset));
            if size != 8 && value >> (u32::from(size) * 8) != 0 {
                return Err("pointer does not fit");
            }
            out.write_pointers.push(WrittenPointer {
                file: dest_file,
                offset: dst_offset,
                size,
                value,
            });
        }
        Command::Unknown(_) => {}
    }
    Ok(())
}

/// One table found by [`check_acpi`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundTable {
    pub signature: [u8; 4],
    pub addr: u64,
    pub bytes: Vec<u8>,
}

/// The ACPI tables reachable from the RSDP, as an OS would find them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcpiView {
    pub rsdp_addr: u64,
    pub xsdt_addr: u64,
    /// XSDT entries, in order.
    pub entries: Vec<FoundTable>,
    pub dsdt: Option<FoundTable>,
    /// Address in FADT.DSDT (32-bit), 0 when unset.
    pub dsdt32: u64,
    pub facs: Option<FoundTable>,
}

fn le(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a[..b.len()].copy_from_slice(b);
    u64::from_le_bytes(a)
}

fn table_at(l: &Loaded, addr: u64, checksum: bool) -> Result<FoundTable, String> {
    let hdr = l
        .read(addr, 8)
        .ok_or_else(|| format!("no table at {addr:#x}"))?;
    let len = le(&hdr[4..8]) as usize;
    let bytes = l
        .read(addr, len)
        .ok_or_else(|| format!("table at {addr:#x} runs past its file"))?;
    if checksum && (len < 36 || sum8(bytes) != 0) {
        return Err(format!("bad checksum or length at {addr:#x}"));
    }
    let mut signature = [0u8; 4];
    signature.copy_from_slice(&bytes[..4]);
    Ok(FoundTable {
        signature,
        addr,
        bytes: bytes.to_vec(),
    })
}

/// Finds the RSDP in the F segment files (16-byte steps, like SeaBIOS) and checks every
/// table reachable from it.
pub fn check_acpi(l: &Loaded) -> Result<AcpiView, String> {
    let rsdp_addr = l
        .files
        .iter()
        .filter(|f| f.zone == 2)
        .flat_map(|f| {
            (0..f.data.len())
                .step_by(16)
                .map(move |o| f.addr + o as u64)
        })
        .find(|&a| l.read(a, 8) == Some(b"RSD PTR "))
        .ok_or("no RSDP in the F segment")?;
    let rsdp = l.read(rsdp_addr, 36).ok_or("truncated RSDP")?;
    if sum8(&rsdp[..20]) != 0 || sum8(rsdp) != 0 || rsdp[15] < 2 || le(&rsdp[20..24]) != 36 {
        return Err("bad RSDP checksums, revision or length".into());
    }
    let xsdt_addr = le(&rsdp[24..32]);
    let xsdt = table_at(l, xsdt_addr, true)?;
    if &xsdt.signature != b"XSDT" || !(xsdt.bytes.len() - 36).is_multiple_of(8) {
        return Err("bad XSDT".into());
    }
    let mut view = AcpiView {
        rsdp_addr,
        xsdt_addr,
        entries: Vec::new(),
        dsdt: None,
        dsdt32: 0,
        facs: None,
    };
    for e in xsdt.bytes[36..].chunks_exact(8) {
        view.entries.push(table_at(l, le(e), true)?);
    }
    if let Some(fadt) = view.entries.iter().find(|t| &t.signature == b"FACP") {
        let f = &fadt.bytes;
        if f.len() < 44 {
            return Err("FADT too short for its DSDT field".into());
        }
        view.dsdt32 = le(&f[40..44]);
        let x = if f.len() >= 148 { le(&f[140..148]) } else { 0 };
        let dsdt = if x != 0 { x } else { view.dsdt32 };
        if dsdt != 0 {
            view.dsdt = Some(table_at(l, dsdt, true)?);
        }
        let facs = le(&f[36..40]);
        if facs != 0 {
            view.facs = Some(table_at(l, facs, false)?);
        }
    }
    Ok(view)
}
