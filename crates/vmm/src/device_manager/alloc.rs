//! The device manager's allocators: KVM memory slots, interrupt lines and fixed-size MMIO
//! windows. Each hands out the lowest free item, so a VM built from the same configuration
//! always gets the same numbers (and a device freed by an unplug is reused first).
//!
//! Why not `vm-allocator`: its `AddressAllocator` and `IdAllocator` cover two of the three, but
//! pmvm's needs are "lowest free from a short fixed list" (GSIs are not a range: the IOAPIC
//! lines above the ISA range, then ISA lines no legacy device uses), which a `BTreeSet` does
//! in a few lines with the reuse order we want.

use std::collections::BTreeSet;

use super::error::DeviceError;

/// KVM memory slots from `first` up to the host's limit.
pub struct SlotAllocator {
    next: u32,
    max: u32,
    freed: BTreeSet<u32>,
}

impl SlotAllocator {
    /// Slots `first..max` are free.
    pub fn new(first: u32, max: u32) -> Self {
        SlotAllocator {
            next: first,
            max,
            freed: BTreeSet::new(),
        }
    }

    /// The lowest free slot.
    pub fn alloc(&mut self) -> Result<u32, DeviceError> {
        if let Some(s) = self.freed.pop_first() {
            return Ok(s);
        }
        if self.next >= self.max {
            return Err(DeviceError::NoMemorySlot { max: self.max });
        }
        self.next += 1;
        Ok(self.next - 1)
    }

    /// Gives `slot` back.
    pub fn free(&mut self, slot: u32) {
        if slot + 1 == self.next {
            self.next -= 1;
        } else if slot < self.next {
            self.freed.insert(slot);
        }
    }
}

/// Interrupt lines from a fixed pool, lowest position first.
pub struct GsiAllocator {
    pool: &'static [u32],
    used: BTreeSet<usize>,
}

impl GsiAllocator {
    /// A pool of `pool` lines, all free.
    pub fn new(pool: &'static [u32]) -> Self {
        GsiAllocator {
            pool,
            used: BTreeSet::new(),
        }
    }

    /// The first free line of the pool.
    pub fn alloc(&mut self) -> Option<u32> {
        let i = (0..self.pool.len()).find(|i| !self.used.contains(i))?;
        self.used.insert(i);
        Some(self.pool[i])
    }

    /// Gives `gsi` back.
    pub fn free(&mut self, gsi: u32) {
        if let Some(i) = self.pool.iter().position(|&g| g == gsi) {
            self.used.remove(&i);
        }
    }
}

/// `count` windows of `size` bytes from `base`.
pub struct WindowAllocator {
    base: u64,
    size: u64,
    count: u64,
    used: BTreeSet<u64>,
}

impl WindowAllocator {
    /// All windows free.
    pub fn new(base: u64, size: u64, count: u64) -> Self {
        WindowAllocator {
            base,
            size,
            count,
            used: BTreeSet::new(),
        }
    }

    /// The lowest free window: its index and base address.
    pub fn alloc(&mut self) -> Option<(u64, u64)> {
        let i = (0..self.count).find(|i| !self.used.contains(i))?;
        self.used.insert(i);
        Some((i, self.base + i * self.size))
    }

    /// Gives the window at `addr` back.
    pub fn free(&mut self, addr: u64) {
        if addr >= self.base && (addr - self.base).is_multiple_of(self.size) {
            self.used.remove(&((addr - self.base) / self.size));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_lowest_first_reuse_and_limit() {
        let mut s = SlotAllocator::new(3, 6);
        assert_eq!((s.alloc().unwrap(), s.alloc().unwrap()), (3, 4));
        s.free(3);
        assert_eq!(s.alloc().unwrap(), 3);
        assert_eq!(s.alloc().unwrap(), 5);
        let e = s.alloc().unwrap_err().to_string();
        assert!(e.contains("host allows 6"), "{e}");
        s.free(5);
        assert_eq!(s.alloc().unwrap(), 5);
    }

    #[test]
    fn gsis_from_the_pool_in_order() {
        static POOL: [u32; 3] = [16, 17, 10];
        let mut g = GsiAllocator::new(&POOL);
        assert_eq!(g.alloc(), Some(16));
        assert_eq!(g.alloc(), Some(17));
        g.free(16);
        assert_eq!(g.alloc(), Some(16));
        assert_eq!(g.alloc(), Some(10));
        assert_eq!(g.alloc(), None);
        g.free(99); // not in the pool: ignored
        assert_eq!(g.alloc(), None);
    }

    #[test]
    fn windows_are_disjoint_and_reused() {
        let mut w = WindowAllocator::new(0xe000_0000, 0x1000, 2);
        assert_eq!(w.alloc(), Some((0, 0xe000_0000)));
        assert_eq!(w.alloc(), Some((1, 0xe000_1000)));
        assert_eq!(w.alloc(), None);
        w.free(0xe000_0800); // not a window base: ignored
        assert_eq!(w.alloc(), None);
        w.free(0xe000_0000);
        assert_eq!(w.alloc(), Some((0, 0xe000_0000)));
    }
}
