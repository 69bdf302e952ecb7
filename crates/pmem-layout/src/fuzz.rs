//! Fuzz entry point: arbitrary bytes -> machine + device operations, run
//! through the real plug/split/sizing code, with invariants asserted.
//! An assertion failure here is a bug in this crate, never bad input.

use crate::cli_args::{NvdimmArgsSpec, nvdimm_cli_args};
use crate::placement::{DeviceKind, DeviceMemory, MemoryDeviceRequest, SlotRule};
use crate::ram::MachineMemory;
use crate::size::{Suffix, format_size_arg, parse_size};
use crate::sizing::guest_nvdimm_size;
use crate::split::nvdimm_split;
use crate::{GIB, KIB, MIB, OVIRT_LABEL_SIZE, X86_MEMORY_BLOCK};

/// Byte cursor that yields zeros once the input is exhausted.
struct Cursor<'a> {
    data: &'a [u8],
}

impl Cursor<'_> {
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0u64, |acc, _| (acc << 8) | u64::from(self.u8()))
    }

    /// A size biased towards interesting magnitudes.
    fn size(&mut self) -> u64 {
        match self.u8() % 6 {
            0 => self.u64(),
            1 => u64::from(self.u8()) * GIB,
            2 => u64::from(self.u8() as u16 * 256 + self.u8() as u16) * MIB,
            3 => u64::from(self.u8()) * 128 * MIB + u64::from(self.u8()) * 2 * MIB,
            4 => u64::from(self.u8()) * 4 * KIB,
            _ => self.u64() >> (self.u8() % 64),
        }
    }

    fn align(&mut self) -> u64 {
        match self.u8() % 8 {
            0 => self.u64(),
            1 => 2 * MIB,
            2 => GIB,
            _ => 1u64 << (12 + self.u8() % 22),
        }
    }
}

/// Run one fuzz case. Never panics unless an invariant of this crate breaks.
pub fn fuzz_layout_plan(data: &[u8]) {
    fuzz_sizes(data);
    let mut c = Cursor { data };
    let ram = c.size();
    let slots = u64::from(c.u8()) + u64::from(c.u8() % 4);
    let maxmem = ram.saturating_add(c.size());
    let rule = if c.u8().is_multiple_of(2) {
        SlotRule::Seed
    } else {
        SlotRule::Qemu
    };
    let Ok(m) = MachineMemory::from_options(ram, Some(slots).filter(|&s| s > 0), Some(maxmem))
    else {
        return;
    };
    let Ok(dm) = DeviceMemory::from_machine(m) else {
        panic!("validated machine rejected: {m:?}");
    };
    let mut first = dm.with_slot_rule(rule);
    let mut second = first.clone();

    let nops = usize::from(c.u8() % 24);
    for i in 0..nops {
        let op = c.u8();
        if op % 8 == 7 {
            let victim = format!("d{}", c.u8() % 24);
            let r1 = first.unplug(&victim).map(|d| d.placement);
            let r2 = second.unplug(&victim).map(|d| d.placement);
            assert_eq!(r1, r2, "unplug must be deterministic");
            continue;
        }
        let backend = c.size();
        let label = match c.u8() % 4 {
            0 => 0,
            1 => OVIRT_LABEL_SIZE,
            2 => 2 * MIB,
            _ => c.u64() >> (c.u8() % 64),
        };
        let align = c.align();
        let (size, kind) = match nvdimm_split(backend, label, align) {
            Ok(s) => {
                check_split(backend, label, align, s.pmem_size, s.label_offset, s.gap);
                (s.pmem_size, DeviceKind::Nvdimm)
            }
            Err(_) => (backend, DeviceKind::PcDimm),
        };
        let flags = c.u8();
        let slot = (flags & 1 != 0).then(|| u32::from(c.u8()));
        let addr = match flags >> 1 & 3 {
            0 => None,
            1 => Some(c.u64()),
            _ => first
                .window()
                .map(|w| w.base.wrapping_add(u64::from(c.u8()).wrapping_mul(align))),
        };
        let req = MemoryDeviceRequest {
            id: format!("d{}", i % 24),
            kind,
            size,
            align,
            slot,
            addr,
        };
        let before = first.clone();
        let r1 = first.plug(&req);
        let r2 = second.plug(&req);
        assert_eq!(r1, r2, "plug must be a pure function of the operation list");
        match r1 {
            Ok(p) => {
                assert_eq!(p.size, size);
                assert_eq!(p.gpa % align, 0, "gpa aligned");
                if let Some(a) = addr.filter(|&a| a != 0) {
                    assert_eq!(p.gpa, a, "explicit addr honoured");
                }
                if let Some(s) = slot {
                    assert_eq!(p.slot, s, "explicit slot honoured");
                }
            }
            Err(_) => assert_eq!(first, before, "a failed plug must not change state"),
        }
        check_state(&first);
    }
}

fn check_split(backend: u64, label: u64, align: u64, pmem: u64, label_offset: u64, gap: u64) {
    assert!(pmem > 0 && pmem.is_multiple_of(align));
    assert_eq!(label_offset, backend - label);
    assert_eq!(pmem + gap, label_offset);
    assert!(gap < align);
}

fn check_state(dm: &DeviceMemory) {
    let m = dm.machine();
    let Some(w) = dm.window() else {
        assert_eq!(dm.iter().count(), 0, "devices without a window");
        return;
    };
    let mut placed: Vec<_> = dm.iter().map(|d| (d.placement, d.align)).collect();
    let total: u64 = placed.iter().map(|(p, _)| p.size).sum();
    assert!(total <= m.maxmem - m.ram_size, "capacity respected");
    for (p, align) in &placed {
        assert!(w.contains(p.gpa, p.size), "inside window: {p:?} {w:?}");
        assert!(p.slot < m.slots, "slot in range");
        assert_eq!(p.gpa % align, 0);
    }
    placed.sort_by_key(|(p, _)| p.gpa);
    for pair in placed.windows(2) {
        assert!(
            pair[0].0.gpa + pair[0].0.size <= pair[1].0.gpa,
            "no overlap: {pair:?}"
        );
    }
    let mut slots: Vec<u32> = placed.iter().map(|(p, _)| p.slot).collect();
    slots.sort_unstable();
    slots.dedup();
    assert_eq!(slots.len(), placed.len(), "slots unique");
}

/// Size strings, oVirt sizing and argument generation on the same bytes.
fn fuzz_sizes(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for suffix in [Suffix::B, Suffix::M] {
        if let Ok(v) = parse_size(&text, suffix) {
            assert_eq!(
                parse_size(&format_size_arg(v), suffix),
                Ok(v),
                "round trip of {text:?}"
            );
        }
    }
    let mut c = Cursor { data };
    let dev = c.size();
    let align = if c.u8().is_multiple_of(3) {
        None
    } else {
        Some(c.align())
    };
    if let Ok(g) = guest_nvdimm_size(dev, align) {
        assert!(g.backend_size <= dev);
        assert!(g.pmem_size > 0 && g.pmem_size % X86_MEMORY_BLOCK == 0);
        assert_eq!(g.pmem_size + g.gap + g.label_size, g.backend_size);
        let split = nvdimm_split(g.backend_size, OVIRT_LABEL_SIZE, g.align);
        assert_eq!(split.map(|s| s.pmem_size), Ok(g.pmem_size));
        let id = String::from_utf8_lossy(&data[..data.len().min(8)]).into_owned();
        let _ = nvdimm_cli_args(&NvdimmArgsSpec::new(&id, &text), &g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_inputs_do_not_panic() {
        fuzz_layout_plan(&[]);
        fuzz_layout_plan(&[0xFF; 512]);
        fuzz_layout_plan(&[0; 512]);
        fuzz_layout_plan(b"4G");
        fuzz_layout_plan(b"1.5G");
        for len in 0..64 {
            let v: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            fuzz_layout_plan(&v);
        }
    }
}
