//! The PC reset control register at port 0xcf9 (PIIX/ICH "RST_CNT"): a write with bit 2
//! (RST_CPU) set resets the machine. SeaBIOS falls back to it when it cannot reboot through
//! ACPI (its `find_fadt` follows only the RSDT, which the table loader's set does not have),
//! and Linux uses it with `reboot=pci`. Reads return the last value written, bit 2 clear.

use crate::bus::BusDevice;
use crate::devices::{EventSink, VmEvent};

/// The port.
pub const RESET_CONTROL_PORT: u16 = 0xcf9;
const RST_CPU: u8 = 1 << 2;

/// The register.
pub struct ResetControl {
    sink: EventSink,
    value: u8,
}

impl ResetControl {
    pub fn new(sink: EventSink) -> ResetControl {
        ResetControl { sink, value: 0 }
    }
}

impl BusDevice for ResetControl {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
        if let Some(b) = data.first_mut() {
            *b = self.value;
        }
    }

    fn write(&mut self, _offset: u64, data: &[u8]) {
        let Some(&v) = data.first() else { return };
        self.value = v & !RST_CPU;
        if v & RST_CPU != 0 {
            self.sink.send(VmEvent::Reset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rst_cpu_resets() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut d = ResetControl::new(EventSink(tx));
        d.write(0, &[2]);
        assert!(rx.try_recv().is_err());
        let mut b = [0u8];
        d.read(0, &mut b);
        assert_eq!(b[0], 2);
        d.write(0, &[6]);
        assert_eq!(rx.try_recv().unwrap(), VmEvent::Reset);
    }
}
