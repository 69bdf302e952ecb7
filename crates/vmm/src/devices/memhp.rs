//! RAM DIMMs (`-device pc-dimm`) through ACPI memory hotplug: one `PNP0C80` memory device per
//! slot whose `_STA`/`_CRS` come from a small register block at I/O 0x0a00, and a scan method the
//! GED calls when a DIMM is hot-added (the guest then adds the memory and can online it).
//!
//! Registers (32-bit): write 0x00 = slot selector; read 0x00/0x04 = base low/high,
//! 0x08/0x0c = length low/high, 0x10 = proximity domain, 0x14 = status (bit 0 present, bit 1
//! insert pending); write 0x14 with bit 1 = acknowledge the insert.

use acpi_tables::{Aml, AmlSink, aml};

use crate::arch::x86_64::layout::ports;
use crate::bus::BusDevice;

const STATUS_PRESENT: u32 = 1;
const STATUS_INSERTING: u32 = 2;

#[derive(Clone, Copy, Default)]
struct Slot {
    base: u64,
    len: u64,
    node: u32,
    status: u32,
}

/// The memory-hotplug register block.
pub struct MemoryHotplug {
    slots: Vec<Slot>,
    selected: usize,
}

impl MemoryHotplug {
    /// A controller with `slots` empty slots.
    pub fn new(slots: u32) -> Self {
        MemoryHotplug {
            slots: vec![Slot::default(); slots as usize],
            selected: 0,
        }
    }

    /// Marks `slot` as holding a DIMM at `base`; `hot` raises an insert event for the scan.
    pub fn plug(&mut self, slot: u32, base: u64, len: u64, node: u32, hot: bool) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            let status = STATUS_PRESENT | if hot { STATUS_INSERTING } else { 0 };
            *s = Slot {
                base,
                len,
                node,
                status,
            };
        }
    }

    fn reg(&self, offset: u64) -> u32 {
        let Some(s) = self.slots.get(self.selected) else {
            return 0;
        };
        match offset {
            0x00 => s.base as u32,
            0x04 => (s.base >> 32) as u32,
            0x08 => s.len as u32,
            0x0c => (s.len >> 32) as u32,
            0x10 => s.node,
            0x14 => s.status,
            _ => 0,
        }
    }
}

impl BusDevice for MemoryHotplug {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let v = self.reg(offset & !3).to_le_bytes();
        let shift = (offset & 3) as usize;
        for (i, b) in data.iter_mut().enumerate() {
            *b = v.get(shift + i).copied().unwrap_or(0);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if data.len() != 4 {
            return;
        }
        let v = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
        match offset {
            0x00 => self.selected = v as usize, // out of range selects nothing
            0x14 if v & STATUS_INSERTING != 0 => {
                if let Some(s) = self.slots.get_mut(self.selected) {
                    s.status &= !STATUS_INSERTING;
                }
            }
            _ => {}
        }
    }
}

/// Pre-built AML bytes.
struct Raw(Vec<u8>);

impl Aml for Raw {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        sink.vec(&self.0);
    }
}

fn slot_name(slot: u32) -> String {
    format!("MP{slot:02X}")
}

/// The DSDT fragment: `\_SB.MHPC` with its registers, methods and one memory device per slot.
pub struct MemoryHotplugAml {
    pub slots: u32,
}

impl MemoryHotplugAml {
    fn methods(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let acquire = aml::Acquire::new("MLCK".into(), 0xffff);
        let release = aml::Release::new("MLCK".into());
        // MSTA(slot): 0xF when a DIMM is present, else 0.
        aml::Method::new(
            "MSTA".into(),
            1,
            true,
            vec![
                &acquire,
                &aml::Store::new(&aml::Path::new("MSEL"), &aml::Arg(0)),
                &aml::Store::new(&aml::Local(0), &aml::ZERO),
                &aml::If::new(
                    &aml::Equal::new(
                        &aml::And::new(&aml::Local(1), &aml::Path::new("MSTS"), &STATUS_PRESENT),
                        &STATUS_PRESENT,
                    ),
                    vec![&aml::Store::new(&aml::Local(0), &0xfu8)],
                ),
                &release,
                &aml::Return::new(&aml::Local(0)),
            ],
        )
        .to_aml_bytes(&mut out);
        // MCRS(slot): a QWordMemory resource with the DIMM's range. Each statement is emitted
        // on its own so no AML temporary outlives its expression.
        let mut crs = Vec::new();
        acquire.to_aml_bytes(&mut crs);
        aml::Store::new(&aml::Path::new("MSEL"), &aml::Arg(0)).to_aml_bytes(&mut crs);
        aml::Name::new(
            "MR64".into(),
            &aml::ResourceTemplate::new(vec![&aml::AddressSpace::new_memory(
                aml::AddressSpaceCacheable::Cacheable,
                true,
                0u64,
                0xfffe_u64,
                None,
            )]),
        )
        .to_aml_bytes(&mut crs);
        for (name, offset) in [("MINL", 14u8), ("MAXL", 22), ("LENL", 38)] {
            aml::CreateQWordField::new(&aml::Path::new(name), &aml::Path::new("MR64"), &offset)
                .to_aml_bytes(&mut crs);
        }
        for (local, scratch, hi, lo) in [(0u8, 2u8, "MHBH", "MHBL"), (1, 3, "MHLH", "MHLL")] {
            aml::Or::new(
                &aml::Local(local),
                &aml::ShiftLeft::new(&aml::Local(scratch), &aml::Path::new(hi), &32u8),
                &aml::Path::new(lo),
            )
            .to_aml_bytes(&mut crs);
        }
        aml::Store::new(&aml::Path::new("MINL"), &aml::Local(0)).to_aml_bytes(&mut crs);
        aml::Store::new(&aml::Path::new("LENL"), &aml::Local(1)).to_aml_bytes(&mut crs);
        aml::Subtract::new(
            &aml::Path::new("MAXL"),
            &aml::Add::new(&aml::Local(4), &aml::Local(0), &aml::Local(1)),
            &aml::ONE,
        )
        .to_aml_bytes(&mut crs);
        release.to_aml_bytes(&mut crs);
        aml::Return::new(&aml::Path::new("MR64")).to_aml_bytes(&mut crs);
        aml::Method::new("MCRS".into(), 1, true, vec![&Raw(crs)]).to_aml_bytes(&mut out);
        // MSCN: notify every slot with a pending insert, then acknowledge it.
        let mut scan = Vec::new();
        acquire.to_aml_bytes(&mut scan);
        for slot in 0..self.slots {
            let name = slot_name(slot);
            aml::Store::new(&aml::Path::new("MSEL"), &slot).to_aml_bytes(&mut scan);
            aml::If::new(
                &aml::Equal::new(
                    &aml::And::new(&aml::Local(0), &aml::Path::new("MSTS"), &STATUS_INSERTING),
                    &STATUS_INSERTING,
                ),
                vec![
                    &aml::Notify::new(&aml::Path::new(&name), &1u8),
                    &aml::Store::new(&aml::Path::new("MSTS"), &STATUS_INSERTING),
                ],
            )
            .to_aml_bytes(&mut scan);
        }
        release.to_aml_bytes(&mut scan);
        aml::Method::new("MSCN".into(), 0, true, vec![&Raw(scan)]).to_aml_bytes(&mut out);
        out
    }

    fn slot_devices(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for slot in 0..self.slots {
            let name = slot_name(slot);
            let sta = aml::MethodCall::new("MSTA".into(), vec![&slot]);
            let crs = aml::MethodCall::new("MCRS".into(), vec![&slot]);
            aml::Device::new(
                name.as_str().into(),
                vec![
                    &aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0C80")),
                    &aml::Name::new("_UID".into(), &slot),
                    &aml::Method::new("_STA".into(), 0, false, vec![&aml::Return::new(&sta)]),
                    &aml::Method::new("_CRS".into(), 0, true, vec![&aml::Return::new(&crs)]),
                ],
            )
            .to_aml_bytes(&mut out);
        }
        out
    }
}

impl Aml for MemoryHotplugAml {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        let methods = Raw(self.methods());
        let devices = Raw(self.slot_devices());
        aml::Device::new(
            "_SB_.MHPC".into(),
            vec![
                &aml::Name::new("_HID".into(), &"PNP0A06"),
                &aml::Name::new("_UID".into(), &"Memory hotplug controller"),
                &aml::OpRegion::new(
                    "MHPR".into(),
                    aml::OpRegionSpace::SystemIO,
                    &(ports::MEMHP_BASE as usize),
                    &(ports::MEMHP_LEN as usize),
                ),
                &aml::Field::new(
                    "MHPR".into(),
                    aml::FieldAccessType::DWord,
                    aml::FieldLockRule::NoLock,
                    aml::FieldUpdateRule::Preserve,
                    vec![
                        aml::FieldEntry::Named(*b"MHBL", 32),
                        aml::FieldEntry::Named(*b"MHBH", 32),
                        aml::FieldEntry::Named(*b"MHLL", 32),
                        aml::FieldEntry::Named(*b"MHLH", 32),
                        aml::FieldEntry::Named(*b"MHPX", 32),
                        aml::FieldEntry::Named(*b"MSTS", 32),
                    ],
                ),
                &aml::Field::new(
                    "MHPR".into(),
                    aml::FieldAccessType::DWord,
                    aml::FieldLockRule::NoLock,
                    aml::FieldUpdateRule::Preserve,
                    vec![aml::FieldEntry::Named(*b"MSEL", 32)],
                ),
                &aml::Mutex::new("MLCK".into(), 0),
                &methods,
                &devices,
            ],
        )
        .to_aml_bytes(sink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read32(d: &mut MemoryHotplug, off: u64) -> u32 {
        let mut b = [0u8; 4];
        d.read(off, &mut b);
        u32::from_le_bytes(b)
    }

    #[test]
    fn registers_and_insert_acknowledge() {
        let mut d = MemoryHotplug::new(4);
        d.plug(2, 0x1_4000_0000, 0x800_0000, 1, true);
        d.write(0, &2u32.to_le_bytes());
        assert_eq!(read32(&mut d, 0), 0x4000_0000);
        assert_eq!(read32(&mut d, 4), 1);
        assert_eq!(read32(&mut d, 8), 0x800_0000);
        assert_eq!(read32(&mut d, 0x10), 1);
        assert_eq!(read32(&mut d, 0x14), STATUS_PRESENT | STATUS_INSERTING);
        d.write(0x14, &STATUS_INSERTING.to_le_bytes());
        assert_eq!(read32(&mut d, 0x14), STATUS_PRESENT);
        // Hostile selectors and widths change nothing and read as zero.
        d.write(0, &u32::MAX.to_le_bytes());
        assert_eq!(read32(&mut d, 0x14), 0);
        d.write(0x14, &[2]);
        let mut b = [0u8; 1];
        d.read(0x17, &mut b);
        assert_eq!(b, [0]);
    }

    #[test]
    fn aml_is_well_formed_enough_for_iasl() {
        let mut bytes = Vec::new();
        MemoryHotplugAml { slots: 3 }.to_aml_bytes(&mut bytes);
        assert_eq!(bytes[0], 0x5b); // ExtOpPrefix (DeviceOp)
        let text = String::from_utf8_lossy(&bytes);
        for name in ["MHPC", "MSTA", "MCRS", "MSCN", "MP00", "MP02", "PNP0A06"] {
            assert!(
                text.contains(name) || bytes.windows(4).any(|w| w == name.as_bytes()),
                "{name}"
            );
        }
    }
}
