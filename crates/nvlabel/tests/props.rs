//! Property tests: init/parse round trips, label writes, corruption detection,
//! and the fuzz entry point on random and mutated input.

use nvlabel::*;
use proptest::prelude::*;

fn version() -> impl Strategy<Value = LabelVersion> {
    prop_oneof![Just(LabelVersion::V1_1), Just(LabelVersion::V1_2)]
}

fn pmem_label(v: LabelVersion, i: u64, uuid: [u8; 16], name: &str) -> Label {
    let set = InterleaveSetInfo::qemu(0x123456);
    let mut l = Label {
        uuid,
        nlabel: 1,
        isetcookie: set.expected(v == LabelVersion::V1_1),
        dpa: i << 24,
        rawsize: 1 << 24,
        ..Label::default()
    };
    if v == LabelVersion::V1_2 {
        l.type_guid = PMEM_TYPE_GUID;
    }
    l.set_name(name).unwrap();
    l
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn init_parse_round_trip(size in 1024usize..(3 << 20), v in version()) {
        let mut a = vec![0u8; size];
        let nslot = init(&mut a, v).unwrap();
        let geo = geometry(size as u64, v.label_size() as u64).unwrap();
        prop_assert_eq!(nslot, geo.nslot);
        let p = parse(&a).unwrap();
        prop_assert_eq!(p.version, v);
        prop_assert_eq!(p.current, 0);
        prop_assert_eq!(p.current_index.header.nslot, nslot);
        prop_assert_eq!(p.nfree(), nslot);
        prop_assert!(p.labels.is_empty() && p.rejected.is_empty());
        prop_assert!(p.other_index.is_some());
        let r = check(&a, &CheckOptions::default());
        prop_assert!(r.problems.is_empty(), "{:?}", r.problems);
        prop_assert_eq!(classify(&a), AreaState::Labels { version: v, nslot, active: 0 });
        // Both index blocks plus all slots fit in the area.
        prop_assert!(geo.label_offset + u64::from(nslot) * geo.label_size <= size as u64);
    }

    #[test]
    fn written_labels_reparse(
        size in 2048usize..(512 << 10),
        v in version(),
        uuids in proptest::collection::vec(any::<[u8; 16]>(), 1..12),
        name in "[a-z0-9/_-]{0,63}",
    ) {
        let mut a = vec![0u8; size];
        init(&mut a, v).unwrap();
        let cap = parse(&a).unwrap().available_slots() as usize;
        let mut written = Vec::new();
        for (i, u) in uuids.iter().enumerate() {
            let l = pmem_label(v, i as u64, *u, &name);
            match add_label(&mut a, &l) {
                Ok(slot) => written.push((slot, l)),
                Err(WriteError::NoFreeSlot { .. }) => prop_assert!(i >= cap),
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
        let p = parse(&a).unwrap();
        prop_assert_eq!(p.labels.len(), written.len());
        for (got, (slot, want)) in p.labels.iter().zip(&written) {
            prop_assert_eq!(got.slot, *slot);
            let mut want = want.clone();
            want.slot = *slot;
            want.checksum = got.label.checksum;
            if v == LabelVersion::V1_1 { want.type_guid = [0; 16]; }
            prop_assert_eq!(&got.label, &want);
            prop_assert_eq!(got.label.name_str(), name.clone());
        }
        let r = check(&a, &CheckOptions { dimm_size: Some(1 << 30), interleave_set: Some(InterleaveSetInfo::qemu(0x123456)) });
        prop_assert!(r.problems.is_empty(), "{:?}", r.problems);
        // Each update bumped the sequence number once.
        let mut seq = 3;
        for _ in &written { seq = inc_seq(seq); }
        prop_assert_eq!(p.current_index.header.seq, seq);
    }

    #[test]
    fn single_bit_flip_in_index_is_detected(
        v in version(),
        lsa_kib in prop_oneof![Just(128usize), Just(256), Just(2048)],
        nlabels in 0usize..4,
        block in 0usize..2,
        bit in any::<proptest::sample::Index>(),
    ) {
        let mut a = vec![0u8; lsa_kib << 10];
        init(&mut a, v).unwrap();
        for i in 0..nlabels {
            add_label(&mut a, &pmem_label(v, i as u64, [i as u8 + 1; 16], "x")).unwrap();
        }
        let isz = geometry(a.len() as u64, v.label_size() as u64).unwrap().index_size as usize;
        let bit = bit.index(isz * 8);
        a[block * isz + bit / 8] ^= 1 << (bit % 8);
        let r = check(&a, &CheckOptions::default());
        prop_assert!(!r.is_ok());
        prop_assert!(r.problems.iter().any(|p| matches!(p, Problem::Index { .. } | Problem::NoValidIndex)), "{:?}", r.problems);
    }

    #[test]
    fn fuzz_entry_random(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        fuzz_label_area(&data);
    }

    #[test]
    fn fuzz_entry_mutated(
        v in version(),
        size in 1024usize..8192,
        muts in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 0..16),
    ) {
        let mut a = vec![0u8; size];
        init(&mut a, v).unwrap();
        let _ = add_label(&mut a, &pmem_label(v, 0, [7; 16], "m"));
        for (i, b) in muts {
            let at = i.index(size);
            a[at] = b;
        }
        fuzz_label_area(&a);
    }

    #[test]
    fn guid_round_trip(b in any::<[u8; 16]>()) {
        prop_assert_eq!(parse_uuid(&format_uuid(&b)), Some(b));
        prop_assert_eq!(parse_guid(&nvlabel::guid::format_guid(&b)), Some(b));
    }
}

#[test]
fn fuzz_entry_edge_inputs() {
    for len in [
        0usize, 1, 71, 72, 255, 256, 511, 512, 1023, 1024, 1025, 4096,
    ] {
        fuzz_label_area(&vec![0u8; len]);
        fuzz_label_area(&vec![0xffu8; len]);
    }
    // Valid-looking headers with hostile fields: huge nslot, labelsize byte 255, seq 0.
    let mut a = vec![0u8; 8192];
    init(&mut a, LabelVersion::V1_2).unwrap();
    for (off, val) in [
        (56usize, 0xffu8),
        (59, 0xff),
        (19, 0xff),
        (20, 0),
        (62, 0xff),
        (48, 0xff),
    ] {
        let mut b = a.clone();
        b[off] = val;
        b[256 + off] = val;
        fuzz_label_area(&b);
    }
    // Index claims a slot whose label has a wild slot field.
    let mut b = a.clone();
    b[72] = 0xfe;
    b[512 + 120..512 + 124].copy_from_slice(&u32::MAX.to_le_bytes());
    fuzz_label_area(&b);
}
