//! Guest RAM: anonymous, lazily populated mappings (MAP_NORESERVE: a 64 GiB guest costs nothing
//! until it touches its pages) registered as KVM memory slots.

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

use crate::arch::x86_64::boot::{E820_RAM, E820_RESERVED, E820Entry};
use crate::arch::x86_64::layout::{EBDA_START, FOUR_GIB, HIMEM_START, NVDIMM_MAILBOX_ADDR};
use crate::error::{Error, Result};

/// How RAM is split around the 32-bit hole (computed by pmem-layout, QEMU's rule).
#[derive(Clone, Copy, Debug)]
pub struct RamSplit {
    pub below_4g: u64,
    pub above_4g: u64,
}

/// Creates guest RAM plus the (reserved) NVDIMM mailbox page range.
pub fn create_guest_memory(split: RamSplit, mailbox_size: u64) -> Result<GuestMemoryMmap> {
    let mut ranges = vec![(GuestAddress(0), split.below_4g as usize)];
    if mailbox_size > 0 {
        ranges.push((GuestAddress(NVDIMM_MAILBOX_ADDR), mailbox_size as usize));
    }
    if split.above_4g > 0 {
        ranges.push((GuestAddress(FOUR_GIB), split.above_4g as usize));
    }
    GuestMemoryMmap::from_ranges(&ranges).map_err(|e| {
        Error::Memory(format!(
            "cannot reserve {} MiB of guest RAM: {e}; lower -m or check the host's overcommit limits",
            (split.below_4g + split.above_4g) >> 20
        ))
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
        unsafe { vm.set_user_memory_region(region) }.map_err(Error::Kvm)?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
