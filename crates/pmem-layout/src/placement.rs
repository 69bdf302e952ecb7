//! Slot and guest-physical-address assignment for memory devices
//! (qemu-nvdimm.md §2.2): the same code runs for cold plug and hotplug, so a
//! given ordered device list always yields the same slots and GPAs — and
//! therefore the same NFIT handles, serials and interleave-set cookies.

use crate::error::LayoutError;
use crate::ram::{DeviceMemoryWindow, MachineMemory};
use crate::{DEVICE_MEM_ALIGN, align_up};

/// The kind of memory device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// `-device nvdimm`.
    Nvdimm,
    /// `-device pc-dimm` (hot-pluggable RAM).
    PcDimm,
}

/// Which slot-count rule to enforce in addition to QEMU's own slot checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SlotRule {
    /// The QEMU vNVDIMM guide (seed 000): `slots >= 1 RAM + memory devices`
    /// (hot-plugged included). Default.
    #[default]
    Seed,
    /// Only QEMU's checks: `memory devices <= slots`.
    Qemu,
}

/// A device to plug.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemoryDeviceRequest {
    /// Device id (`id=`); must be unique.
    pub id: String,
    /// Device kind.
    pub kind: DeviceKind,
    /// Region size: for an NVDIMM the pmem part ([`crate::NvdimmSplit::pmem_size`]).
    pub size: u64,
    /// Placement alignment: the backend alignment (power of two).
    pub align: u64,
    /// Explicit `slot=`, `None` = lowest free.
    pub slot: Option<u32>,
    /// Explicit `addr=`, `None` (or `Some(0)`, as in QEMU) = first fit.
    pub addr: Option<u64>,
}

/// Where a device went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Placement {
    /// Memory slot (NFIT handle = slot + 1, serial = 0x123456 + slot).
    pub slot: u32,
    /// Guest-physical start address.
    pub gpa: u64,
    /// Region size.
    pub size: u64,
}

/// A plugged device as remembered by [`DeviceMemory`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlacedDevice {
    /// Device id.
    pub id: String,
    /// Device kind.
    pub kind: DeviceKind,
    /// Alignment used.
    pub align: u64,
    /// Slot, address and size.
    pub placement: Placement,
}

/// QEMU's warning when a placement alignment exceeds the window base
/// alignment (1 GiB): returns the text to log, if any.
pub fn alignment_warning(align: u64) -> Option<String> {
    (align > DEVICE_MEM_ALIGN).then(|| {
        format!(
            "the alignment (0x{align:x}) exceeds the expected maximum alignment, memory will get \
             fragmented and not all 'maxmem' might be usable for memory devices."
        )
    })
}

/// The machine's memory-device state: window, slots, plugged devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceMemory {
    machine: MachineMemory,
    window: Option<DeviceMemoryWindow>,
    rule: SlotRule,
    /// Minimum alignment of automatically placed device start addresses (0: QEMU's, the
    /// device's own alignment).
    start_align: u64,
    /// In plug order.
    devices: Vec<PlacedDevice>,
}

impl DeviceMemory {
    /// Build from the `-m` values (`ram_size` already final; `maxmem ==
    /// ram_size` means no window). Checks slots <= 256, maxmem >= ram,
    /// maxmem 4 KiB aligned and address-space overflow.
    pub fn new(ram_size: u64, slots: u32, maxmem: u64) -> Result<DeviceMemory, LayoutError> {
        DeviceMemory::from_machine(MachineMemory {
            ram_size,
            slots,
            maxmem,
        })
    }

    /// Build from a validated [`MachineMemory`].
    pub fn from_machine(machine: MachineMemory) -> Result<DeviceMemory, LayoutError> {
        machine.validate()?;
        let window = machine.window()?;
        Ok(DeviceMemory {
            machine,
            window,
            rule: SlotRule::default(),
            start_align: 0,
            devices: Vec::new(),
        })
    }

    /// Choose the slot-count rule (default [`SlotRule::Seed`]).
    pub fn with_slot_rule(mut self, rule: SlotRule) -> DeviceMemory {
        self.rule = rule;
        self
    }

    /// Places automatically addressed devices on `align` boundaries (a power of two) at least.
    /// pmvm uses the 128 MiB memory block: QEMU packs devices at their own alignment, so a
    /// second NVDIMM can start just short of a 16 MiB boundary (Linux then refuses fsdax and
    /// devdax namespaces on it) and a DIMM plugged after it cannot be onlined.
    pub fn with_start_alignment(mut self, align: u64) -> DeviceMemory {
        if align.is_power_of_two() {
            self.start_align = align;
        }
        self
    }

    /// The machine values.
    pub fn machine(&self) -> MachineMemory {
        self.machine
    }

    /// The device-memory window, if `maxmem > ram`.
    pub fn window(&self) -> Option<DeviceMemoryWindow> {
        self.window
    }

    /// Sum of plugged region sizes (QEMU `used_region_size`).
    pub fn used(&self) -> u64 {
        // Bounded by maxmem - ram (capacity check on every plug).
        self.devices.iter().map(|d| d.placement.size).sum()
    }

    /// Plugged devices in plug order.
    pub fn iter(&self) -> impl Iterator<Item = &PlacedDevice> {
        self.devices.iter()
    }

    /// Look a device up by id.
    pub fn get(&self, id: &str) -> Option<&PlacedDevice> {
        self.devices.iter().find(|d| d.id == id)
    }

    /// Plug a device: slot, capacity and address checks in QEMU's order
    /// (slot, then capacity, then address). On error nothing changes.
    pub fn plug(&mut self, req: &MemoryDeviceRequest) -> Result<Placement, LayoutError> {
        let placement = self.check(req)?;
        self.devices.push(PlacedDevice {
            id: req.id.clone(),
            kind: req.kind,
            align: req.align,
            placement,
        });
        Ok(placement)
    }

    /// Plug several devices in order (start-up). Stops at the first error;
    /// devices plugged before it stay plugged.
    pub fn plug_all(
        &mut self,
        reqs: &[MemoryDeviceRequest],
    ) -> Result<Vec<Placement>, LayoutError> {
        reqs.iter().map(|r| self.plug(r)).collect()
    }

    /// Unplug a pc-dimm. NVDIMMs are refused like QEMU does.
    pub fn unplug(&mut self, id: &str) -> Result<PlacedDevice, LayoutError> {
        match self.get(id) {
            None => Err(LayoutError::UnknownId { id: id.to_owned() }),
            Some(d) if d.kind == DeviceKind::Nvdimm => {
                Err(LayoutError::NvdimmUnplug { id: id.to_owned() })
            }
            Some(_) => self.forget(id),
        }
    }

    /// Remove any device unconditionally (roll back a hotplug that failed
    /// after placement, e.g. when mapping the backend failed).
    pub fn forget(&mut self, id: &str) -> Result<PlacedDevice, LayoutError> {
        let pos = self
            .devices
            .iter()
            .position(|d| d.id == id)
            .ok_or_else(|| LayoutError::UnknownId { id: id.to_owned() })?;
        Ok(self.devices.remove(pos))
    }

    /// Compute the placement `req` would get, without plugging it.
    pub fn check(&self, req: &MemoryDeviceRequest) -> Result<Placement, LayoutError> {
        if self.get(&req.id).is_some() {
            return Err(LayoutError::DuplicateId { id: req.id.clone() });
        }
        let m = self.machine;
        let devices_after = u32::try_from(self.devices.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let slots_needed = match self.rule {
            SlotRule::Seed => devices_after.saturating_add(1),
            SlotRule::Qemu => devices_after,
        };
        let Some(window) = self.window else {
            let suggested_maxmem = m
                .ram_size
                .saturating_add(self.used())
                .saturating_add(req.size);
            let suggested_maxmem =
                align_up(suggested_maxmem, DEVICE_MEM_ALIGN).unwrap_or(suggested_maxmem);
            return Err(LayoutError::NotPrepared {
                id: req.id.clone(),
                ram: m.ram_size,
                slots: slots_needed,
                suggested_maxmem,
            });
        };
        let slot = self.pick_slot(req, slots_needed)?;
        if self.rule == SlotRule::Seed && slots_needed > m.slots {
            return Err(LayoutError::SeedSlotsTooSmall {
                id: req.id.clone(),
                slots: m.slots,
                devices: devices_after,
                needed: slots_needed,
            });
        }
        if req.size == 0 {
            return Err(LayoutError::ZeroSize { id: req.id.clone() });
        }
        let used = self.used();
        let total = m.maxmem - m.ram_size;
        if used.checked_add(req.size).is_none_or(|u| u > total) {
            return Err(LayoutError::NotEnoughSpace {
                id: req.id.clone(),
                used,
                total,
                size: req.size,
                ram: m.ram_size,
                maxmem: m.maxmem,
            });
        }
        let gpa = self.find_address(window, req)?;
        Ok(Placement {
            slot,
            gpa,
            size: req.size,
        })
    }

    fn pick_slot(&self, req: &MemoryDeviceRequest, slots_needed: u32) -> Result<u32, LayoutError> {
        let slots = self.machine.slots;
        if slots == 0 {
            return Err(LayoutError::NoSlotsAllocated {
                needed: slots_needed,
            });
        }
        let holder = |s: u32| self.devices.iter().find(|d| d.placement.slot == s);
        match req.slot {
            Some(s) if s >= slots => Err(LayoutError::InvalidSlot {
                slot: s,
                max: slots - 1,
            }),
            Some(s) => match holder(s) {
                Some(d) => Err(LayoutError::SlotBusy {
                    slot: s,
                    holder: d.id.clone(),
                }),
                None => Ok(s),
            },
            None => (0..slots)
                .find(|&s| holder(s).is_none())
                .ok_or(LayoutError::NoFreeSlots { slots }),
        }
    }

    /// QEMU `memory_device_get_free_addr`: explicit address checks, or first
    /// fit from the window base past devices sorted by address.
    fn find_address(
        &self,
        window: DeviceMemoryWindow,
        req: &MemoryDeviceRequest,
    ) -> Result<u64, LayoutError> {
        let align = req.align;
        if align == 0 || !align.is_power_of_two() {
            return Err(LayoutError::BadAlign { align });
        }
        let hint = req.addr.filter(|&a| a != 0);
        if let Some(addr) = hint
            && addr % align != 0
        {
            return Err(LayoutError::AddrUnaligned { addr, align });
        }
        if !req.size.is_multiple_of(align) {
            return Err(LayoutError::SizeUnaligned {
                id: req.id.clone(),
                size: req.size,
                align,
            });
        }
        let mut sorted: Vec<&Placement> = self.devices.iter().map(|d| &d.placement).collect();
        sorted.sort_by_key(|p| p.gpa);

        if let Some(addr) = hint {
            if !window.contains(addr, req.size) {
                return Err(LayoutError::AddrOutOfRange {
                    addr,
                    size: req.size,
                    base: window.base,
                    window_size: window.size,
                });
            }
            let end = addr + req.size; // contains() proved no overflow
            if let Some(d) = self
                .devices
                .iter()
                .find(|d| overlaps(d.placement.gpa, d.placement.size, addr, end))
            {
                return Err(LayoutError::AddrConflict {
                    other: d.id.clone(),
                });
            }
            return Ok(addr);
        }

        let too_big = || LayoutError::DeviceTooBig {
            id: req.id.clone(),
            size: req.size,
        };
        let align = align.max(self.start_align);
        let mut start = align_up(window.base, align).ok_or_else(too_big)?;
        start.checked_add(req.size).ok_or_else(too_big)?;
        let fragmented = || LayoutError::Fragmented {
            id: req.id.clone(),
            size: req.size,
            align,
        };
        for p in sorted {
            // start + size checked at every step.
            let end = start + req.size;
            if overlaps(p.gpa, p.size, start, end) {
                let next = p
                    .gpa
                    .checked_add(p.size)
                    .and_then(|e| align_up(e, align))
                    .ok_or_else(fragmented)?;
                next.checked_add(req.size).ok_or_else(fragmented)?;
                start = next;
            } else if p.gpa >= end {
                break;
            }
        }
        if window.contains(start, req.size) {
            Ok(start)
        } else {
            Err(fragmented())
        }
    }
}

/// Does `[gpa, gpa+size)` overlap `[start, end)`?
fn overlaps(gpa: u64, size: u64, start: u64, end: u64) -> bool {
    let p_end = gpa.saturating_add(size);
    gpa < end && start < p_end
}

#[cfg(test)]
mod tests;
