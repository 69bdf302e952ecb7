//! Zero-copy loading of an uncompressed ELF vmlinux with a PVH entry: each PT_LOAD segment's
//! file pages are mapped copy-on-write straight over the guest RAM that would receive them,
//! instead of being copied (a 66 MB Debian vmlinux cost ~0.5 s to copy in the nested harness).
//! Anything unusual (not ELF64, misaligned segments, outside RAM) returns None and the caller
//! falls back to linux-loader's copying loader.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

const PAGE: u64 = 4096;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

/// One program header (the fields we use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub kind: u32,
    pub offset: u64,
    pub paddr: u64,
    pub filesz: u64,
    pub memsz: u64,
}

/// Parses the ELF64 little-endian x86-64 header and program headers.
pub fn program_headers(file: &File) -> Option<Vec<Segment>> {
    let mut eh = [0u8; 64];
    file.read_exact_at(&mut eh, 0).ok()?;
    if &eh[0..4] != b"\x7fELF" || eh[4] != 2 || eh[5] != 1 || u16_at(&eh, 18)? != 62 {
        return None;
    }
    let phoff = u64_at(&eh, 32)?;
    let phentsize = usize::from(u16_at(&eh, 54)?);
    let phnum = usize::from(u16_at(&eh, 56)?);
    if phentsize < 56 || phnum == 0 || phnum > 64 {
        return None;
    }
    let mut ph = vec![0u8; phentsize * phnum];
    file.read_exact_at(&mut ph, phoff).ok()?;
    (0..phnum)
        .map(|i| {
            let b = &ph[i * phentsize..];
            Some(Segment {
                kind: u32_at(b, 0)?,
                offset: u64_at(b, 8)?,
                paddr: u64_at(b, 24)?,
                filesz: u64_at(b, 32)?,
                memsz: u64_at(b, 40)?,
            })
        })
        .collect()
}

/// The PVH 32-bit entry point from the Xen ELF notes.
pub fn pvh_entry(file: &File, segments: &[Segment]) -> Option<u64> {
    for s in segments
        .iter()
        .filter(|s| s.kind == PT_NOTE && s.filesz <= 1 << 20)
    {
        let mut notes = vec![0u8; s.filesz as usize];
        file.read_exact_at(&mut notes, s.offset).ok()?;
        let mut o = 0usize;
        while o + 12 <= notes.len() {
            let namesz = u32_at(&notes, o)? as usize;
            let descsz = u32_at(&notes, o + 4)? as usize;
            let kind = u32_at(&notes, o + 8)?;
            let name_end = o.checked_add(12)?.checked_add(namesz)?;
            let desc = name_end.checked_add(3)? & !3;
            if kind == XEN_ELFNOTE_PHYS32_ENTRY && notes.get(o + 12..name_end)? == b"Xen\0" {
                return match descsz {
                    4 => u32_at(&notes, desc).map(u64::from),
                    8 => u64_at(&notes, desc),
                    _ => None,
                };
            }
            o = desc.checked_add(descsz)?.checked_add(3)? & !3;
        }
    }
    None
}

/// Maps every PT_LOAD segment over guest RAM; returns the end of the highest segment.
/// Must run before the vCPUs start (KVM follows the new mapping through its MMU notifier).
pub fn map_segments(mem: &GuestMemoryMmap, file: &File, segments: &[Segment]) -> Option<u64> {
    let loads: Vec<&Segment> = segments
        .iter()
        .filter(|s| s.kind == PT_LOAD && s.memsz > 0)
        .collect();
    // Check everything first: nothing is mapped unless every segment can be.
    for s in &loads {
        if s.offset % PAGE != s.paddr % PAGE || s.filesz > s.memsz {
            return None;
        }
        let end = s.paddr.checked_add(s.memsz)?;
        let host = mem.get_host_address(GuestAddress(s.paddr)).ok()?;
        let last = mem.get_host_address(GuestAddress(end - 1)).ok()?;
        // One contiguous host range (a single RAM region).
        if last as u64 - host as u64 != s.memsz - 1 {
            return None;
        }
    }
    let mut kernel_end = 0;
    for s in &loads {
        let start = s.paddr & !(PAGE - 1);
        let skew = s.paddr - start;
        let map_len = (skew + s.filesz).div_ceil(PAGE) * PAGE;
        let host = mem.get_host_address(GuestAddress(start)).ok()?;
        if s.filesz > 0 {
            // SAFETY: [host, host+map_len) lies inside guest RAM (checked above) which this
            // process owns; MAP_FIXED replaces those anonymous pages with private copy-on-write
            // file pages; no Rust reference points into guest memory during boot set-up.
            let p = unsafe {
                libc::mmap(
                    host.cast(),
                    map_len as usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_FIXED,
                    file.as_raw_fd(),
                    (s.offset - skew) as libc::off_t,
                )
            };
            if p == libc::MAP_FAILED {
                return None;
            }
            // The last file page may carry bytes past the segment: they belong to .bss, zero
            // them (and the bytes before the segment in its first page, if any).
            let tail = skew + s.filesz;
            // SAFETY: both ranges are inside the mapping just created.
            unsafe {
                std::ptr::write_bytes(host.add(tail as usize), 0, (map_len - tail) as usize);
                std::ptr::write_bytes(host, 0, skew as usize);
            }
        }
        kernel_end = kernel_end.max(s.paddr + s.memsz);
    }
    Some(kernel_end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A minimal ELF64 with one PT_LOAD (file page at offset 0x1000 -> 0x100000, .bss after)
    /// and a Xen PVH note.
    fn tiny_elf() -> Vec<u8> {
        let mut f = vec![0u8; 0x2000];
        f[0..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[6] = 1;
        f[18..20].copy_from_slice(&62u16.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&2u16.to_le_bytes());
        let ph = |f: &mut Vec<u8>,
                  i: usize,
                  kind: u32,
                  off: u64,
                  paddr: u64,
                  filesz: u64,
                  memsz: u64| {
            let b = 64 + i * 56;
            f[b..b + 4].copy_from_slice(&kind.to_le_bytes());
            f[b + 8..b + 16].copy_from_slice(&off.to_le_bytes());
            f[b + 24..b + 32].copy_from_slice(&paddr.to_le_bytes());
            f[b + 32..b + 40].copy_from_slice(&filesz.to_le_bytes());
            f[b + 40..b + 48].copy_from_slice(&memsz.to_le_bytes());
        };
        ph(&mut f, 0, PT_LOAD, 0x1000, 0x10_0000, 0x10, 0x3000);
        ph(&mut f, 1, PT_NOTE, 0x200, 0, 20, 20);
        f[0x1000..0x1010].copy_from_slice(b"KERNEL-CODE-HERE");
        f[0x1010..0x1020].copy_from_slice(b"NOT-PART-OF-SEG!"); // must not leak into .bss
        let note = [4u32.to_le_bytes(), 4u32.to_le_bytes(), 18u32.to_le_bytes()].concat();
        f[0x200..0x20c].copy_from_slice(&note);
        f[0x20c..0x210].copy_from_slice(b"Xen\0");
        f[0x210..0x214].copy_from_slice(&0x10_0000u32.to_le_bytes());
        f
    }

    #[test]
    fn maps_segments_zeroes_bss_and_finds_the_pvh_entry() {
        use vm_memory::Bytes;
        let path = std::env::temp_dir().join(format!("pmvm-elfmap-{}", std::process::id()));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&tiny_elf())
            .unwrap();
        let file = File::open(&path).unwrap();
        let segs = program_headers(&file).unwrap();
        assert_eq!(pvh_entry(&file, &segs), Some(0x10_0000));
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 4 << 20)]).unwrap();
        mem.write_slice(&[0xaa; 0x3000], GuestAddress(0x10_0000))
            .unwrap(); // stale RAM
        assert_eq!(map_segments(&mem, &file, &segs), Some(0x10_3000));
        let mut buf = [0u8; 0x20];
        mem.read_slice(&mut buf, GuestAddress(0x10_0000)).unwrap();
        assert_eq!(&buf[..16], b"KERNEL-CODE-HERE");
        assert_eq!(&buf[16..], &[0u8; 16]);
        let mut bss = [0xffu8; 0x100];
        mem.read_slice(&mut bss, GuestAddress(0x10_2000)).unwrap();
        assert!(
            bss.iter().all(|b| *b == 0xaa),
            "untouched RAM beyond the file pages stays as it was"
        );
        // The file is not modified by guest writes (private mapping).
        mem.write_slice(b"guest", GuestAddress(0x10_0000)).unwrap();
        assert_eq!(&std::fs::read(&path).unwrap()[0x1000..0x1005], b"KERNE");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn garbage_is_refused() {
        let path = std::env::temp_dir().join(format!("pmvm-elfmap-bad-{}", std::process::id()));
        std::fs::write(&path, b"\x7fELF garbage that is far too short").unwrap();
        assert!(program_headers(&File::open(&path).unwrap()).is_none());
        std::fs::remove_file(&path).unwrap();
    }
}
