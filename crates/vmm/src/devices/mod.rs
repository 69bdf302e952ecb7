//! Platform devices. Each device lives in its own file and builds its own ACPI fragment.

pub mod acpi_pm;
pub mod debugcon;
pub mod fw_cfg;
pub mod i8042;
pub mod memhp;
pub mod net;
pub mod nvdimm;
pub mod reset_cf9;
pub mod rtc;
pub mod serial;
pub mod virtio;

use std::sync::mpsc::Sender;

use vmm_sys_util::eventfd::EventFd;

/// What devices ask of the VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmEvent {
    /// The guest powered off (ACPI S5).
    Poweroff,
    /// The guest asked for a reset (ACPI reset register, i8042, triple fault).
    Reset,
    /// The user asked to quit (console escape, QMP quit).
    Quit,
    /// A vCPU hit a condition pmvm cannot handle (KVM internal error, failed entry).
    Crash,
}

/// A cloneable channel to the VM's control loop.
#[derive(Clone)]
pub struct EventSink(pub Sender<VmEvent>);

impl EventSink {
    /// Sends an event; a VM that is already gone does not care.
    pub fn send(&self, ev: VmEvent) {
        let _ = self.0.send(ev);
    }
}

/// An interrupt line: an eventfd registered with KVM as an irqfd for one GSI (edge).
pub struct IrqLine(pub EventFd);

impl vm_superio::Trigger for IrqLine {
    type E = std::io::Error;
    fn trigger(&self) -> std::io::Result<()> {
        self.0.write(1)
    }
}
