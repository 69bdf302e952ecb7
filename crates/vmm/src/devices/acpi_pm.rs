//! Hardware-reduced ACPI power management: the FADT sleep-control and reset registers (poweroff
//! and reboot), the power button, and a Generic Event Device (ACPI0013) whose event register
//! tells the guest's `_EVT` what happened (power button, NVDIMM hotplug, memory hotplug).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use acpi_tables::{Aml, AmlSink, aml};

use crate::arch::x86_64::layout::{irqs, ports};
use crate::bus::BusDevice;
use crate::devices::{EventSink, IrqLine, VmEvent};

/// `_S5_` sleep type; the guest writes `(S5_TYPE << 2) | SLP_EN` to the sleep-control register.
pub const S5_TYPE: u8 = 5;
const SLP_EN: u8 = 1 << 5;
/// Value written to the reset register.
pub const RESET_VALUE: u8 = 1;

/// GED event bits.
pub const GED_POWER_BUTTON: u32 = 1 << 0;
pub const GED_NVDIMM_HOTPLUG: u32 = 1 << 1;
pub const GED_MEMORY_HOTPLUG: u32 = 1 << 2;

/// Raises GED events from any thread.
#[derive(Clone)]
pub struct GedNotifier {
    pending: Arc<AtomicU32>,
    irq: Arc<IrqLine>,
}

impl GedNotifier {
    /// Sets `bits` in the event register and interrupts the guest.
    pub fn notify(&self, bits: u32) -> std::io::Result<()> {
        self.pending.fetch_or(bits, Ordering::SeqCst);
        self.irq.0.write(1)
    }
}

/// Sleep control (0x600), sleep status (0x601), reset (0x602).
pub struct AcpiPm {
    sink: EventSink,
}

impl AcpiPm {
    /// Power management registers reporting to `sink`.
    pub fn new(sink: EventSink) -> Self {
        AcpiPm { sink }
    }
}

impl BusDevice for AcpiPm {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let Some(&v) = data.first() else { return };
        match offset {
            0 if v & SLP_EN != 0 && (v >> 2) & 7 == S5_TYPE => self.sink.send(VmEvent::Poweroff),
            2 if v == RESET_VALUE => self.sink.send(VmEvent::Reset),
            _ => {}
        }
    }
}

/// The GED event register (0x610, 32 bits, read-and-clear).
pub struct Ged {
    pending: Arc<AtomicU32>,
}

impl Ged {
    /// The device and a notifier that raises its events on `irq`.
    pub fn new(irq: IrqLine) -> (Self, GedNotifier) {
        let pending = Arc::new(AtomicU32::new(0));
        (
            Ged {
                pending: pending.clone(),
            },
            GedNotifier {
                pending,
                irq: Arc::new(irq),
            },
        )
    }
}

impl BusDevice for Ged {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if offset == 0 && data.len() == 4 {
            let v = self.pending.swap(0, Ordering::SeqCst);
            data.copy_from_slice(&v.to_le_bytes());
        }
    }

    fn write(&mut self, _offset: u64, _data: &[u8]) {}
}

/// DSDT fragment: `_S5_`, the power button and the GED with its `_EVT`.
pub struct AcpiPmAml {
    /// Whether `\_SB.NVDR` exists (NVDIMM hotplug events are then routed to it).
    pub nvdimm: bool,
    /// Whether the memory-hotplug scan method `\_SB.MHPC.MSCN` exists.
    pub memory_hotplug: bool,
}

/// Pre-built AML bytes.
struct RawAml(Vec<u8>);

impl Aml for RawAml {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        sink.vec(&self.0);
    }
}

/// `If ((Local0 & bit) == bit) { <action> }`, emitted at once so no temporary outlives it.
fn evt_case(out: &mut Vec<u8>, bit: u32, action: &dyn Aml) {
    aml::If::new(
        &aml::Equal::new(&aml::And::new(&aml::Local(1), &aml::Local(0), &bit), &bit),
        vec![action],
    )
    .to_aml_bytes(out);
}

impl AcpiPmAml {
    /// `_EVT` body: read (and so clear) the event register, then notify per bit.
    fn evt_body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        aml::Store::new(&aml::Local(0), &aml::Path::new("GDAT")).to_aml_bytes(&mut out);
        evt_case(
            &mut out,
            GED_POWER_BUTTON,
            &aml::Notify::new(&aml::Path::new("\\_SB_.PWRB"), &0x80u8),
        );
        if self.nvdimm {
            evt_case(
                &mut out,
                GED_NVDIMM_HOTPLUG,
                &aml::Notify::new(&aml::Path::new("\\_SB_.NVDR"), &0x80u8),
            );
        }
        if self.memory_hotplug {
            evt_case(
                &mut out,
                GED_MEMORY_HOTPLUG,
                &aml::MethodCall::new("\\_SB_.MHPC.MSCN".into(), vec![]),
            );
        }
        out
    }
}

impl Aml for AcpiPmAml {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        aml::Name::new(
            "_S5_".into(),
            &aml::Package::new(vec![&S5_TYPE, &aml::ZERO, &aml::ZERO, &aml::ZERO]),
        )
        .to_aml_bytes(sink);
        aml::Device::new(
            "_SB_.PWRB".into(),
            vec![
                &aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0C0C")),
                &aml::Name::new("_UID".into(), &aml::ZERO),
            ],
        )
        .to_aml_bytes(sink);

        let evt_body = RawAml(self.evt_body());
        aml::Device::new(
            "_SB_.GED_".into(),
            vec![
                &aml::Name::new("_HID".into(), &"ACPI0013"),
                &aml::Name::new("_UID".into(), &aml::ZERO),
                &aml::Name::new(
                    "_CRS".into(),
                    &aml::ResourceTemplate::new(vec![&aml::Interrupt::new(
                        true,
                        true,
                        false,
                        false,
                        irqs::GED,
                    )]),
                ),
                &aml::OpRegion::new(
                    "GDST".into(),
                    aml::OpRegionSpace::SystemIO,
                    &(ports::GED_EVENT as usize),
                    &4usize,
                ),
                &aml::Field::new(
                    "GDST".into(),
                    aml::FieldAccessType::DWord,
                    aml::FieldLockRule::NoLock,
                    aml::FieldUpdateRule::Preserve,
                    vec![aml::FieldEntry::Named(*b"GDAT", 32)],
                ),
                &aml::Method::new("_EVT".into(), 1, true, vec![&evt_body]),
            ],
        )
        .to_aml_bytes(sink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn s5_and_reset_writes_become_events() {
        let (tx, rx) = channel();
        let mut pm = AcpiPm::new(EventSink(tx));
        pm.write(0, &[(S5_TYPE << 2) | SLP_EN]);
        pm.write(0, &[S5_TYPE << 2]); // SLP_EN missing: nothing
        pm.write(0, &[(3 << 2) | SLP_EN]); // S3: not supported, nothing
        pm.write(2, &[RESET_VALUE]);
        pm.write(2, &[]);
        assert_eq!(
            rx.try_iter().collect::<Vec<_>>(),
            vec![VmEvent::Poweroff, VmEvent::Reset]
        );
    }
}
