//! The port-I/O bus (guest IN/OUT) and the MMIO bus (guest loads and stores that reach no
//! memory slot), each dispatching to devices by address range.

use std::sync::{Arc, Mutex};

/// A device on the port-I/O bus. `offset` is relative to the device's base port; `data` has the
/// access width (1, 2 or 4 bytes). Devices must treat every value as hostile.
pub trait PioDevice: Send {
    /// An IN from the guest: fill `data`.
    fn read(&mut self, offset: u16, data: &mut [u8]);
    /// An OUT from the guest.
    fn write(&mut self, offset: u16, data: &[u8]);
}

/// Non-overlapping address ranges, each with its device; a handful of devices, a linear scan.
struct Ranges<D: ?Sized> {
    ranges: Vec<(u64, u64, Arc<Mutex<D>>)>,
}

impl<D: ?Sized> Default for Ranges<D> {
    fn default() -> Self {
        Ranges { ranges: Vec::new() }
    }
}

impl<D: ?Sized> Ranges<D> {
    /// Adds `[base, base+len)`; false if it is empty, wraps or overlaps another range.
    fn insert(&mut self, base: u64, len: u64, dev: Arc<Mutex<D>>) -> bool {
        let Some(end) = base.checked_add(len) else {
            return false;
        };
        if len == 0 || self.ranges.iter().any(|(b, l, _)| base < b + l && *b < end) {
            return false;
        }
        self.ranges.push((base, len, dev));
        true
    }

    /// The device claiming `addr` and the offset into its range.
    fn find(&self, addr: u64) -> Option<(&Mutex<D>, u64)> {
        self.ranges
            .iter()
            .find(|(b, l, _)| addr >= *b && addr - b < *l)
            .map(|(b, _, d)| (&**d, addr - b))
    }
}

/// The port-I/O bus.
#[derive(Default)]
pub struct PioBus {
    ranges: Ranges<dyn PioDevice>,
}

impl PioBus {
    /// Adds a device at `[base, base+len)`. Returns false if the range overlaps another device.
    pub fn insert(&mut self, base: u16, len: u16, dev: Arc<Mutex<dyn PioDevice>>) -> bool {
        self.ranges.insert(u64::from(base), u64::from(len), dev)
    }

    /// Dispatches an IN. Unclaimed ports read as all ones, like an empty ISA bus.
    pub fn read(&self, port: u16, data: &mut [u8]) {
        match self
            .ranges
            .find(u64::from(port))
            .map(|(d, off)| (d.lock(), off))
        {
            // Offsets within a u16 port range fit u16.
            Some((Ok(mut d), off)) => d.read(off as u16, data),
            _ => data.fill(0xff),
        }
    }

    /// Dispatches an OUT. Unclaimed ports ignore writes.
    pub fn write(&self, port: u16, data: &[u8]) {
        if let Some((d, off)) = self.ranges.find(u64::from(port))
            && let Ok(mut d) = d.lock()
        {
            d.write(off as u16, data);
        }
    }
}

/// A device on the MMIO bus. `offset` is relative to the device's window; `data` has the access
/// width (1, 2, 4 or 8 bytes). Devices must treat every value as hostile.
pub trait MmioDevice: Send {
    /// A load from the guest: fill `data`.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// A store from the guest.
    fn write(&mut self, offset: u64, data: &[u8]);
}

/// The MMIO bus: guest loads and stores that reach no memory slot.
#[derive(Default)]
pub struct MmioBus {
    ranges: Ranges<dyn MmioDevice>,
}

impl MmioBus {
    /// Adds a device at `[base, base+len)`. Returns false if the range overlaps another device,
    /// is empty or wraps around.
    pub fn insert(&mut self, base: u64, len: u64, dev: Arc<Mutex<dyn MmioDevice>>) -> bool {
        self.ranges.insert(base, len, dev)
    }

    /// Dispatches a load. Unclaimed addresses read as all ones.
    pub fn read(&self, addr: u64, data: &mut [u8]) {
        match self.ranges.find(addr).map(|(d, off)| (d.lock(), off)) {
            Some((Ok(mut d), off)) => d.read(off, data),
            _ => data.fill(0xff),
        }
    }

    /// Dispatches a store. Unclaimed addresses ignore it.
    pub fn write(&self, addr: u64, data: &[u8]) {
        if let Some((d, off)) = self.ranges.find(addr)
            && let Ok(mut d) = d.lock()
        {
            d.write(off, data);
        }
    }
}

/// Both buses, shared by the vCPU threads.
#[derive(Default)]
pub struct Buses {
    pub pio: PioBus,
    pub mmio: MmioBus,
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo(Vec<u8>);
    impl PioDevice for Echo {
        fn read(&mut self, offset: u16, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, _offset: u16, data: &[u8]) {
            self.0.extend_from_slice(data);
        }
    }

    #[test]
    fn dispatch_and_overlap() {
        let mut bus = PioBus::default();
        let dev = Arc::new(Mutex::new(Echo(Vec::new())));
        assert!(bus.insert(0x3f8, 8, dev.clone()));
        assert!(!bus.insert(0x3fc, 8, dev.clone()));
        assert!(!bus.insert(0x3f0, 9, dev.clone()));
        assert!(bus.insert(0x3f0, 8, dev.clone()));
        let mut b = [0u8; 1];
        bus.read(0x3fa, &mut b);
        assert_eq!(b, [2]);
        bus.read(0x500, &mut b);
        assert_eq!(b, [0xff]);
        bus.write(0x3f8, &[7, 8]);
        assert_eq!(dev.lock().unwrap().0, vec![7, 8]);
        assert!(bus.insert(0xfffc, 4, dev)); // the last ports are addressable without overflow
        bus.read(0xffff, &mut b);
        assert_eq!(b, [3]);
    }

    struct Mem(Vec<(u64, Vec<u8>)>);
    impl MmioDevice for Mem {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.0.push((offset, data.to_vec()));
        }
    }

    #[test]
    fn mmio_dispatch_overlap_and_wrap() {
        let mut bus = MmioBus::default();
        let dev = Arc::new(Mutex::new(Mem(Vec::new())));
        assert!(bus.insert(0xe000_0000, 0x1000, dev.clone()));
        assert!(!bus.insert(0xe000_0fff, 0x1000, dev.clone()));
        assert!(!bus.insert(u64::MAX - 10, 0x100, dev.clone()), "wraps");
        assert!(!bus.insert(0x1000, 0, dev.clone()), "empty");
        assert!(bus.insert(0xe000_1000, 0x1000, dev.clone()));
        let mut b = [0u8; 4];
        bus.read(0xe000_1070, &mut b);
        assert_eq!(b, [0x70; 4]);
        bus.read(0xe000_2000, &mut b);
        assert_eq!(b, [0xff; 4]);
        bus.write(0xe000_0050, &[1, 0, 0, 0]);
        bus.write(0xdfff_ffff, &[1]);
        assert_eq!(dev.lock().unwrap().0, vec![(0x50, vec![1, 0, 0, 0])]);
    }
}
