//! The port-I/O bus: guest IN/OUT instructions dispatched to devices by address range.

use std::sync::{Arc, Mutex};

/// A device on the port-I/O bus. `offset` is relative to the device's base port; `data` has the
/// access width (1, 2 or 4 bytes). Devices must treat every value as hostile.
pub trait PioDevice: Send {
    /// An IN from the guest: fill `data`.
    fn read(&mut self, offset: u16, data: &mut [u8]);
    /// An OUT from the guest.
    fn write(&mut self, offset: u16, data: &[u8]);
}

struct Range {
    base: u16,
    len: u16,
    dev: Arc<Mutex<dyn PioDevice>>,
}

/// Port ranges do not overlap; lookups are a linear scan over a handful of devices.
#[derive(Default)]
pub struct PioBus {
    ranges: Vec<Range>,
}

impl PioBus {
    /// Adds a device at `[base, base+len)`. Returns false if the range overlaps another device.
    pub fn insert(&mut self, base: u16, len: u16, dev: Arc<Mutex<dyn PioDevice>>) -> bool {
        let end = u32::from(base) + u32::from(len);
        let overlaps = self.ranges.iter().any(|r| {
            let r_end = u32::from(r.base) + u32::from(r.len);
            u32::from(base) < r_end && u32::from(r.base) < end
        });
        if overlaps || len == 0 {
            return false;
        }
        self.ranges.push(Range { base, len, dev });
        true
    }

    fn find(&self, port: u16) -> Option<(&Range, u16)> {
        self.ranges
            .iter()
            .find(|r| port >= r.base && u32::from(port) < u32::from(r.base) + u32::from(r.len))
            .map(|r| (r, port - r.base))
    }

    /// Dispatches an IN. Unclaimed ports read as all ones, like an empty ISA bus.
    pub fn read(&self, port: u16, data: &mut [u8]) {
        match self.find(port) {
            Some((r, off)) => match r.dev.lock() {
                Ok(mut d) => d.read(off, data),
                Err(_) => data.fill(0xff),
            },
            None => data.fill(0xff),
        }
    }

    /// Dispatches an OUT. Unclaimed ports ignore writes.
    pub fn write(&self, port: u16, data: &[u8]) {
        if let Some((r, off)) = self.find(port)
            && let Ok(mut d) = r.dev.lock()
        {
            d.write(off, data);
        }
    }
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
}
