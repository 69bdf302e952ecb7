//! The port-I/O bus (guest IN/OUT) and the MMIO bus (guest loads and stores that reach no
//! memory slot): one [`Bus`] type for both, dispatching to devices by address range.
//!
//! Ranges live in a `BTreeMap` keyed by their base, so a lookup is one ordered search however
//! many devices there are; inserting an empty, wrapping or overlapping range is an error, and a
//! device can be removed again (hot unplug). The map sits behind a `RwLock`: vCPUs only read it,
//! and the device manager changes it while they run (a hot-plugged device appears at once).
//!
//! Why not `vm-device`'s bus: it dispatches through `BusDeviceSync` (`&self`, interior locking
//! left to each device), which would push a mutex into every device model here; our devices
//! are plain `&mut self` state machines (easy to unit test and fuzz) behind one `Mutex` each.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

/// A device on a bus. `offset` is relative to the device's base address; `data` has the access
/// width (1, 2 or 4 bytes for port I/O; 1, 2, 4 or 8 for MMIO). Devices must treat every value
/// as hostile.
pub trait BusDevice: Send {
    /// A read from the guest (IN or load): fill `data`.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// A write from the guest (OUT or store).
    fn write(&mut self, offset: u64, data: &[u8]);
}

/// A shared device handle as the buses hold it.
pub type SharedDevice = Arc<Mutex<dyn BusDevice>>;

/// Why a range could not be inserted or removed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    /// A zero-length range.
    #[error("empty range at {base:#x}")]
    Empty { base: u64 },
    /// `base + len` does not fit the address space.
    #[error("range {base:#x}+{len:#x} wraps around the address space")]
    Wraps { base: u64, len: u64 },
    /// Another device already claims part of the range.
    #[error("range {base:#x}-{end:#x} overlaps the device at {other_base:#x}-{other_end:#x}",
        end = base + len - 1, other_end = other_base + other_len - 1)]
    Overlap {
        base: u64,
        len: u64,
        other_base: u64,
        other_len: u64,
    },
    /// No device starts at that address.
    #[error("no device at {base:#x}")]
    NotFound { base: u64 },
}

struct Entry {
    len: u64,
    dev: SharedDevice,
}

/// One address space (port I/O or MMIO).
#[derive(Default)]
pub struct Bus {
    ranges: RwLock<BTreeMap<u64, Entry>>,
}

impl Bus {
    fn map(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u64, Entry>> {
        self.ranges.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `dev` at `[base, base + len)`.
    pub fn insert(&self, base: u64, len: u64, dev: SharedDevice) -> Result<(), BusError> {
        if len == 0 {
            return Err(BusError::Empty { base });
        }
        let end = base.checked_add(len).ok_or(BusError::Wraps { base, len })?;
        let mut map = self.ranges.write().unwrap_or_else(|p| p.into_inner());
        // The only candidates for overlap: the last range starting below `end`.
        if let Some((&b, e)) = map.range(..end).next_back()
            && b + e.len > base
        {
            return Err(BusError::Overlap {
                base,
                len,
                other_base: b,
                other_len: e.len,
            });
        }
        map.insert(base, Entry { len, dev });
        Ok(())
    }

    /// Removes the device whose range starts at `base` and returns it.
    pub fn remove(&self, base: u64) -> Result<SharedDevice, BusError> {
        self.ranges
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&base)
            .map(|e| e.dev)
            .ok_or(BusError::NotFound { base })
    }

    /// The device claiming `addr` and the offset into its range.
    fn find(&self, addr: u64) -> Option<(SharedDevice, u64)> {
        let map = self.map();
        let (&b, e) = map.range(..=addr).next_back()?;
        (addr - b < e.len).then(|| (e.dev.clone(), addr - b))
    }

    /// Dispatches a read. Unclaimed addresses read as all ones, like an empty ISA bus.
    pub fn read(&self, addr: u64, data: &mut [u8]) {
        match self.find(addr) {
            Some((d, off)) => d.lock().unwrap_or_else(|p| p.into_inner()).read(off, data),
            None => data.fill(0xff),
        }
    }

    /// Dispatches a write. Unclaimed addresses ignore it.
    pub fn write(&self, addr: u64, data: &[u8]) {
        if let Some((d, off)) = self.find(addr) {
            d.lock().unwrap_or_else(|p| p.into_inner()).write(off, data);
        }
    }
}

/// Both buses, shared by the vCPU threads and the device manager.
#[derive(Default)]
pub struct Buses {
    pub pio: Bus,
    pub mmio: Bus,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct Echo(Vec<(u64, Vec<u8>)>);
    impl BusDevice for Echo {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.0.push((offset, data.to_vec()));
        }
    }

    fn echo() -> Arc<Mutex<Echo>> {
        Arc::new(Mutex::new(Echo(Vec::new())))
    }

    #[test]
    fn dispatch_overlap_and_port_space_end() {
        let bus = Bus::default();
        let dev = echo();
        bus.insert(0x3f8, 8, dev.clone()).unwrap();
        assert!(matches!(
            bus.insert(0x3fc, 8, dev.clone()),
            Err(BusError::Overlap {
                other_base: 0x3f8,
                ..
            })
        ));
        assert!(bus.insert(0x3f0, 9, dev.clone()).is_err());
        bus.insert(0x3f0, 8, dev.clone()).unwrap();
        let mut b = [0u8; 1];
        bus.read(0x3fa, &mut b);
        assert_eq!(b, [2]);
        bus.read(0x500, &mut b);
        assert_eq!(b, [0xff]);
        bus.write(0x3f8, &[7, 8]);
        assert_eq!(dev.lock().unwrap().0, vec![(0, vec![7, 8])]);
        bus.insert(0xfffc, 4, dev).unwrap(); // the last ports are addressable
        bus.read(0xffff, &mut b);
        assert_eq!(b, [3]);
    }

    #[test]
    fn mmio_wrap_empty_remove() {
        let bus = Bus::default();
        let dev = echo();
        bus.insert(0xe000_0000, 0x1000, dev.clone()).unwrap();
        assert!(bus.insert(0xe000_0fff, 0x1000, dev.clone()).is_err());
        assert_eq!(
            bus.insert(u64::MAX - 10, 0x100, dev.clone()),
            Err(BusError::Wraps {
                base: u64::MAX - 10,
                len: 0x100
            })
        );
        assert_eq!(
            bus.insert(0x1000, 0, dev.clone()),
            Err(BusError::Empty { base: 0x1000 })
        );
        bus.insert(0xe000_1000, 0x1000, dev.clone()).unwrap();
        let mut b = [0u8; 4];
        bus.read(0xe000_1070, &mut b);
        assert_eq!(b, [0x70; 4]);
        bus.read(0xe000_2000, &mut b);
        assert_eq!(b, [0xff; 4]);
        bus.write(0xdfff_ffff, &[1]);
        assert!(dev.lock().unwrap().0.is_empty());
        // Remove: the range reads as unclaimed and can be taken again.
        bus.remove(0xe000_1000).unwrap();
        assert_eq!(
            bus.remove(0xe000_1000).err(),
            Some(BusError::NotFound { base: 0xe000_1000 })
        );
        bus.read(0xe000_1070, &mut b);
        assert_eq!(b, [0xff; 4]);
        bus.insert(0xe000_1000, 0x800, dev).unwrap();
    }

    proptest! {
        /// Whatever ranges are inserted, the bus never holds two that overlap, and every
        /// address is dispatched to the one range that contains it (checked against a model).
        #[test]
        fn inserts_never_overlap_and_lookups_match_a_model(
            ops in proptest::collection::vec((0u64..0x200, 0u64..0x40), 1..40),
            probes in proptest::collection::vec(0u64..0x260, 1..40),
        ) {
            let bus = Bus::default();
            let mut model: Vec<(u64, u64)> = Vec::new();
            for (base, len) in ops {
                let overlaps = model.iter().any(|&(b, l)| base < b + l && b < base + len);
                let ok = bus.insert(base, len, echo()).is_ok();
                prop_assert_eq!(ok, len > 0 && !overlaps);
                if ok {
                    model.push((base, len));
                }
            }
            for a in probes {
                let mut b = [0u8; 1];
                bus.read(a, &mut b);
                match model.iter().find(|&&(base, l)| a >= base && a < base + l) {
                    Some(&(base, _)) => prop_assert_eq!(b[0], (a - base) as u8),
                    None => prop_assert_eq!(b[0], 0xff),
                }
            }
        }
    }
}
