//! COM1: a 16550A UART (vm-superio) at 0x3f8, IRQ 4, output to stdout or a file, input from
//! the terminal.

use std::io::Write;

use acpi_tables::{Aml, AmlSink, aml};

use crate::arch::x86_64::layout::{irqs, ports};
use crate::bus::BusDevice;
use crate::devices::IrqLine;

/// The UART.
pub struct Serial {
    uart: vm_superio::Serial<IrqLine, vm_superio::serial::NoEvents, Box<dyn Write + Send>>,
}

impl Serial {
    /// A UART raising `irq` and writing to `out`.
    pub fn new(irq: IrqLine, out: Box<dyn Write + Send>) -> Self {
        Serial {
            uart: vm_superio::Serial::new(irq, out),
        }
    }

    /// Feeds input bytes; returns how many fit in the receive FIFO.
    pub fn enqueue(&mut self, bytes: &[u8]) -> usize {
        let room = self.uart.fifo_capacity();
        let n = bytes.len().min(room);
        if n == 0 {
            return 0;
        }
        self.uart.enqueue_raw_bytes(&bytes[..n]).unwrap_or(0)
    }
}

impl BusDevice for Serial {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if let (Some(b), Ok(off)) = (data.first_mut(), u8::try_from(offset)) {
            *b = self.uart.read(off);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let (Some(b), Ok(off)) = (data.first(), u8::try_from(offset)) {
            // An output error (closed stdout) must not stop the guest.
            let _ = self.uart.write(off, *b);
        }
    }
}

/// The DSDT fragment: `\_SB.COM1`, PNP0501, its ports and interrupt.
pub struct SerialAml;

impl Aml for SerialAml {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        aml::Device::new(
            "_SB_.COM1".into(),
            vec![
                &aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0501")),
                &aml::Name::new("_UID".into(), &aml::ZERO),
                &aml::Name::new(
                    "_CRS".into(),
                    &aml::ResourceTemplate::new(vec![
                        &aml::IO::new(ports::COM1, ports::COM1, 1, 8),
                        &aml::Interrupt::new(true, true, false, false, irqs::COM1),
                    ]),
                ),
            ],
        )
        .to_aml_bytes(sink);
    }
}
