//! Update protocol, parse, check findings, classify and ndctl JSON.

use nvlabel::guid::PFN_GUID;
use nvlabel::*;

const K: usize = 1024;

fn label(dpa: u64, rawsize: u64, v: LabelVersion) -> Label {
    let set = InterleaveSetInfo::qemu(0x123456);
    let mut l = Label {
        uuid: core::array::from_fn(|i| (i as u8).wrapping_mul(17).wrapping_add(dpa as u8)),
        nlabel: 1,
        isetcookie: set.expected(v == LabelVersion::V1_1),
        dpa,
        rawsize,
        ..Label::default()
    };
    if v == LabelVersion::V1_2 {
        l.type_guid = PMEM_TYPE_GUID;
        l.abstraction_guid = PFN_GUID;
        l.lbasize = 512;
    }
    l.set_name("ns0").unwrap();
    l
}

fn opts() -> CheckOptions {
    CheckOptions {
        dimm_size: Some(1 << 30),
        interleave_set: Some(InterleaveSetInfo::qemu(0x123456)),
    }
}

#[test]
fn add_label_follows_kernel_protocol() {
    for v in [LabelVersion::V1_1, LabelVersion::V1_2] {
        let mut a = vec![0u8; 128 * K];
        init(&mut a, v).unwrap();
        let s0 = add_label(&mut a, &label(0, 1 << 28, v)).unwrap();
        let p = parse(&a).unwrap();
        assert_eq!(
            (s0, p.current, p.current_index.header.seq),
            (0, 1, 1),
            "next block gets inc(3) = 1"
        );
        let s1 = add_label(&mut a, &label(1 << 28, 1 << 28, v)).unwrap();
        let p = parse(&a).unwrap();
        assert_eq!((s1, p.current, p.current_index.header.seq), (1, 0, 2));
        assert_eq!(p.labels.len(), 2);
        assert_eq!(
            p.labels[1].label,
            Label {
                slot: 1,
                checksum: p.labels[1].label.checksum,
                ..label(1 << 28, 1 << 28, v)
            }
        );
        let r = check(&a, &opts());
        assert!(r.problems.is_empty(), "{v}: {:?}", r.problems);
        assert_eq!(r.active_labels, 2);
        // The other block is still valid and shows the state before the last update.
        assert_eq!(
            p.other_index
                .as_ref()
                .unwrap()
                .used_slots()
                .collect::<Vec<_>>(),
            vec![0]
        );
        remove_label(&mut a, 0).unwrap();
        let p = parse(&a).unwrap();
        assert_eq!(p.labels.iter().map(|l| l.slot).collect::<Vec<_>>(), vec![1]);
        assert_eq!(
            remove_label(&mut a, 0),
            Err(WriteError::SlotNotInUse {
                slot: 0,
                nslot: p.current_index.header.nslot
            })
        );
        // Freed slot 0 is reused first.
        assert_eq!(add_label(&mut a, &label(0, 4096, v)).unwrap(), 0);
    }
}

#[test]
fn last_slot_is_reserved() {
    let mut a = vec![0u8; 1024];
    assert_eq!(init(&mut a, LabelVersion::V1_2).unwrap(), 2);
    add_label(&mut a, &label(0, 4096, LabelVersion::V1_2)).unwrap();
    assert_eq!(
        add_label(&mut a, &label(4096, 4096, LabelVersion::V1_2)),
        Err(WriteError::NoFreeSlot { nfree: 1 })
    );
    let mut blank = vec![0u8; 4096];
    assert!(matches!(
        add_label(&mut blank, &Label::default()),
        Err(WriteError::NotInitialised(_))
    ));
}

#[test]
fn corrupt_index_checksum_is_named() {
    let mut a = vec![0u8; 128 * K];
    init(&mut a, LabelVersion::V1_1).unwrap();
    a[64] ^= 1;
    let r = check(&a, &CheckOptions::default());
    assert!(!r.is_ok());
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert_eq!(r.problems[0].code(), "index-checksum");
    assert!(
        r.problems[0]
            .to_string()
            .starts_with("index block 0: checksum")
    );
    // Block 1 still validates, so the kernel (and parse) use it.
    assert_eq!(parse(&a).unwrap().current, 1);
}

#[test]
fn both_blocks_bad_reports_each_field() {
    let mut a = vec![0u8; 128 * K];
    init(&mut a, LabelVersion::V1_2).unwrap();
    a[20] = 0; // seq of block 0 -> 0
    a[256 + 24] = 8; // myoff of block 1
    let r = check(&a, &CheckOptions::default());
    let codes: Vec<_> = r.problems.iter().map(|p| p.code()).collect();
    assert_eq!(
        codes,
        [
            "no-valid-index",
            "index-checksum",
            "index-seq",
            "index-checksum",
            "index-myoff"
        ]
    );
    assert_eq!(classify(&a), AreaState::Foreign);
}

#[test]
fn label_problems_detected() {
    let v = LabelVersion::V1_2;
    let mut a = vec![0u8; 128 * K];
    init(&mut a, v).unwrap();
    add_label(&mut a, &label(0, 1 << 20, v)).unwrap();
    add_label(&mut a, &label(1 << 19, 1 << 20, v)).unwrap(); // overlaps slot 0
    let mut bad_cookie = label(1 << 29, 1 << 30, v); // beyond the 1 GiB DIMM
    bad_cookie.isetcookie = InterleaveSetInfo::qemu(0x123457).cookie2();
    add_label(&mut a, &bad_cookie).unwrap();
    let mut alt = label(1 << 21, 4096, v);
    alt.isetcookie = InterleaveSetInfo::qemu(0x123456).cookie1();
    alt.flags = nvlabel::label::NSLABEL_FLAG_UPDATING;
    alt.type_guid = [1; 16];
    add_label(&mut a, &alt).unwrap();
    let r = check(&a, &opts());
    let mut codes: Vec<_> = r.problems.iter().map(|p| p.code()).collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            "label-alt-cookie",
            "label-cookie",
            "label-out-of-range",
            "label-overlap",
            "label-type-guid",
            "label-updating"
        ]
    );
    // Corrupt slot 1's checksum and slot 2's slot field: those are errors and
    // the kernel ignores those labels.
    let lo = 512;
    a[lo + 256 + 200] ^= 0x80;
    a[lo + 2 * 256 + 120] = 7;
    let p = parse(&a).unwrap();
    assert_eq!(
        p.labels.iter().map(|l| l.slot).collect::<Vec<_>>(),
        vec![0, 3]
    );
    let r = check(&a, &opts());
    let codes: Vec<_> = r.problems.iter().map(|p| p.code()).collect();
    assert!(
        codes.contains(&"label-checksum") && codes.contains(&"label-slot-mismatch"),
        "{codes:?}"
    );
    assert!(!codes.contains(&"label-overlap"));
}

#[test]
fn classify_states() {
    assert_eq!(classify(&vec![0u8; 128 * K]), AreaState::Blank);
    let mut a = vec![0u8; 128 * K];
    init(&mut a, LabelVersion::V1_2).unwrap();
    assert_eq!(
        classify(&a),
        AreaState::Labels {
            version: LabelVersion::V1_2,
            nslot: 510,
            active: 0
        }
    );
    add_label(&mut a, &label(0, 4096, LabelVersion::V1_2)).unwrap();
    assert_eq!(
        classify(&a),
        AreaState::Labels {
            version: LabelVersion::V1_2,
            nslot: 510,
            active: 1
        }
    );
    // An ext4 superblock-ish pattern: data, not labels.
    let mut data = vec![0u8; 128 * K];
    data[1024 + 56] = 0x53;
    data[1024 + 57] = 0xef;
    assert_eq!(classify(&data), AreaState::Foreign);
    assert_eq!(
        check(&vec![0u8; 128 * K], &CheckOptions::default()).problems,
        vec![Problem::Blank]
    );
}

#[test]
fn ndctl_json_plain_and_human() {
    let v = LabelVersion::V1_2;
    let mut a = vec![0u8; 128 * K];
    init(&mut a, v).unwrap();
    add_label(&mut a, &label(0, 1 << 30, v)).unwrap();
    let j = read_labels_json(&a, "nmem0", JsonStyle::Plain).unwrap();
    let text = to_ndctl_string(std::slice::from_ref(&j), false);
    let want = r#"[
  {
    "dev":"nmem0",
    "index":[
      {
        "signature":"NAMESPACE_INDEX",
        "major":1,
        "minor":2,
        "labelsize":256,
        "seq":3,
        "nslot":510
      },
      {
        "signature":"NAMESPACE_INDEX",
        "major":1,
        "minor":2,
        "labelsize":256,
        "seq":1,
        "nslot":510
      }
    ],
    "label":[
      {
        "uuid":"00112233-4455-6677-8899-aabbccddeeff",
        "name":"ns0",
        "slot":0,
        "position":0,
        "nlabel":1,
        "flags":0,
        "isetcookie":52512752653219036,
        "lbasize":512,
        "dpa":0,
        "rawsize":1073741824,
        "type_guid":"79d3f066-f3b4-7440-ac43-0d3318b78cdb",
        "abstraction_guid":"ba006426-9ffb-7746-bcb0-968f11d0d225"
      }
    ]
  }
]"#;
    assert_eq!(text, want);
    let h = read_labels_json(&a, "nmem0", JsonStyle::Human).unwrap();
    let l = &h.label[0];
    assert_eq!(l.isetcookie, serde_json::json!("0xba90120012b4dc"));
    assert_eq!(l.flags, serde_json::json!("0"));
    assert_eq!(l.dpa, serde_json::json!("0"));
    assert_eq!(l.rawsize, serde_json::json!("1024.00 MiB (1073.74 MB)"));
    // -u does not change the layout: an array on a pipe, a bare object on a terminal.
    let piped = to_ndctl_string(std::slice::from_ref(&h), false);
    assert!(
        piped.starts_with("[\n  {\n    \"dev\":\"nmem0\""),
        "{piped}"
    );
    assert!(
        piped.contains(r#""isetcookie":"0xba90120012b4dc""#),
        "{piped}"
    );
    let tty = to_ndctl_string(std::slice::from_ref(&h), true);
    assert!(tty.starts_with("{\n  \"dev\":\"nmem0\""), "{tty}");
    assert_eq!(
        to_ndctl_string(std::slice::from_ref(&j), true),
        want.trim_start_matches("[\n")
            .trim_end_matches("\n]")
            .lines()
            .map(|l| l.strip_prefix("  ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // two DIMMs: an array even on a terminal; none: nothing
    let two = to_ndctl_string(&[j.clone(), h], true);
    assert!(two.starts_with("[\n  {"), "{two}");
    assert_eq!(to_ndctl_string(&[], false), "");
}

#[test]
fn ndctl_json_v11_lists_stale_labels() {
    let v = LabelVersion::V1_1;
    let mut a = vec![0u8; 128 * K];
    init(&mut a, v).unwrap();
    a[512..].fill(0xee); // junk slots: slot field never matches
    add_label(&mut a, &label(0, 8192, v)).unwrap();
    remove_label(&mut a, 0).unwrap();
    let j = read_labels_json(&a, "nmem3", JsonStyle::Plain).unwrap();
    assert_eq!(
        j.label.len(),
        1,
        "freed label is still listed, as ndctl does"
    );
    assert_eq!(j.label[0].type_guid, None);
    assert_eq!(j.index[0].minor, 1);
    assert_eq!(j.index[0].labelsize, 128);
    assert!(parse(&a).unwrap().labels.is_empty());
    let text = to_ndctl_string(&[j], false);
    assert!(!text.contains("type_guid"));
}

#[test]
fn human_size_formats() {
    use nvlabel::json::human_size;
    assert_eq!(human_size(4096), serde_json::json!(4096));
    assert_eq!(
        human_size(5000 * 1024),
        serde_json::json!("4.88 MiB (5.12 MB)")
    );
    assert_eq!(human_size(4 << 30), serde_json::json!("4.00 GiB (4.29 GB)"));
    assert_eq!(human_size(3 << 40), serde_json::json!("3.00 TiB (3.30 TB)"));
}

#[test]
fn json_escapes_slash_like_json_c() {
    let v = LabelVersion::V1_1;
    let mut a = vec![0u8; 128 * K];
    init(&mut a, v).unwrap();
    let mut l = label(0, 4096, v);
    l.set_name("a/b").unwrap();
    add_label(&mut a, &l).unwrap();
    let text = to_ndctl_string(
        &[read_labels_json(&a, "nmem0", JsonStyle::Plain).unwrap()],
        false,
    );
    assert!(text.contains(r#""name":"a\/b""#), "{text}");
}

#[test]
fn ndctl_style_stray_bits_are_only_a_warning() {
    // ndctl's init sets whole 64-bit words: bits 1020..1023 of a 128K v1.1 area.
    let mut a = vec![0u8; 128 * K];
    init(&mut a, LabelVersion::V1_1).unwrap();
    for blk in 0..2 {
        let b = &mut a[blk * 256..(blk + 1) * 256];
        b[72 + 127] = 0xff;
        b[64..72].fill(0);
        let sum = fletcher64(b);
        b[64..72].copy_from_slice(&sum.to_le_bytes());
    }
    let p = parse(&a).unwrap();
    assert_eq!(p.nfree(), 1020, "bits >= nslot never count as free");
    let r = check(&a, &CheckOptions::default());
    assert!(r.is_ok());
    assert_eq!(
        r.problems,
        vec![
            Problem::StrayBits { block: 0, count: 4 },
            Problem::StrayBits { block: 1, count: 4 }
        ]
    );
    assert_eq!(r.problems[0].severity(), Severity::Warning);
}
