//! Guest RAM: anonymous, lazily populated mappings (MAP_NORESERVE: a 64 GiB guest costs nothing
//! until it touches its pages) registered as KVM memory slots.

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use std::sync::Arc;

use vm_memory::mmap::{MmapRegion, MmapRegionBuilder};
use vm_memory::{
    GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, GuestRegionMmap,
};

use crate::arch::x86_64::boot::{E820_RAM, E820_RESERVED, E820Entry};
use crate::arch::x86_64::layout::{EBDA_START, FOUR_GIB, HIMEM_START, NVDIMM_MAILBOX_ADDR};
use crate::devices::nvdimm::backend::Backend;
/// Why guest RAM or a DMA view of it could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The host would not give the address space or the mapping.
    #[error(
        "cannot reserve {mib} MiB of guest RAM: {cause}; lower -m or check the host's overcommit limits"
    )]
    Reserve { mib: u64, cause: String },
    /// KVM refused a memory slot for boot RAM.
    #[error("KVM: cannot register guest RAM at {gpa:#x} as memory slot {slot}: {source}")]
    Slot {
        gpa: u64,
        slot: u32,
        #[source]
        source: kvm_ioctls::Error,
    },
    /// A memory device could not be added to what virtio devices may address.
    #[error("DMA view of {gpa:#x}: {cause}")]
    DmaView { gpa: u64, cause: String },
}

type Result<T> = std::result::Result<T, MemoryError>;

/// How RAM is split around the 32-bit hole (computed by pmem-layout, QEMU's rule).
#[derive(Clone, Copy, Debug)]
pub struct RamSplit {
    pub below_4g: u64,
    pub above_4g: u64,
}

/// 2 MiB: the huge-page size KVM can map when guest-physical and host-virtual addresses are
/// congruent modulo it.
const HUGE_PAGE: usize = 2 << 20;

/// An anonymous RAM mapping whose start is 2 MiB-aligned, unmapped on drop.
///
/// Why not vm-memory's own mmap: Linux before 6.7 does not align large anonymous mappings, and
/// with an unaligned base KVM can never use 2 MiB pages for the guest, so every 4 KiB page costs
/// its own nested-paging fault (docs/benchmarks.md has the nested-harness measurement).
struct AlignedMapping {
    addr: usize,
    len: usize,
}

impl AlignedMapping {
    fn new(len: usize) -> std::io::Result<AlignedMapping> {
        let page = 4096usize;
        let len = len
            .checked_next_multiple_of(page)
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOMEM))?;
        let total = len
            .checked_add(HUGE_PAGE)
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOMEM))?;
        let (prot, flags) = (
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        );
        // SAFETY: a new anonymous mapping at an address the kernel picks; no existing memory is
        // touched.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), total, prot, flags, -1, 0) };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let start = p as usize;
        let addr = start.next_multiple_of(HUGE_PAGE);
        let (head, tail) = (addr - start, total - (addr - start) - len);
        // SAFETY: both ranges lie inside the mapping created above, are page-aligned, and
        // nothing refers to them.
        unsafe {
            if head > 0 {
                libc::munmap(start as *mut libc::c_void, head);
            }
            if tail > 0 {
                libc::munmap((addr + len) as *mut libc::c_void, tail);
            }
        }
        // Transparent huge pages for guest RAM, as QEMU asks too; where THP is off this fails
        // harmlessly.
        // SAFETY: madvise on a range this mapping owns; it changes no memory contents.
        unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
        Ok(AlignedMapping { addr, len })
    }
}

impl Drop for AlignedMapping {
    fn drop(&mut self) {
        // SAFETY: the range is the mapping this value created and owns; every GuestMemoryMmap
        // that points into it is held next to an Arc of this value (GuestRam), so none is left.
        unsafe { libc::munmap(self.addr as *mut libc::c_void, self.len) };
    }
}

/// Guest RAM: vm-memory's view of the regions plus ownership of the mappings behind them.
/// Clones share the mappings; they are unmapped when the last clone goes.
#[derive(Clone)]
pub struct GuestRam {
    mem: GuestMemoryMmap,
    _mappings: Arc<Vec<AlignedMapping>>,
}

impl std::ops::Deref for GuestRam {
    type Target = GuestMemoryMmap;
    fn deref(&self) -> &GuestMemoryMmap {
        &self.mem
    }
}

/// Creates guest RAM plus the (reserved) NVDIMM mailbox page range.
pub fn create_guest_memory(split: RamSplit, mailbox_size: u64) -> Result<GuestRam> {
    let mut ranges = vec![(GuestAddress(0), split.below_4g as usize)];
    if mailbox_size > 0 {
        ranges.push((GuestAddress(NVDIMM_MAILBOX_ADDR), mailbox_size as usize));
    }
    if split.above_4g > 0 {
        ranges.push((GuestAddress(FOUR_GIB), split.above_4g as usize));
    }
    let fail = |e: &dyn std::fmt::Display| MemoryError::Reserve {
        mib: (split.below_4g + split.above_4g) >> 20,
        cause: e.to_string(),
    };
    let mut mappings = Vec::with_capacity(ranges.len());
    let mut regions = Vec::with_capacity(ranges.len());
    for (gpa, len) in ranges {
        let map = AlignedMapping::new(len).map_err(|e| fail(&e))?;
        // SAFETY: [map.addr, map.addr + len) is a live mapping owned by `map`, which GuestRam
        // keeps alive as long as any view of this memory exists.
        let region =
            unsafe { MmapRegionBuilder::new(len).with_raw_mmap_pointer(map.addr as *mut u8) }
                .with_mmap_prot(libc::PROT_READ | libc::PROT_WRITE)
                .with_mmap_flags(libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE)
                .build()
                .map_err(|e| fail(&e))?;
        mappings.push(map);
        regions.push(
            GuestRegionMmap::new(region, gpa)
                .ok_or_else(|| fail(&"the region wraps around the address space"))?,
        );
    }
    let mem = GuestMemoryMmap::from_regions(regions).map_err(|e| fail(&e))?;
    Ok(GuestRam {
        mem,
        _mappings: Arc::new(mappings),
    })
}

/// Registers every region of `mem` as a KVM memory slot, numbering from 0; returns the next
/// free slot number.
pub fn register_memory(vm: &VmFd, mem: &GuestMemoryMmap) -> Result<u32> {
    let mut slot = 0u32;
    for region in mem.iter() {
        let host = region.as_ptr() as u64;
        let region = kvm_userspace_memory_region {
            slot,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: host,
        };
        // SAFETY: the host range [userspace_addr, +memory_size) is a live mapping owned by `mem`,
        // which outlives the VM (the Vm struct drops the VmFd before the memory).
        unsafe { vm.set_user_memory_region(region) }.map_err(|source| MemoryError::Slot {
            gpa: region.guest_phys_addr,
            slot,
            source,
        })?;
        slot += 1;
    }
    Ok(slot)
}

/// The E820 map: low RAM, the reserved BIOS area, RAM from 1 MiB, the mailbox, high RAM.
pub fn e820_map(split: RamSplit, mailbox_size: u64) -> Vec<E820Entry> {
    let mut map = vec![
        E820Entry {
            addr: 0,
            size: EBDA_START,
            kind: E820_RAM,
        },
        E820Entry {
            addr: EBDA_START,
            size: HIMEM_START - EBDA_START,
            kind: E820_RESERVED,
        },
    ];
    if split.below_4g > HIMEM_START {
        map.push(E820Entry {
            addr: HIMEM_START,
            size: split.below_4g - HIMEM_START,
            kind: E820_RAM,
        });
    }
    if mailbox_size > 0 {
        map.push(E820Entry {
            addr: NVDIMM_MAILBOX_ADDR,
            size: mailbox_size,
            kind: E820_RESERVED,
        });
    }
    if split.above_4g > 0 {
        map.push(E820Entry {
            addr: FOUR_GIB,
            size: split.above_4g,
            kind: E820_RAM,
        });
    }
    map
}

/// One view of everything a DMA-capable device (virtio) may address: boot RAM plus the memory
/// devices mapped into the guest, with the backends kept alive as long as the view is in use.
pub struct DmaSnapshot {
    pub mem: GuestMemoryMmap,
    _ram: Option<GuestRam>,
    _keep: Vec<Arc<Backend>>,
}

/// The current [`DmaSnapshot`], replaced when a memory device is plugged. Devices take a
/// snapshot per request batch, so a concurrent hot-add never changes memory under them.
#[derive(Clone)]
pub struct DmaMemory(Arc<std::sync::Mutex<Arc<DmaSnapshot>>>);

impl DmaMemory {
    /// A view of boot RAM only.
    pub fn new(ram: &GuestRam) -> DmaMemory {
        Self::with(ram.mem.clone(), Some(ram.clone()))
    }

    /// A view of memory that owns its mappings (tests, fuzzing).
    pub fn from_mem(mem: GuestMemoryMmap) -> DmaMemory {
        Self::with(mem, None)
    }

    fn with(mem: GuestMemoryMmap, ram: Option<GuestRam>) -> DmaMemory {
        DmaMemory(Arc::new(std::sync::Mutex::new(Arc::new(DmaSnapshot {
            mem,
            _ram: ram,
            _keep: Vec::new(),
        }))))
    }

    /// The current view.
    pub fn snapshot(&self) -> Arc<DmaSnapshot> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Adds guest range `[gpa, gpa + len)`, backed by `backend` from its start. Read-only
    /// backends are left out: a device writing there would fault pmvm, and the guest cannot
    /// ask for DMA into memory it cannot write either (the request gets an I/O error).
    pub fn add(&self, gpa: u64, len: u64, backend: &Arc<Backend>) -> Result<()> {
        if backend.readonly || len == 0 || len > backend.len() as u64 {
            return Ok(());
        }
        let dma = |e: &dyn std::fmt::Display| MemoryError::DmaView {
            gpa,
            cause: e.to_string(),
        };
        let mut cur = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: [host_addr, +len) lies inside the backend's mapping (checked above), which is
        // readable and writable; the new snapshot holds an Arc to the backend, so the mapping
        // outlives every GuestMemoryMmap built over it. The region does not own the mapping.
        let region = unsafe {
            MmapRegion::build_raw(
                backend.host_addr() as *mut u8,
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
            )
        }
        .map_err(|e| dma(&e))?;
        let region = GuestRegionMmap::new(region, GuestAddress(gpa))
            .ok_or_else(|| dma(&"address overflow"))?;
        let mem = cur
            .mem
            .insert_region(Arc::new(region))
            .map_err(|e| dma(&e))?;
        let mut keep = cur._keep.clone();
        keep.push(backend.clone());
        *cur = Arc::new(DmaSnapshot {
            mem,
            _ram: cur._ram.clone(),
            _keep: keep,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::Bytes;

    #[test]
    fn guest_ram_is_2mib_aligned_and_usable() {
        // several odd sizes, so a lucky kernel placement cannot make this pass
        for (below, above) in [
            (512u64 << 20, 0u64),
            ((3 << 20) + 4096, 0),
            (1 << 30, 6 << 20),
        ] {
            let ram = create_guest_memory(
                RamSplit {
                    below_4g: below,
                    above_4g: above,
                },
                0x21000,
            )
            .expect("mmap");
            for r in ram.iter() {
                assert_eq!(
                    r.as_ptr() as usize % HUGE_PAGE,
                    0,
                    "region at {:#x}",
                    r.start_addr().0
                );
            }
            let last = GuestAddress(below - 8);
            ram.write_obj(0x1122_3344_5566_7788u64, last)
                .expect("write");
            assert_eq!(
                ram.read_obj::<u64>(last).expect("read"),
                0x1122_3344_5566_7788
            );
            let mailbox = GuestAddress(NVDIMM_MAILBOX_ADDR + 0x20ff8);
            ram.write_obj(7u64, mailbox).expect("mailbox write");
            assert!(
                ram.read_obj::<u64>(GuestAddress(below)).is_err(),
                "nothing mapped past RAM"
            );
        }
    }

    #[test]
    fn e820_for_small_and_large_guests() {
        let small = e820_map(
            RamSplit {
                below_4g: 512 << 20,
                above_4g: 0,
            },
            0x21000,
        );
        assert_eq!(small.len(), 4);
        assert_eq!(
            small[2],
            E820Entry {
                addr: 0x10_0000,
                size: (512 << 20) - 0x10_0000,
                kind: E820_RAM
            }
        );
        assert_eq!(small[3].kind, E820_RESERVED);
        let big = e820_map(
            RamSplit {
                below_4g: 3 << 30,
                above_4g: 5 << 30,
            },
            0,
        );
        assert_eq!(
            big.last(),
            Some(&E820Entry {
                addr: 1 << 32,
                size: 5 << 30,
                kind: E820_RAM
            })
        );
    }

    #[test]
    fn lazy_64g_guest_memory() {
        let mem = create_guest_memory(
            RamSplit {
                below_4g: 3 << 30,
                above_4g: 61 << 30,
            },
            0x21000,
        )
        .unwrap();
        assert_eq!(mem.iter().count(), 3);
    }

    #[test]
    fn dma_view_reaches_memory_devices_added_later_and_keeps_them_alive() {
        use vm_config::{BackendConfig, BackendKind};
        let ram = create_guest_memory(
            RamSplit {
                below_4g: 16 << 20,
                above_4g: 0,
            },
            0,
        )
        .expect("mmap");
        let dma = DmaMemory::new(&ram);
        let before = dma.snapshot();
        let cfg = |id: &str| BackendConfig {
            id: id.into(),
            size: 4 << 20,
            share: false,
            prealloc: false,
            kind: BackendKind::Ram,
        };
        let dimm = Arc::new(Backend::open(&cfg("dimm"), false).expect("ram backend"));
        let gpa = GuestAddress(5 << 30);
        dma.add(gpa.0, 4 << 20, &dimm).expect("add");
        let now = dma.snapshot();
        now.mem
            .write_obj(0xfeed_u32, GuestAddress(gpa.0 + 4096))
            .expect("DMA into the DIMM");
        let mut b = [0u8; 4];
        dimm.read(4096, &mut b).expect("read back");
        assert_eq!(u32::from_le_bytes(b), 0xfeed);
        assert!(
            before.mem.write_obj(1u32, gpa).is_err(),
            "an older snapshot does not change"
        );
        assert!(
            now.mem
                .write_obj(1u32, GuestAddress(gpa.0 + (4 << 20)))
                .is_err(),
            "only the device's range"
        );
        now.mem
            .write_obj(7u64, GuestAddress(0x1000))
            .expect("boot RAM still there");
        // The snapshot keeps the backend mapped after everyone else let go of it.
        drop(dimm);
        drop(dma);
        now.mem.write_obj(9u32, gpa).expect("still mapped");
        // A range longer than the backend is not added.
        let small = Arc::new(Backend::open(&cfg("small"), false).expect("ram backend"));
        let dma = DmaMemory::new(&ram);
        dma.add(6 << 30, 8 << 20, &small).expect("ignored");
        assert!(
            dma.snapshot()
                .mem
                .write_obj(1u8, GuestAddress(6 << 30))
                .is_err()
        );
    }
}
