//! Golden values: Fletcher-64, slot arithmetic, cookies, init bytes, label bytes.
//! Expected numbers come from the docs' tables and an independent Python
//! computation of the same formulas, not from this crate.

use nvlabel::index::{IndexHeader, bit_is_set};
use nvlabel::layout::index_size_for_slots;
use nvlabel::*;

const K: usize = 1024;

#[test]
fn fletcher64_golden() {
    assert_eq!(fletcher64(&[]), 0);
    assert_eq!(fletcher64(&[1, 0, 0, 0]), 0x0000_0001_0000_0001);
    let seq: Vec<u8> = (0..16).collect();
    assert_eq!(fletcher64(&seq), 0x463c_3228_2420_1c18);
    let seq: Vec<u8> = (0..100).collect();
    assert_eq!(fletcher64(&seq), 0x9a54_0da0_ffe6_cdb0);
    assert_eq!(fletcher64(&[0xff; 4096]), 0xfff7_fe00_ffff_fc00);
    // Trailing partial word ignored, like the C original.
    assert_eq!(
        fletcher64(&[1, 0, 0, 0, 9, 9, 9]),
        fletcher64(&[1, 0, 0, 0])
    );
}

#[test]
fn slot_table_from_docs() {
    // (LSA, label size, index size, nslot) from management-and-labels.md 4.2.
    for (lsa, ls, isz, nslot) in [
        (128 * K, 128, 256, 1020),
        (128 * K, 256, 256, 510),
        (256 * K, 128, 512, 2040),
        (256 * K, 256, 256, 1022),
        (2048 * K, 256, 1280, 8182),
        (2048 * K, 128, 2304, 16348),
        (1024, 256, 256, 2),
        (1024, 128, 256, 4),
    ] {
        let g = geometry(lsa as u64, ls).unwrap_or_else(|| panic!("{lsa}/{ls} should be valid"));
        assert_eq!(
            (g.index_size, g.nslot, g.label_offset),
            (isz, nslot, 2 * isz),
            "{lsa}/{ls}"
        );
        assert_eq!(sizeof_namespace_index(lsa as u64, ls), Some(isz));
    }
    assert_eq!(geometry(1023, 256), None);
    assert_eq!(geometry(0, 128), None);
    assert_eq!(index_size_for_slots(1020), 256);
    assert_eq!(index_size_for_slots(1480), 512);
}

#[test]
fn available_slots_after_init() {
    for (v, expect) in [(LabelVersion::V1_1, 1019), (LabelVersion::V1_2, 509)] {
        let mut a = vec![0u8; 128 * K];
        init(&mut a, v).unwrap();
        let p = parse(&a).unwrap();
        assert_eq!(p.available_slots(), expect);
        assert_eq!(p.version, v);
        assert_eq!(p.current, 0);
    }
}

#[test]
fn seq_rules() {
    assert_eq!(
        [inc_seq(0), inc_seq(1), inc_seq(2), inc_seq(3)],
        [0, 2, 3, 1]
    );
    assert_eq!(best_seq(3, 2), 3);
    assert_eq!(best_seq(3, 1), 1);
    assert_eq!(best_seq(1, 2), 2);
    assert_eq!(best_seq(0, 2), 2);
    assert_eq!(best_seq(2, 0), 2);
    assert_eq!(best_seq(2, 2), 2);
    assert_eq!(best_seq(1, 3), 1);
}

#[test]
fn cookies_from_doc() {
    let s0 = InterleaveSetInfo::qemu(0x123456);
    let s1 = InterleaveSetInfo::qemu(0x123457);
    assert_eq!(s0.cookie1(), 0x0024_68AC_0012_3456);
    assert_eq!(s0.cookie2(), 0x00BA_9012_0012_B4DC);
    assert_eq!(s1.cookie1(), 0x0024_68AE_0012_3457);
    assert_eq!(s1.cookie2(), 0x00BA_901C_0012_B4DD);
    assert_eq!(s0.expected(true), s0.cookie1());
}

fn expected_block(isz: usize, i: usize, nslot: u32, ls: usize, minor: u16) -> Vec<u8> {
    let mut b = vec![0u8; isz];
    b[..16].copy_from_slice(b"NAMESPACE_INDEX\0");
    b[19] = (ls >> 8) as u8;
    b[20..24].copy_from_slice(&(3 - i as u32).to_le_bytes());
    b[24..32].copy_from_slice(&((i * isz) as u64).to_le_bytes());
    b[32..40].copy_from_slice(&(isz as u64).to_le_bytes());
    b[40..48].copy_from_slice(&(((1 - i) * isz) as u64).to_le_bytes());
    b[48..56].copy_from_slice(&((2 * isz) as u64).to_le_bytes());
    b[56..60].copy_from_slice(&nslot.to_le_bytes());
    b[60..62].copy_from_slice(&1u16.to_le_bytes());
    b[62..64].copy_from_slice(&minor.to_le_bytes());
    for s in 0..nslot as usize {
        b[72 + s / 8] |= 1 << (s % 8);
    }
    b
}

#[test]
fn init_golden_bytes() {
    for (lsa, v, isz, nslot, sums) in [
        (
            128 * K,
            LabelVersion::V1_1,
            256,
            1020,
            [0xdb63_4621_e731_3e0au64, 0xdb63_49e6_e731_3e09],
        ),
        (
            128 * K,
            LabelVersion::V1_2,
            256,
            510,
            [0xe793_e3ed_1832_3c1c, 0xe793_e7b2_1832_3c1b],
        ),
        (
            2048 * K,
            LabelVersion::V1_2,
            1280,
            8182,
            [0x65c6_8e45_d872_6924, 0x65c6_a10a_d872_6923],
        ),
    ] {
        let mut a = vec![0u8; lsa];
        assert_eq!(init(&mut a, v).unwrap(), nslot);
        for i in 0..2 {
            let mut want = expected_block(isz, i, nslot, v.label_size(), v.minor());
            want[64..72].copy_from_slice(&sums[i].to_le_bytes());
            assert_eq!(&a[i * isz..(i + 1) * isz], &want[..], "{lsa} {v} block {i}");
        }
        assert!(
            a[2 * isz..].iter().all(|&b| b == 0),
            "init must not touch label slots"
        );
    }
    // 128K v1.1: last bitmap byte covers slots 1016..1019 only.
    let mut a = vec![0u8; 128 * K];
    init(&mut a, LabelVersion::V1_1).unwrap();
    assert_eq!(a[72 + 127], 0x0f);
}

#[test]
fn init_keeps_labels_and_overwrites_padding() {
    let mut a = vec![0xa5u8; 128 * K];
    init(&mut a, LabelVersion::V1_1).unwrap();
    assert!(a[200..256].iter().all(|&b| b == 0), "index padding zeroed");
    assert!(a[512..].iter().all(|&b| b == 0xa5), "label slots untouched");
    assert!(
        parse(&a).unwrap().labels.is_empty(),
        "all slots free after init"
    );
    let mut small = vec![0u8; 1000];
    assert!(matches!(
        init(&mut small, LabelVersion::V1_2),
        Err(WriteError::TooSmall { .. })
    ));
    assert!(small.iter().all(|&b| b == 0));
}

pub fn sample_label() -> Label {
    let mut l = Label {
        uuid: core::array::from_fn(|i| i as u8),
        nlabel: 1,
        isetcookie: 0x00BA_9012_0012_B4DC,
        lbasize: 512,
        rawsize: 0x4000_0000,
        type_guid: PMEM_TYPE_GUID,
        abstraction_guid: nvlabel::guid::PFN_GUID,
        ..Label::default()
    };
    l.set_name("pmvm").unwrap();
    l
}

#[test]
fn label_v12_golden() {
    let mut raw = [0u8; 256];
    let sum = sample_label().encode(&mut raw);
    assert_eq!(sum, 0xf5ae_6478_aaa8_d0cd);
    assert_eq!(&raw[248..256], &sum.to_le_bytes());
    assert_eq!(&raw[16..21], b"pmvm\0");
    assert_eq!(&raw[88..96], &0x00BA_9012_0012_B4DCu64.to_le_bytes());
    assert_eq!(hex(&raw[128..144]), "79d3f066f3b47440ac430d3318b78cdb");
    assert_eq!(
        Label::decode(&raw).unwrap(),
        Label {
            checksum: sum,
            ..sample_label()
        }
    );
    let mut v11 = [0u8; 128];
    assert_eq!(sample_label().encode(&mut v11), 0);
    assert_eq!(
        &v11[..],
        &raw[..128]
            .iter()
            .enumerate()
            .map(|(i, &b)| if i >= 124 { 0 } else { b })
            .collect::<Vec<_>>()[..]
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn guid_text_forms() {
    assert_eq!(
        format_uuid(&PMEM_TYPE_GUID),
        "79d3f066-f3b4-7440-ac43-0d3318b78cdb"
    );
    assert_eq!(
        nvlabel::guid::format_guid(&PMEM_TYPE_GUID),
        "66f0d379-b4f3-4074-ac43-0d3318b78cdb"
    );
    assert_eq!(
        format_uuid(&nvlabel::guid::PFN_GUID),
        "ba006426-9ffb-7746-bcb0-968f11d0d225"
    );
    assert_eq!(
        parse_guid("66f0d379-b4f3-4074-ac43-0d3318b78cdb"),
        Some(PMEM_TYPE_GUID)
    );
    assert_eq!(
        parse_uuid("00010203-0405-0607-0809-0a0b0c0d0e0f"),
        Some(core::array::from_fn(|i| i as u8))
    );
    assert_eq!(parse_uuid("00010203-0405-0607-0809-0a0b0c0d0e0"), None);
    assert_eq!(parse_uuid("0001020304-05-0607-0809-0a0b0c0d0e0f"), None);
    assert_eq!(parse_uuid("00010203-0405-0607-0809-0a0b0c0d0e0g"), None);
}

#[test]
fn header_decode_matches_layout() {
    let mut a = vec![0u8; 256 * K];
    init(&mut a, LabelVersion::V1_1).unwrap();
    let h = IndexHeader::decode(&a[512..]).unwrap();
    assert_eq!(
        (h.seq, h.myoff, h.otheroff, h.labeloff, h.nslot, h.mysize),
        (2, 512, 0, 1024, 2040, 512)
    );
    assert!(h.uses_cookie1());
    assert!(bit_is_set(&a[72..512], 2039));
    assert!(!bit_is_set(&a[72..512], 2040));
}
