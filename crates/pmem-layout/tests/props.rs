//! Property tests for pmem-layout (proptest).

use pmem_layout::*;
use proptest::prelude::*;

const H: u64 = X86_MEMORY_BLOCK;
const L: u64 = OVIRT_LABEL_SIZE;

fn pow2(lo: u32, hi: u32) -> impl Strategy<Value = u64> {
    (lo..=hi).prop_map(|s| 1u64 << s)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn size_arg_round_trips(v in any::<u64>()) {
        let s = format_size_arg(v);
        prop_assert_eq!(parse_size(&s, Suffix::B), Ok(v));
        prop_assert_eq!(parse_size(&s, Suffix::M), Ok(v));
        // format_size is the same number with an IEC unit name.
        let human = format_size(v);
        let (num, unit) = human.split_once(' ').unwrap();
        let letter = if unit == "B" { "B" } else { &unit[..1] };
        prop_assert_eq!(parse_size(&format!("{num}{letter}"), Suffix::B), Ok(v));
    }

    #[test]
    fn suffix_scaling(n in any::<u32>(), idx in 0usize..7) {
        let sfx = Suffix::ALL[idx];
        let expect = u64::from(n).checked_mul(sfx.multiplier());
        let got = parse_size(&format!("{n}{}", sfx.letter().to_ascii_lowercase()), Suffix::B);
        match expect {
            Some(v) => prop_assert_eq!(got, Ok(v)),
            None => {
                let overflow = matches!(got, Err(SizeError::Overflow { .. }));
                prop_assert!(overflow);
            }
        }
        // Default suffix applies only without an explicit one.
        prop_assert_eq!(parse_size(&n.to_string(), Suffix::K), Ok(u64::from(n) * 1024));
    }

    #[test]
    fn binary_fractions_are_exact(i in 0u64..1_000_000, k in 0u64..1024) {
        // k/1024 has an exact decimal expansion with at most 10 digits.
        let frac = format!("{:.10}", k as f64 / 1024.0);
        let text = format!("{i}{}K", &frac[1..]);
        prop_assert_eq!(parse_size(&text, Suffix::B), Ok(i * 1024 + k), "{}", text);
    }

    #[test]
    fn garbage_never_panics(s in "\\PC{0,40}") {
        let _ = parse_size(&s, Suffix::B);
        let _ = parse_size(&s, Suffix::M);
    }

    #[test]
    fn split_invariants(size in any::<u64>(), label_sel in 0u8..4, raw_label in any::<u64>(), align in pow2(0, 40)) {
        let label = match label_sel { 0 => 0, 1 => L, 2 => 2 * MIB, _ => raw_label >> 20 };
        match nvdimm_split(size, label, align) {
            Ok(s) => {
                prop_assert!(s.pmem_size > 0);
                prop_assert_eq!(s.pmem_size % align, 0);
                prop_assert_eq!(s.label_offset, size - label);
                prop_assert_eq!(s.label_size, label);
                prop_assert_eq!(s.pmem_size + s.gap, s.label_offset);
                prop_assert!(s.gap < align);
                prop_assert!(label == 0 || label >= MIN_LABEL_SIZE);
                prop_assert!(label == 0 || size >= label + MIN_LABEL_SIZE);
            }
            Err(_) => prop_assert!(
                size <= label
                    || (label != 0 && (label < MIN_LABEL_SIZE || size < label + MIN_LABEL_SIZE))
                    || size - label < align
            ),
        }
    }

    #[test]
    fn guest_sizing_fits_and_agrees(dev in any::<u64>(), align in prop::option::of(pow2(0, 40))) {
        if let Ok(g) = guest_nvdimm_size(dev, align) {
            prop_assert!(g.backend_size <= dev);
            prop_assert_eq!(g.pmem_size % H, 0);
            prop_assert!(g.pmem_size > 0);
            prop_assert_eq!(g.label_size, L);
            prop_assert_eq!(g.label_offset + L, g.backend_size);
            prop_assert_eq!(g.pmem_size + g.gap + L, g.backend_size);
            prop_assert_eq!(g.unused_tail, dev - g.backend_size);
            prop_assert_eq!(g.pmem_size % g.align, 0, "pmem start/end aligned to A");
            prop_assert_eq!(nvdimm_split(g.backend_size, L, g.align).unwrap().pmem_size, g.pmem_size);
        } else {
            prop_assert!(dev < minimum_device_size(align).unwrap_or(u64::MAX));
        }
    }

    #[test]
    fn guest_sizing_closed_form(n in 2u64..100_000, extra in 0u64..H, align in pow2(12, 27)) {
        // A | H: size = (N-1)H + max(A, L), pmem = (N-1)H, whatever lies past N*H.
        let g = guest_nvdimm_size(n * H + extra, Some(align)).unwrap();
        prop_assert_eq!(g.backend_size, (n - 1) * H + align.max(L));
        prop_assert_eq!(g.pmem_size, (n - 1) * H);
    }

    #[test]
    fn guest_sizing_large_align(n in 1u64..20_000, extra in 0u64..H, shift in 28u32..34) {
        // H | A: size = N*H, pmem = align_down(N*H - L, A).
        let a = 1u64 << shift;
        let dev = n * H + extra;
        match guest_nvdimm_size(dev, Some(a)) {
            Ok(g) => {
                prop_assert_eq!(g.backend_size, n * H);
                prop_assert_eq!(g.pmem_size, align_down(n * H - L, a));
            }
            Err(_) => prop_assert!(n * H - L < a),
        }
    }
}

#[derive(Debug, Clone)]
struct Dev {
    size_units: u64,
    align_shift: u32,
    nvdimm: bool,
}

fn dev_strategy() -> impl Strategy<Value = Dev> {
    (1u64..64, 12u32..31, any::<bool>()).prop_map(|(size_units, align_shift, nvdimm)| Dev {
        size_units,
        align_shift,
        nvdimm,
    })
}

fn request(i: usize, d: &Dev) -> MemoryDeviceRequest {
    let align = 1u64 << d.align_shift;
    MemoryDeviceRequest {
        id: format!("dev{i}"),
        kind: if d.nvdimm {
            DeviceKind::Nvdimm
        } else {
            DeviceKind::PcDimm
        },
        size: d.size_units * align.max(128 * MIB),
        align,
        slot: None,
        addr: None,
    }
}

fn plan(ram: u64, slots: u32, maxmem: u64, devs: &[Dev]) -> Vec<Result<Placement, LayoutError>> {
    let mut dm = DeviceMemory::new(ram, slots, maxmem).unwrap();
    devs.iter()
        .enumerate()
        .map(|(i, d)| dm.plug(&request(i, d)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Stable identity: placement is a pure function of the ordered device
    /// list, and appending devices (hotplug) never moves earlier ones.
    #[test]
    fn placement_is_stable(ram_gib in 1u64..64, slots in 0u32..12, extra_gib in 0u64..256,
                           devs in prop::collection::vec(dev_strategy(), 0..12), cut in 0usize..12) {
        let ram = ram_gib * GIB;
        let maxmem = ram + extra_gib * GIB;
        let a = plan(ram, slots, maxmem, &devs);
        let b = plan(ram, slots, maxmem, &devs);
        prop_assert_eq!(&a, &b);
        let cut = cut.min(devs.len());
        let prefix = plan(ram, slots, maxmem, &devs[..cut]);
        prop_assert_eq!(&a[..cut], &prefix[..]);
    }

    /// Invariants after any sequence: inside the window, aligned, no
    /// overlap, unique slots, capacity respected.
    #[test]
    fn placement_invariants(ram_gib in 1u64..64, slots in 1u32..16, extra_gib in 1u64..256,
                            devs in prop::collection::vec(dev_strategy(), 0..16)) {
        let ram = ram_gib * GIB;
        let mut dm = DeviceMemory::new(ram, slots, ram + extra_gib * GIB).unwrap().with_slot_rule(SlotRule::Qemu);
        let w = dm.window().unwrap();
        for (i, d) in devs.iter().enumerate() {
            let _ = dm.plug(&request(i, d));
        }
        let mut ps: Vec<&PlacedDevice> = dm.iter().collect();
        prop_assert!(ps.iter().map(|d| d.placement.size).sum::<u64>() <= extra_gib * GIB);
        for d in &ps {
            prop_assert!(w.contains(d.placement.gpa, d.placement.size));
            prop_assert_eq!(d.placement.gpa % d.align, 0);
            prop_assert!(d.placement.slot < slots);
        }
        ps.sort_by_key(|d| d.placement.gpa);
        for p in ps.windows(2) {
            prop_assert!(p[0].placement.gpa + p[0].placement.size <= p[1].placement.gpa);
        }
        let mut s: Vec<u32> = ps.iter().map(|d| d.placement.slot).collect();
        s.sort_unstable();
        s.dedup();
        prop_assert_eq!(s.len(), ps.len());
    }

    /// Reference model: equal alignments pack devices back to back from the
    /// window base, slots 0, 1, 2, ... in order.
    #[test]
    fn uniform_alignment_packs(sizes in prop::collection::vec(1u64..32, 1..10), shift in 12u32..31) {
        let align = 1u64 << shift;
        let total: u64 = sizes.iter().map(|s| s * align).sum();
        let ram = 4 * GIB;
        let maxmem = align_up(ram + total, PAGE_SIZE).unwrap();
        let mut dm = DeviceMemory::new(ram, sizes.len() as u32 + 1, maxmem).unwrap();
        let base = dm.window().unwrap().base;
        let mut expect = base;
        for (i, s) in sizes.iter().enumerate() {
            let r = MemoryDeviceRequest { id: format!("n{i}"), kind: DeviceKind::Nvdimm, size: s * align, align, slot: None, addr: None };
            let p = dm.plug(&r).unwrap();
            prop_assert_eq!(p, Placement { slot: i as u32, gpa: expect, size: s * align });
            expect += s * align;
        }
    }

    #[test]
    fn fuzz_entry_never_panics(data in prop::collection::vec(any::<u8>(), 0..600)) {
        fuzz_layout_plan(&data);
    }
}
