//! Direct kernel boot: bzImage through the Linux 64-bit boot protocol, an uncompressed ELF
//! vmlinux through PVH (no in-guest decompression: ~3.5 s faster per boot in the nested
//! harness), command line, initrd and the E820 memory map.
//!
//! The ELF is copied into guest RAM. Session 2 measured the alternative that session 1 had
//! chosen, mapping the file's pages copy-on-write into guest RAM: it saves the copy but every
//! kernel page then costs a 4 KiB nested-paging fault instead of sharing a 2 MiB one, and the
//! boot took ~1.5 s longer in the nested harness (docs/benchmarks.md).

use std::fs::File;
use std::path::Path;

use linux_loader::bootparam::{boot_e820_entry, boot_params};
use linux_loader::loader::bzimage::BzImage;
use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info,
};
use linux_loader::loader::elf::{Elf, PvhBootCapability};
use linux_loader::loader::{Cmdline, KernelLoader, load_cmdline};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryMmap};

use super::error::{BootError, Result};
use super::layout::*;
use super::regs::EntryMode;

/// E820 entry types used by pmvm.
pub const E820_RAM: u32 = 1;
pub const E820_RESERVED: u32 = 2;

/// One entry of the guest memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
}

/// Where the boot CPU starts and how.
#[derive(Clone, Copy, Debug)]
pub struct BootEntry {
    pub entry: u64,
    pub mode: EntryMode,
}

const KERNEL_BOOT_FLAG_MAGIC: u16 = 0xaa55;
const KERNEL_HDR_MAGIC: u32 = 0x5372_6448; // "HdrS"
const KERNEL_LOADER_OTHER: u8 = 0xff;
const KERNEL_MIN_ALIGNMENT: u32 = 0x0100_0000;
const XEN_HVM_START_MAGIC: u32 = 0x336e_c578;
const E820_MAX_ENTRIES_ZEROPAGE: usize = 128;

/// Everything the boot path needs to know.
pub struct BootSpec<'a> {
    pub kernel: &'a Path,
    pub initrd: Option<&'a Path>,
    pub cmdline: &'a str,
    pub e820: &'a [E820Entry],
    /// End of RAM below 4 GiB (the initrd goes under it).
    pub low_ram_end: u64,
    pub rsdp_addr: u64,
}

fn open(path: &Path, what: &'static str) -> Result<File> {
    File::open(path).map_err(|source| BootError::Open {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Loads the kernel (ELF first, then bzImage), the initrd and the command line, and writes the
/// zero page or the PVH start info. Returns the entry point.
pub fn load_kernel(mem: &GuestMemoryMmap, spec: &BootSpec) -> Result<BootEntry> {
    let mut kernel = open(spec.kernel, "kernel")?;
    let cmdline_error = |source| BootError::Cmdline {
        cmdline: spec.cmdline.to_string(),
        source,
    };
    let mut cmdline = Cmdline::new(CMDLINE_MAX).map_err(cmdline_error)?;
    cmdline.insert_str(spec.cmdline).map_err(cmdline_error)?;

    let elf = Elf::load(mem, None, &mut kernel, Some(GuestAddress(HIMEM_START)));
    let (setup_header, entry) = match elf {
        Ok(res) => match res.pvh_boot_cap {
            PvhBootCapability::PvhEntryPresent(addr) => {
                load_cmdline(mem, GuestAddress(CMDLINE_ADDR), &cmdline)
                    .map_err(|e| BootError::write("the command line", e))?;
                let initrd = load_initrd(mem, spec, u64::from(u32::MAX), res.kernel_end)?;
                write_pvh_start_info(mem, spec, initrd)?;
                return Ok(BootEntry {
                    entry: addr.raw_value(),
                    mode: EntryMode::Pvh,
                });
            }
            // An ELF without a PVH note: 64-bit boot protocol with a synthetic header.
            _ => (
                None,
                BootEntry {
                    entry: res.kernel_load.raw_value(),
                    mode: EntryMode::Linux64,
                },
            ),
        },
        Err(linux_loader::loader::Error::Elf(
            linux_loader::loader::elf::Error::InvalidElfMagicNumber,
        )) => {
            let mut kernel = open(spec.kernel, "kernel")?;
            let res = BzImage::load(mem, None, &mut kernel, Some(GuestAddress(HIMEM_START)))
                .map_err(|source| BootError::NotAKernel {
                    path: spec.kernel.to_path_buf(),
                    source,
                })?;
            let hdr = res.setup_header.ok_or(BootError::NoSetupHeader)?;
            if hdr.version < 0x020c || hdr.xloadflags & 1 == 0 {
                return Err(BootError::OldProtocol {
                    path: spec.kernel.to_path_buf(),
                    version: { hdr.version },
                });
            }
            (
                Some(hdr),
                BootEntry {
                    entry: res.kernel_load.raw_value() + 0x200,
                    mode: EntryMode::Linux64,
                },
            )
        }
        Err(source) => {
            return Err(BootError::Load {
                path: spec.kernel.to_path_buf(),
                source,
            });
        }
    };

    load_cmdline(mem, GuestAddress(CMDLINE_ADDR), &cmdline)
        .map_err(|e| BootError::write("the command line", e))?;
    let mut params = boot_params::default();
    if let Some(hdr) = setup_header {
        params.hdr = hdr;
    } else {
        params.hdr.kernel_alignment = KERNEL_MIN_ALIGNMENT;
    }
    let initrd_max = match params.hdr.initrd_addr_max {
        0 => 0x37ff_ffff,
        m => u64::from(m),
    };
    let initrd = load_initrd(mem, spec, initrd_max, 0)?;
    params.hdr.type_of_loader = KERNEL_LOADER_OTHER;
    params.hdr.boot_flag = KERNEL_BOOT_FLAG_MAGIC;
    params.hdr.header = KERNEL_HDR_MAGIC;
    params.hdr.cmd_line_ptr = CMDLINE_ADDR as u32;
    params.hdr.cmdline_size = spec.cmdline.len() as u32 + 1;
    if let Some((addr, size)) = initrd {
        params.hdr.ramdisk_image = addr as u32;
        params.hdr.ramdisk_size = size as u32;
    }
    params.acpi_rsdp_addr = spec.rsdp_addr;
    if spec.e820.len() > E820_MAX_ENTRIES_ZEROPAGE {
        return Err(BootError::TooManyE820);
    }
    for (i, e) in spec.e820.iter().enumerate() {
        params.e820_table[i] = boot_e820_entry {
            addr: e.addr,
            size: e.size,
            r#type: e.kind,
        };
    }
    params.e820_entries = spec.e820.len() as u8;
    mem.write_obj(params, GuestAddress(ZERO_PAGE_ADDR))
        .map_err(|e| BootError::write("the zero page", e))?;
    Ok(entry)
}

/// Places the initrd at the top of low RAM, page aligned, under `max_addr`, above the kernel.
fn load_initrd(
    mem: &GuestMemoryMmap,
    spec: &BootSpec,
    max_addr: u64,
    kernel_end: u64,
) -> Result<Option<(u64, u64)>> {
    let Some(path) = spec.initrd else {
        return Ok(None);
    };
    let mut file = open(path, "initrd")?;
    let size = file
        .metadata()
        .map_err(|source| BootError::InitrdMetadata {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let top = spec.low_ram_end.min(max_addr.saturating_add(1));
    let addr = top
        .checked_sub(size)
        .map(|a| a & !0xfff)
        .filter(|a| *a >= kernel_end.max(HIMEM_START));
    let Some(addr) = addr else {
        return Err(BootError::InitrdTooLarge {
            path: path.to_path_buf(),
            size,
            top,
        });
    };
    mem.read_exact_volatile_from(GuestAddress(addr), &mut file, size as usize)
        .map_err(|source| BootError::InitrdRead {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(Some((addr, size)))
}

fn write_pvh_start_info(
    mem: &GuestMemoryMmap,
    spec: &BootSpec,
    initrd: Option<(u64, u64)>,
) -> Result<()> {
    let err = |e: vm_memory::GuestMemoryError| BootError::write("the PVH start info", e);
    let mut info = hvm_start_info {
        magic: XEN_HVM_START_MAGIC,
        version: 1,
        cmdline_paddr: CMDLINE_ADDR,
        rsdp_paddr: spec.rsdp_addr,
        memmap_paddr: PVH_MEMMAP_ADDR,
        memmap_entries: spec.e820.len() as u32,
        ..Default::default()
    };
    if let Some((addr, size)) = initrd {
        let module = hvm_modlist_entry {
            paddr: addr,
            size,
            ..Default::default()
        };
        mem.write_obj(module, GuestAddress(PVH_MODLIST_ADDR))
            .map_err(err)?;
        info.nr_modules = 1;
        info.modlist_paddr = PVH_MODLIST_ADDR;
    }
    for (i, e) in spec.e820.iter().enumerate() {
        let entry = hvm_memmap_table_entry {
            addr: e.addr,
            size: e.size,
            type_: e.kind,
            reserved: 0,
        };
        mem.write_obj(entry, GuestAddress(PVH_MEMMAP_ADDR + i as u64 * 24))
            .map_err(err)?;
    }
    mem.write_obj(info, GuestAddress(PVH_INFO_ADDR))
        .map_err(err)
}
