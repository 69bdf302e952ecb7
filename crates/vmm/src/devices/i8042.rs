//! The i8042 keyboard controller, only as far as its CPU-reset command (0xFE on port 0x64),
//! which Linux uses as a reboot fallback. No keyboard: the controller is not in the DSDT.

use crate::bus::BusDevice;
use crate::devices::{EventSink, VmEvent};

/// Reset-only i8042 at ports 0x60-0x64 (base 0x60, length 5).
pub struct I8042 {
    inner: vm_superio::I8042Device<ResetTrigger>,
}

/// Forwards the controller's reset to the VM.
pub struct ResetTrigger(EventSink);

impl vm_superio::Trigger for ResetTrigger {
    type E = ();
    fn trigger(&self) -> Result<(), ()> {
        self.0.send(VmEvent::Reset);
        Ok(())
    }
}

impl I8042 {
    /// A controller that reports resets to `sink`.
    pub fn new(sink: EventSink) -> Self {
        I8042 {
            inner: vm_superio::I8042Device::new(ResetTrigger(sink)),
        }
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if let Some(b) = data.first_mut() {
            *b = self.inner.read(offset as u8);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let Some(b) = data.first() {
            let _ = self.inner.write(offset as u8, *b);
        }
    }
}
