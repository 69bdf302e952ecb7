//! `_DSM` dispatcher: golden mailbox exchanges (qemu-nvdimm.md §5.3a with pmvm's MAX_XFER),
//! status codes, and property tests over hostile requests.

use nvdimm_acpi::mailbox::{MAX_XFER, PRIVATE_HANDLE};
use nvdimm_acpi::{
    DimmRef, DsmDispatcher, DsmTarget, LabelArea, LabelIoError, MAILBOX_SIZE, MemLabelArea,
    NvdimmAcpiInfo, build_fit, fuzz_dsm_mailbox,
};
use proptest::prelude::*;

/// A label area whose I/O always fails (host error path).
struct Broken;
impl LabelArea for Broken {
    fn label_size(&self) -> u32 {
        0x20000
    }
    fn read_only(&self) -> bool {
        false
    }
    fn read(&self, offset: u32, _: &mut [u8]) -> Result<(), LabelIoError> {
        Err(LabelIoError::Io {
            offset,
            source: std::io::Error::other("EIO"),
        })
    }
    fn write(&mut self, offset: u32, _: &[u8]) -> Result<(), LabelIoError> {
        Err(LabelIoError::Io {
            offset,
            source: std::io::Error::other("EIO"),
        })
    }
}

/// Handle 1: 128 KiB RW labels; 2: 4 KiB read-only; 3: no labels; 4: broken; others empty.
struct Vm {
    rw: MemLabelArea,
    ro: MemLabelArea,
    broken: Broken,
    fit: Vec<u8>,
}

impl Vm {
    fn new() -> Self {
        let d = NvdimmAcpiInfo {
            slot: 0,
            gpa: 0x1_0000_0000,
            pmem_size: 0x800_0000,
            node: 0,
            unarmed: false,
        };
        Vm {
            rw: MemLabelArea::new(0x20000),
            ro: MemLabelArea {
                data: (0..0x1000u32).map(|i| i as u8).collect(),
                read_only: true,
            },
            broken: Broken,
            fit: build_fit(&[d], None),
        }
    }
}

impl DsmTarget for Vm {
    fn dimm(&mut self, handle: u32) -> Option<DimmRef<'_>> {
        match handle {
            1 => Some(DimmRef {
                labels: Some(&mut self.rw),
            }),
            2 => Some(DimmRef {
                labels: Some(&mut self.ro),
            }),
            3 => Some(DimmRef { labels: None }),
            4 => Some(DimmRef {
                labels: Some(&mut self.broken),
            }),
            _ => None,
        }
    }
    fn fit(&self) -> &[u8] {
        &self.fit
    }
}

fn hex(s: &str) -> Vec<u8> {
    let d: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    d.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// A full-size mailbox copy with the given leading bytes (the rest zero, like fresh RAM).
fn mailbox(head: &[u8]) -> Vec<u8> {
    let mut m = vec![0u8; MAILBOX_SIZE];
    m[..head.len()].copy_from_slice(head);
    m
}

fn req(handle: u32, rev: u32, func: u32, arg: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for w in [handle, rev, func] {
        h.extend_from_slice(&w.to_le_bytes());
    }
    h.extend_from_slice(arg);
    mailbox(&h)
}

fn args(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

#[test]
fn golden_exchanges() {
    let mut vm = Vm::new();
    let mut d = DsmDispatcher::new();
    // Function 0 on a DIMM with labels.
    let r = d.handle(&mailbox(&hex("01000000 01000000 00000000")), &mut vm);
    assert_eq!(r, hex("08000000 71000000"));
    // Function 4: status 0, size 0x20000, max_xfer 0x20000.
    let r = d.handle(&mailbox(&hex("01000000 01000000 04000000")), &mut vm);
    assert_eq!(r, hex("10000000 00000000 00000200 00000200"));
    // Function 6: 256 bytes at 0x100.
    let data: Vec<u8> = (0..=255u8).collect();
    let mut head = hex("01000000 01000000 06000000 00010000 00010000");
    head.extend_from_slice(&data);
    assert_eq!(d.handle(&mailbox(&head), &mut vm), hex("08000000 00000000"));
    // Function 5: 256 bytes at 0x100 read back.
    let r = d.handle(
        &mailbox(&hex("01000000 01000000 05000000 00010000 00010000")),
        &mut vm,
    );
    let mut want = hex("08010000 00000000");
    want.extend_from_slice(&data);
    assert_eq!(r, want);
    // Function 5: 4096 bytes now fit in one call (QEMU: status 3, max_xfer 4076).
    let r = d.handle(
        &mailbox(&hex("01000000 01000000 05000000 00000000 00100000")),
        &mut vm,
    );
    assert_eq!(&r[..8], &hex("08100000 00000000")[..]);
    assert_eq!(r.len(), 0x1008);
    assert_eq!(&r[8 + 0x100..8 + 0x200], &data[..]);
    // The whole 128 KiB label area in one call.
    let r = d.handle(
        &mailbox(&hex("01000000 01000000 05000000 00000000 00000200")),
        &mut vm,
    );
    assert_eq!(&r[..8], &hex("08000200 00000000")[..]);
    assert_eq!(r.len(), 0x20008);
    // Read FIT at 0: one DIMM, no caps = 184 bytes; then at 184: end.
    let r = d.handle(
        &mailbox(&hex("00000100 01000000 01000000 00000000")),
        &mut vm,
    );
    assert_eq!(&r[..8], &hex("c0000000 00000000")[..]);
    assert_eq!(&r[8..], &vm.fit[..]);
    let r = d.handle(
        &mailbox(&hex("00000100 01000000 01000000 b8000000")),
        &mut vm,
    );
    assert_eq!(r, hex("08000000 00000000"));
    let s = d.stats();
    assert_eq!(
        (s.calls[0], s.calls[1], s.calls[4], s.calls[5], s.calls[6]),
        (1, 2, 1, 3, 1)
    );
    assert_eq!(s.label_bytes_read, 256 + 0x1000 + 0x20000);
    assert_eq!(
        (s.label_bytes_written, s.fit_bytes_read, s.errors),
        (256, 184, 0)
    );
}

#[test]
fn status_codes() {
    let mut vm = Vm::new();
    let mut d = DsmDispatcher::new();
    let mut st = |m: Vec<u8>| {
        let r = d.handle(&m, &mut vm);
        assert_eq!(
            r.len(),
            8,
            "status-only reply expected, got {} bytes",
            r.len()
        );
        u32::from_le_bytes(r[4..8].try_into().unwrap())
    };
    // Revision != 1: status 1 whatever the handle/function (reads as bitmap 1 for f0).
    assert_eq!(st(req(1, 2, 0, &[])), 1);
    assert_eq!(st(req(PRIVATE_HANDLE, 0, 1, &[])), 1);
    // Root device: nothing supported.
    assert_eq!(st(req(0, 1, 0, &[])), 0);
    assert_eq!(st(req(0, 1, 1, &[])), 1);
    // Private root: bitmap 0x3, unknown function 1.
    assert_eq!(st(req(PRIVATE_HANDLE, 1, 0, &[])), 3);
    assert_eq!(st(req(PRIVATE_HANDLE, 1, 2, &[])), 1);
    // Empty slot: bitmap 0, other functions 2.
    assert_eq!(st(req(5, 1, 0, &[])), 0);
    assert_eq!(st(req(5, 1, 4, &[])), 2);
    assert_eq!(st(req(0xFFFF_FFFF, 1, 5, &args(&[0, 4]))), 2);
    // DIMM without labels: bitmap 0, functions 4/5/6 not supported.
    assert_eq!(st(req(3, 1, 0, &[])), 0);
    assert_eq!(st(req(3, 1, 4, &[])), 1);
    assert_eq!(st(req(3, 1, 5, &args(&[0, 4]))), 1);
    // Labels present, unknown functions.
    assert_eq!(st(req(1, 1, 1, &[])), 1);
    assert_eq!(st(req(1, 1, 7, &[])), 1);
    assert_eq!(st(req(1, 1, 0xFFFF_FFFF, &[])), 1);
    // Bounds: overflow, past the end, > MAX_XFER, exactly at the end is fine.
    assert_eq!(st(req(1, 1, 5, &args(&[0xFFFF_FFF0, 0x20]))), 3);
    assert_eq!(st(req(1, 1, 5, &args(&[0x1FF00, 0x101]))), 3);
    assert_eq!(st(req(1, 1, 5, &args(&[0x20000, 1]))), 3);
    assert_eq!(st(req(2, 1, 5, &args(&[0, 0x1001]))), 3);
    assert_eq!(st(req(1, 1, 6, &args(&[0, MAX_XFER + 1]))), 3);
    assert_eq!(st(req(1, 1, 6, &args(&[0x20000, 0]))), 0);
    // Read-only DIMM: write refused with 1 (after the bounds check), read works.
    assert_eq!(st(req(2, 1, 6, &args(&[0, 4, 0xAABBCCDD]))), 1);
    assert_eq!(st(req(2, 1, 6, &args(&[0x1000, 4, 0]))), 3);
    // Host I/O failure: 4.
    assert_eq!(st(req(4, 1, 5, &args(&[0, 16]))), 4);
    assert_eq!(st(req(4, 1, 6, &args(&[0, 4, 0]))), 4);
    // FIT offset past the end.
    assert_eq!(st(req(PRIVATE_HANDLE, 1, 1, &args(&[185]))), 3);
    let r = d.handle(&req(2, 1, 5, &args(&[0xFF0, 0x10])), &mut vm);
    assert_eq!(&r[8..], &vm.ro.data[0xFF0..]);
}

#[test]
fn smaller_max_xfer_is_advertised_and_enforced() {
    let mut vm = Vm::new();
    let mut d = DsmDispatcher::with_max_xfer(0x4000);
    assert_eq!(d.max_xfer(), 0x4000);
    let r = d.handle(&req(1, 1, 4, &[]), &mut vm);
    assert_eq!(r, hex("10000000 00000000 00000200 00400000"));
    assert_eq!(
        d.handle(&req(1, 1, 5, &args(&[0, 0x4000])), &mut vm).len(),
        0x4008
    );
    assert_eq!(
        &d.handle(&req(1, 1, 5, &args(&[0, 0x4001])), &mut vm)[4..],
        &3u32.to_le_bytes()[..]
    );
    assert_eq!(DsmDispatcher::with_max_xfer(0).max_xfer(), 1);
    assert_eq!(DsmDispatcher::with_max_xfer(u32::MAX).max_xfer(), MAX_XFER);
    assert_eq!(DsmDispatcher::new().max_xfer(), MAX_XFER);
}

#[test]
fn truncated_requests_are_invalid_input() {
    let mut vm = Vm::new();
    let mut d = DsmDispatcher::new();
    let three = 3u32.to_le_bytes();
    for m in [vec![], vec![1, 0, 0], hex("01000000 01000000 050000")] {
        let r = d.handle(&m, &mut vm);
        assert_eq!(r, [&8u32.to_le_bytes()[..], &three[..]].concat());
    }
    // Header present but the argument is cut.
    let short = hex("01000000 01000000 05000000 00000000 0400");
    assert_eq!(&d.handle(&short, &mut vm)[4..], &three[..]);
    let fit_short = hex("00000100 01000000 01000000 0000");
    assert_eq!(&d.handle(&fit_short, &mut vm)[4..], &three[..]);
    // Function 6 whose length exceeds the data actually present in the copy.
    let mut w = hex("01000000 01000000 06000000 00000000 10000000");
    w.extend_from_slice(&[0xEE; 15]);
    assert_eq!(&d.handle(&w, &mut vm)[4..], &three[..]);
    assert!(
        vm.rw.data.iter().all(|b| *b == 0),
        "a rejected write must not touch labels"
    );
    w.push(0xEE);
    assert_eq!(&d.handle(&w, &mut vm)[4..], &0u32.to_le_bytes()[..]);
    assert_eq!(&vm.rw.data[..16], &[0xEE; 16]);
    assert_eq!(d.stats().truncated, 3);
}

#[test]
fn fit_changed_restarts_only_reads_in_progress() {
    let mut vm = Vm::new();
    let mut d = DsmDispatcher::new();
    let at = |off: u32| req(PRIVATE_HANDLE, 1, 1, &args(&[off]));
    d.fit_changed();
    // A read at offset 184 while dirty: 0x100.
    let r = d.handle(&at(184), &mut vm);
    assert_eq!(r, hex("08000000 00010000"));
    // Offset 0 clears the flag and returns data; the follow-up read works.
    assert_eq!(d.handle(&at(0), &mut vm).len(), 8 + 184);
    assert_eq!(d.handle(&at(184), &mut vm), hex("08000000 00000000"));
    assert_eq!(d.stats().fit_restarts, 1);
}

#[test]
fn large_fit_is_chunked_at_mailbox_size() {
    let devs: Vec<_> = (0..256)
        .map(|slot| NvdimmAcpiInfo {
            slot,
            gpa: u64::from(slot) << 30,
            pmem_size: 1 << 30,
            node: 0,
            unarmed: false,
        })
        .collect();
    let mut vm = Vm::new();
    // Make a FIT larger than one chunk by repeating it.
    vm.fit = build_fit(&devs, None).repeat(4);
    assert!(vm.fit.len() > nvdimm_acpi::FIT_CHUNK);
    let mut d = DsmDispatcher::new();
    let mut got = Vec::new();
    loop {
        let r = d.handle(
            &req(PRIVATE_HANDLE, 1, 1, &args(&[got.len() as u32])),
            &mut vm,
        );
        assert!(r.len() <= MAILBOX_SIZE);
        assert_eq!(&r[4..8], &[0; 4]);
        if r.len() == 8 {
            break;
        }
        got.extend_from_slice(&r[8..]);
    }
    assert_eq!(got, vm.fit);
}

#[test]
fn fuzz_entry_survives_edge_inputs() {
    fuzz_dsm_mailbox(&[]);
    fuzz_dsm_mailbox(&[0]);
    fuzz_dsm_mailbox(&[1, 0xFF, 0xFF]);
    fuzz_dsm_mailbox(&[3, 3, 0, 1, 1, 6]);
    fuzz_dsm_mailbox(&[2, 0, 0, 1, 3, 0, 5, 1, 1, 0, 0, 0, 0, 0]);
    // A structured maximal write to handle 1 then a read.
    let mut w = vec![1u8, 0, 0, 1, 1, 6];
    w.extend_from_slice(&args(&[0, 0x10]));
    w.extend_from_slice(&[0x77; 0x10]);
    let body_len = (w.len() - 3) as u16;
    w[1..3].copy_from_slice(&body_len.to_le_bytes());
    fuzz_dsm_mailbox(&w);
}

fn arb_request() -> impl Strategy<Value = Vec<u8>> {
    let handle = prop_oneof![0u32..6, Just(PRIVATE_HANDLE), any::<u32>()];
    let rev = prop_oneof![Just(1u32), any::<u32>()];
    let func = prop_oneof![0u32..8, any::<u32>()];
    let off = prop_oneof![0u32..0x20100, any::<u32>()];
    let len = prop_oneof![
        0u32..0x300,
        Just(MAX_XFER),
        Just(MAX_XFER + 1),
        any::<u32>()
    ];
    let tail = proptest::collection::vec(any::<u8>(), 0..64);
    let cut = prop_oneof![Just(usize::MAX), 0usize..64];
    (handle, rev, func, off, len, tail, cut).prop_map(|(h, r, f, o, l, t, cut)| {
        let mut m = args(&[h, r, f, o, l]);
        m.extend_from_slice(&t);
        if cut != usize::MAX {
            m.truncate(cut);
            m
        } else {
            mailbox(&m)
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Any request: no panic, 8 <= len <= MAILBOX_SIZE, RLEN == len.
    #[test]
    fn replies_are_well_formed(reqs in proptest::collection::vec(arb_request(), 1..6), raw in proptest::collection::vec(any::<u8>(), 0..40)) {
        let mut vm = Vm::new();
        let mut d = DsmDispatcher::new();
        for m in reqs.iter().chain(std::iter::once(&raw)) {
            let r = d.handle(m, &mut vm);
            prop_assert!(r.len() >= 8 && r.len() <= MAILBOX_SIZE);
            prop_assert_eq!(u32::from_le_bytes(r[..4].try_into().unwrap()) as usize, r.len());
        }
    }

    /// Reads return exactly what was written (shadow model of the label area).
    #[test]
    fn reads_return_what_was_written(
        writes in proptest::collection::vec((0u32..0x20000, proptest::collection::vec(any::<u8>(), 0..600)), 1..12),
        reads in proptest::collection::vec((0u32..0x20000, 0u32..0x2000), 1..8),
    ) {
        let mut vm = Vm::new();
        let mut d = DsmDispatcher::new();
        let mut shadow = vec![0u8; 0x20000];
        for (off, data) in &writes {
            let mut a = args(&[*off, data.len() as u32]);
            a.extend_from_slice(data);
            let r = d.handle(&req(1, 1, 6, &a), &mut vm);
            let fits = *off as usize + data.len() <= shadow.len();
            prop_assert_eq!(&r[4..8], &(if fits { 0u32 } else { 3 }).to_le_bytes()[..]);
            if fits {
                shadow[*off as usize..*off as usize + data.len()].copy_from_slice(data);
            }
        }
        for (off, len) in &reads {
            let r = d.handle(&req(1, 1, 5, &args(&[*off, *len])), &mut vm);
            let end = (*off + *len) as usize;
            if end <= shadow.len() {
                prop_assert_eq!(&r[4..8], &[0u8; 4][..]);
                prop_assert_eq!(&r[8..], &shadow[*off as usize..end]);
            } else {
                prop_assert_eq!(r.len(), 8);
                prop_assert_eq!(&r[4..8], &3u32.to_le_bytes()[..]);
            }
        }
    }

    /// The fuzz entry point never panics on arbitrary bytes.
    #[test]
    fn fuzz_entry_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        fuzz_dsm_mailbox(&data);
    }
}
