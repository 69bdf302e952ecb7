//! Guest RAM split (QEMU pc) and the device-memory window.
//!
//! Facts (qemu-nvdimm.md §2.1): with `ram_size >= 0xE000_0000` the pc machine
//! keeps 3 GiB below 4 GiB and puts the rest at 4 GiB; otherwise all RAM is
//! below 4 GiB. The device-memory window exists only when `maxmem > ram`,
//! starts at `align_up(4 GiB + above_4g, 1 GiB)` and is
//! `(maxmem - ram) + 1 GiB * slots` long.

use crate::error::LayoutError;
use crate::{
    ABOVE_4G_START, ACPI_MAX_RAM_SLOTS, DEVICE_MEM_ALIGN, PAGE_SIZE, PC_BELOW_4G_SPLIT,
    PC_LOWMEM_SPLIT_THRESHOLD, RAM_SIZE_GRANULE, align_down, align_up,
};

/// How the pc machine places the initial RAM in guest-physical space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RamLayout {
    /// Bytes of RAM at GPA `[0, below_4g)`.
    pub below_4g: u64,
    /// Bytes of RAM at GPA `[4 GiB, 4 GiB + above_4g)`.
    pub above_4g: u64,
}

impl RamLayout {
    /// Split `ram_size` like QEMU's pc machine (gigabyte-aligned variant).
    pub const fn new(ram_size: u64) -> RamLayout {
        if ram_size >= PC_LOWMEM_SPLIT_THRESHOLD {
            RamLayout {
                below_4g: PC_BELOW_4G_SPLIT,
                above_4g: ram_size - PC_BELOW_4G_SPLIT,
            }
        } else {
            RamLayout {
                below_4g: ram_size,
                above_4g: 0,
            }
        }
    }

    /// Total RAM.
    pub const fn total(&self) -> u64 {
        self.below_4g + self.above_4g
    }

    /// Start of the 32-bit PCI hole (= end of low RAM); the hole ends at 4 GiB.
    pub const fn pci_hole_start(&self) -> u64 {
        self.below_4g
    }

    /// First GPA after high RAM (4 GiB when there is none).
    pub const fn above_4g_end(&self) -> u64 {
        ABOVE_4G_START + self.above_4g
    }

    /// RAM ranges as `(gpa, len)`, low first; empty ranges omitted.
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        let mut v = Vec::with_capacity(2);
        if self.below_4g > 0 {
            v.push((0, self.below_4g));
        }
        if self.above_4g > 0 {
            v.push((ABOVE_4G_START, self.above_4g));
        }
        v
    }
}

/// The validated `-m size=,slots=,maxmem=` triple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MachineMemory {
    /// Initial RAM in bytes (already rounded up to 8 KiB).
    pub ram_size: u64,
    /// Memory slots for DIMM/NVDIMM devices (0..=256).
    pub slots: u32,
    /// Maximum memory (RAM + all memory devices); equals `ram_size` when absent.
    pub maxmem: u64,
}

impl MachineMemory {
    /// Validate `-m` options the way QEMU's `machine_set_mem` and
    /// `pc_memory_init` do: RAM rounded up to 8 KiB, `maxmem >= ram`, `slots`
    /// requires `maxmem > ram`, `slots <= 256`, `maxmem` 4 KiB aligned, and
    /// the window must fit in 64 bits.
    pub fn from_options(
        size: u64,
        slots: Option<u64>,
        maxmem: Option<u64>,
    ) -> Result<MachineMemory, LayoutError> {
        let ram = align_up(size, RAM_SIZE_GRANULE).ok_or(LayoutError::RamTooLarge { ram: size })?;
        let maxmem = match maxmem {
            Some(max) => {
                if max < ram {
                    return Err(LayoutError::MaxmemBelowRam { maxmem: max, ram });
                }
                if slots.is_some_and(|s| s != 0) && max == ram {
                    return Err(LayoutError::SlotsButMaxmemEqualsRam { maxmem: max, ram });
                }
                max
            }
            None => {
                if let Some(s) = slots {
                    return Err(LayoutError::SlotsWithoutMaxmem { ram, slots: s });
                }
                ram
            }
        };
        let slots = slots.unwrap_or(0);
        if slots > ACPI_MAX_RAM_SLOTS {
            return Err(LayoutError::UnsupportedSlots { slots });
        }
        // slots <= 256 was checked just above, so it fits u32.
        let m = MachineMemory {
            ram_size: ram,
            slots: slots as u32,
            maxmem,
        };
        m.validate()?;
        Ok(m)
    }

    /// Re-check an already built triple (used by [`crate::DeviceMemory::new`]).
    pub fn validate(&self) -> Result<(), LayoutError> {
        if u64::from(self.slots) > ACPI_MAX_RAM_SLOTS {
            return Err(LayoutError::UnsupportedSlots {
                slots: u64::from(self.slots),
            });
        }
        if self.maxmem < self.ram_size {
            return Err(LayoutError::MaxmemBelowRam {
                maxmem: self.maxmem,
                ram: self.ram_size,
            });
        }
        if self.maxmem > self.ram_size {
            if !self.maxmem.is_multiple_of(PAGE_SIZE) {
                let suggested = align_up(self.maxmem, PAGE_SIZE)
                    .unwrap_or_else(|| align_down(self.maxmem, PAGE_SIZE));
                return Err(LayoutError::MaxmemUnaligned {
                    maxmem: self.maxmem,
                    suggested,
                });
            }
            DeviceMemoryWindow::compute(self)?;
        }
        Ok(())
    }

    /// The RAM split of this machine.
    pub const fn ram_layout(&self) -> RamLayout {
        RamLayout::new(self.ram_size)
    }

    /// The device-memory window, `None` when `maxmem == ram`.
    pub fn window(&self) -> Result<Option<DeviceMemoryWindow>, LayoutError> {
        if self.maxmem > self.ram_size {
            DeviceMemoryWindow::compute(self).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// The guest-physical range reserved for DIMM/NVDIMM devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceMemoryWindow {
    /// First GPA of the window (1 GiB aligned).
    pub base: u64,
    /// Window length: `(maxmem - ram) + 1 GiB * slots`.
    pub size: u64,
}

impl DeviceMemoryWindow {
    /// Compute the window for `m` (assumes `maxmem > ram`; checks overflow).
    fn compute(m: &MachineMemory) -> Result<DeviceMemoryWindow, LayoutError> {
        let too_large = LayoutError::MaxmemTooLarge { maxmem: m.maxmem };
        let ram = m.ram_layout();
        let base = ABOVE_4G_START
            .checked_add(ram.above_4g)
            .and_then(|e| align_up(e, DEVICE_MEM_ALIGN))
            .ok_or_else(|| too_large.clone())?;
        let size = (m.maxmem - m.ram_size)
            .checked_add(DEVICE_MEM_ALIGN * u64::from(m.slots))
            .ok_or_else(|| too_large.clone())?;
        // The 64-bit PCI window starts at align_up(end, 1 GiB): it must exist.
        base.checked_add(size)
            .and_then(|e| align_up(e, DEVICE_MEM_ALIGN))
            .ok_or(too_large)?;
        Ok(DeviceMemoryWindow { base, size })
    }

    /// One past the last GPA of the window.
    pub const fn end(&self) -> u64 {
        self.base + self.size
    }

    /// `align_up(end, 1 GiB)`: where the 64-bit PCI window may start; QEMU
    /// reports it to firmware as fw_cfg `etc/reserved-memory-end`.
    pub const fn reserved_memory_end(&self) -> u64 {
        let e = self.end();
        let rem = e % DEVICE_MEM_ALIGN;
        // compute() verified that this round-up does not overflow.
        if rem == 0 {
            e
        } else {
            e + (DEVICE_MEM_ALIGN - rem)
        }
    }

    /// True when `[gpa, gpa+len)` lies inside the window (len > 0).
    pub const fn contains(&self, gpa: u64, len: u64) -> bool {
        len > 0 && gpa >= self.base && len <= self.size && gpa - self.base <= self.size - len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GIB, MIB};

    #[test]
    fn ram_split() {
        assert_eq!(
            RamLayout::new(4 * GIB),
            RamLayout {
                below_4g: 3 * GIB,
                above_4g: GIB
            }
        );
        assert_eq!(
            RamLayout::new(0xE000_0000),
            RamLayout {
                below_4g: 3 * GIB,
                above_4g: 512 * MIB
            }
        );
        assert_eq!(
            RamLayout::new(0xDFFF_E000),
            RamLayout {
                below_4g: 0xDFFF_E000,
                above_4g: 0
            }
        );
        assert_eq!(RamLayout::new(128 * MIB).ranges(), vec![(0, 128 * MIB)]);
        assert_eq!(
            RamLayout::new(8 * GIB).ranges(),
            vec![(0, 3 * GIB), (4 * GIB, 5 * GIB)]
        );
    }

    #[test]
    fn qemu_golden_window() {
        // -m 128M,slots=3,maxmem=1G -> base 0x1_0000_0000, size 0xF800_0000.
        let m = MachineMemory::from_options(128 * MIB, Some(3), Some(GIB)).unwrap();
        let w = m.window().unwrap().unwrap();
        assert_eq!((w.base, w.size), (0x1_0000_0000, 0xF800_0000));
        assert_eq!(w.reserved_memory_end(), 0x2_0000_0000);
    }

    #[test]
    fn seed_window() {
        // -m 4G,slots=4,maxmem=32G: high RAM 1 GiB -> base 5 GiB, size 28 GiB + 4 GiB.
        let m = MachineMemory::from_options(4 * GIB, Some(4), Some(32 * GIB)).unwrap();
        let w = m.window().unwrap().unwrap();
        assert_eq!((w.base, w.size), (0x1_4000_0000, 0x8_0000_0000));
        assert_eq!(w.reserved_memory_end(), 0x9_4000_0000);
    }

    #[test]
    fn option_errors() {
        let e = MachineMemory::from_options(4 * GIB, Some(300), Some(8 * GIB)).unwrap_err();
        assert_eq!(e, LayoutError::UnsupportedSlots { slots: 300 });
        assert!(
            e.to_string()
                .starts_with("unsupported amount of memory slots: 300;")
        );
        let e = MachineMemory::from_options(4 * GIB, Some(2), Some(8 * GIB + 1)).unwrap_err();
        assert!(e.to_string().starts_with(
            "maximum memory size must by aligned to multiple of 4096 bytes; -m maxmem=0x200000001 is not, use maxmem=8388612K"
        ), "{e}");
        let e = MachineMemory::from_options(4 * GIB, Some(2), Some(2 * GIB)).unwrap_err();
        assert!(e.to_string().starts_with(
            "invalid value of maxmem: maximum memory size (0x80000000) must be at least the initial memory size (0x100000000)"
        ), "{e}");
        let e = MachineMemory::from_options(4 * GIB, Some(2), Some(4 * GIB)).unwrap_err();
        assert!(matches!(e, LayoutError::SlotsButMaxmemEqualsRam { .. }));
        let e = MachineMemory::from_options(4 * GIB, Some(2), None).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "slots specified but no max-size; add maxmem= to -m (e.g. -m 4G,slots=2,maxmem=8G)"
            ),
            "{e}"
        );
        let e = MachineMemory::from_options(GIB, Some(256), Some(u64::MAX - 4095)).unwrap_err();
        assert!(matches!(e, LayoutError::MaxmemTooLarge { .. }));
        assert!(matches!(
            MachineMemory::from_options(u64::MAX, None, None),
            Err(LayoutError::RamTooLarge { .. })
        ));
    }

    #[test]
    fn ram_rounding_and_no_window() {
        let m = MachineMemory::from_options(1000, None, None).unwrap();
        assert_eq!(
            m,
            MachineMemory {
                ram_size: 8192,
                slots: 0,
                maxmem: 8192
            }
        );
        assert_eq!(m.window(), Ok(None));
        // maxmem > ram with slots=0 is accepted (QEMU too); the window has no slot slack.
        let m = MachineMemory::from_options(GIB, None, Some(2 * GIB)).unwrap();
        assert_eq!(m.window().unwrap().unwrap().size, GIB);
    }

    #[test]
    fn window_contains() {
        let w = DeviceMemoryWindow {
            base: 4 * GIB,
            size: GIB,
        };
        assert!(w.contains(4 * GIB, GIB));
        assert!(!w.contains(4 * GIB, GIB + 1));
        assert!(!w.contains(4 * GIB - 1, 2));
        assert!(!w.contains(5 * GIB, 1));
        assert!(!w.contains(4 * GIB, 0));
    }
}
