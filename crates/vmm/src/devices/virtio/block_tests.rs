//! virtio-blk and virtio-mmio, driven through registers and rings as a guest driver would.

use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;

use vm_memory::{Bytes, GuestAddress};

use super::super::fuzz::{DATA, Driver, run};
use super::super::mmio::VirtioMmioAml;
use super::*;
use crate::bus::BusDevice;
use acpi_tables::Aml;
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ring::VIRTIO_RING_F_INDIRECT_DESC;

// Short names for the bindings' constants, as the assertions below read them.
const F_VERSION_1: u64 = 1 << VIRTIO_F_VERSION_1;
const F_RING_INDIRECT_DESC: u64 = 1 << VIRTIO_RING_F_INDIRECT_DESC;
const F_SEG_MAX: u64 = 1 << VIRTIO_BLK_F_SEG_MAX;
const F_RO: u64 = 1 << VIRTIO_BLK_F_RO;
const F_FLUSH: u64 = 1 << VIRTIO_BLK_F_FLUSH;
const F_DISCARD: u64 = 1 << VIRTIO_BLK_F_DISCARD;
const F_WRITE_ZEROES: u64 = 1 << VIRTIO_BLK_F_WRITE_ZEROES;
const T_IN: u32 = VIRTIO_BLK_T_IN;
const T_OUT: u32 = VIRTIO_BLK_T_OUT;
const T_FLUSH: u32 = VIRTIO_BLK_T_FLUSH;
const T_GET_ID: u32 = VIRTIO_BLK_T_GET_ID;
const T_DISCARD: u32 = VIRTIO_BLK_T_DISCARD;
const T_WRITE_ZEROES: u32 = VIRTIO_BLK_T_WRITE_ZEROES;
const S_OK: u8 = VIRTIO_BLK_S_OK as u8;
const S_IOERR: u8 = VIRTIO_BLK_S_IOERR as u8;
const S_UNSUPP: u8 = VIRTIO_BLK_S_UNSUPP as u8;
mod status {
    pub use virtio_bindings::virtio_config::{
        VIRTIO_CONFIG_S_ACKNOWLEDGE as ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER as DRIVER,
        VIRTIO_CONFIG_S_DRIVER_OK as DRIVER_OK, VIRTIO_CONFIG_S_FEATURES_OK as FEATURES_OK,
        VIRTIO_CONFIG_S_NEEDS_RESET as DEVICE_NEEDS_RESET,
    };
}

const FEATURES: u64 = F_VERSION_1 | F_FLUSH | F_SEG_MAX | F_RING_INDIRECT_DESC | F_WRITE_ZEROES;
const OKAY: u32 = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK;

#[test]
fn registers_and_config_as_linux_reads_them() {
    let (mut d, _f) = Driver::with_image(1 << 20, false, false);
    assert_eq!(d.r(0x000), 0x7472_6976);
    assert_eq!(d.r(0x004), 2);
    assert_eq!(d.r(0x008), 2);
    d.w(0x014, 0);
    let lo = d.r(0x010);
    d.w(0x014, 1);
    let hi = d.r(0x010);
    let offered = u64::from(lo) | (u64::from(hi) << 32);
    assert_eq!(
        offered, FEATURES,
        "VERSION_1, INDIRECT_DESC, FLUSH, SEG_MAX; not RO"
    );
    let mut cap = [0u8; 8];
    d.dev.read(0x100, &mut cap);
    assert_eq!(
        u64::from_le_bytes(cap),
        2048,
        "capacity in 512-byte sectors"
    );
    let mut seg = [0u8; 4];
    d.dev.read(0x10c, &mut seg);
    assert_eq!(u32::from_le_bytes(seg), SEG_MAX);
    let mut far = [0xaau8; 4];
    d.dev.read(0x1000, &mut far);
    assert_eq!(far, [0; 4], "beyond the config space reads zero");
    d.w(0x030, 0);
    assert_eq!(d.r(0x034), u32::from(QUEUE_SIZE));
    d.w(0x030, 1);
    assert_eq!(d.r(0x034), 0, "there is one queue");
    assert_eq!(d.init(FEATURES), OKAY);
}

#[test]
fn features_not_offered_are_refused() {
    let (mut d, _f) = Driver::with_image(1 << 20, false, false);
    // EVENT_IDX (bit 29) is not offered: FEATURES_OK must not stick, DRIVER_OK neither.
    let st = d.init(FEATURES | (1 << 29));
    assert_eq!(st & (status::FEATURES_OK | status::DRIVER_OK), 0);
    // Without VERSION_1 (a legacy driver) the same.
    let st = d.init(F_FLUSH);
    assert_eq!(st & status::FEATURES_OK, 0);
    // And a notify then does nothing.
    assert_eq!(d.request(T_IN, 0, &[(DATA + 0x1000, 512)], true), 0xff);
}

#[test]
fn write_then_read_back_through_the_rings() {
    let (mut d, img) = Driver::with_image(1 << 20, false, false);
    assert_eq!(d.init(FEATURES), OKAY);
    let pattern: Vec<u8> = (0..1536u32).map(|i| (i * 7 + 3) as u8).collect();
    d.mem
        .write_slice(&pattern[..1024], GuestAddress(DATA + 0x1000))
        .unwrap();
    d.mem
        .write_slice(&pattern[1024..], GuestAddress(DATA + 0x3000))
        .unwrap();
    // Two data segments, as a scatter list.
    let st = d.request(
        T_OUT,
        4,
        &[(DATA + 0x1000, 1024), (DATA + 0x3000, 512)],
        false,
    );
    assert_eq!(st, S_OK);
    let (idx, id, len) = d.used();
    assert_eq!(
        (idx, id, len),
        (1, 0, 1),
        "an OUT writes only the status byte"
    );
    assert_eq!(d.irqs.load(Ordering::SeqCst), 1);
    assert_eq!(d.r(0x060), 1, "InterruptStatus: used buffer");
    d.w(0x064, 1);
    assert_eq!(d.r(0x060), 0);
    let mut on_disk = vec![0u8; 1536];
    img.read_exact_at(&mut on_disk, 4 * 512).unwrap();
    assert_eq!(on_disk, pattern);

    let st = d.request(T_IN, 4, &[(DATA + 0x8000, 1536)], true);
    assert_eq!(st, S_OK);
    assert_eq!(d.used().2, 1537);
    let mut back = vec![0u8; 1536];
    d.mem
        .read_slice(&mut back, GuestAddress(DATA + 0x8000))
        .unwrap();
    assert_eq!(back, pattern);
    assert_eq!(d.request(T_FLUSH, 0, &[], false), S_OK);
}

#[test]
fn requests_outside_the_image_fail_without_touching_it() {
    let (mut d, img) = Driver::with_image(64 << 10, false, false);
    d.init(FEATURES);
    let last = 64 * 2 - 1;
    assert_eq!(d.request(T_IN, last, &[(DATA + 0x1000, 512)], true), S_OK);
    assert_eq!(
        d.request(T_IN, last, &[(DATA + 0x1000, 1024)], true),
        S_IOERR
    );
    assert_eq!(
        d.request(T_OUT, last + 1, &[(DATA + 0x1000, 512)], false),
        S_IOERR
    );
    assert_eq!(
        d.request(T_OUT, u64::MAX / 256, &[(DATA + 0x1000, 512)], false),
        S_IOERR
    );
    assert_eq!(
        d.request(T_OUT, u64::MAX, &[(DATA + 0x1000, 512)], false),
        S_IOERR
    );
    assert_eq!(
        d.request(T_IN, 0, &[(DATA + 0x1000, 100)], true),
        S_IOERR,
        "not whole sectors"
    );
    // A data buffer outside guest memory: an error, not a crash.
    assert_eq!(d.request(T_IN, 0, &[(1 << 40, 512)], true), S_IOERR);
    assert_eq!(
        d.request(T_OUT, 0, &[(u64::MAX - 100, 512)], false),
        S_IOERR
    );
    // A ~4 GiB descriptor: refused by the capacity check before any allocation.
    assert_eq!(d.request(T_IN, 0, &[(DATA, u32::MAX - 17)], true), S_IOERR);
    // A chain over 2^32 bytes is illegal: virtio-queue ends it early, so it has no status byte
    // and is returned unanswered.
    assert_eq!(d.request(T_IN, 0, &[(DATA, u32::MAX)], true), 0xff);
    assert_eq!(d.used().2, 0);
    assert_eq!(
        img.metadata().unwrap().len(),
        64 << 10,
        "the image did not grow"
    );
}

#[test]
fn malformed_chains_are_answered_or_dropped() {
    let (mut d, _img) = Driver::with_image(64 << 10, false, false);
    d.init(FEATURES);
    // Header shorter than 16 bytes.
    d.mem.write_obj(0xffu8, GuestAddress(DATA + 0x100)).unwrap();
    d.submit(&[(DATA, 8, false), (DATA + 0x100, 1, true)]);
    assert_eq!(
        d.mem.read_obj::<u8>(GuestAddress(DATA + 0x100)).unwrap(),
        S_IOERR
    );
    // No writable byte for the status: used with length 0, nothing written.
    d.submit(&[(DATA, 16, false)]);
    assert_eq!(d.used().2, 0);
    // Unknown request type.
    assert_eq!(d.request(99, 0, &[], false), S_UNSUPP);
    // GET_ID: the drive id, zero padded to 20 bytes.
    assert_eq!(d.request(T_GET_ID, 0, &[(DATA + 0x1000, 20)], true), S_OK);
    let mut id = [0u8; 20];
    d.mem
        .read_slice(&mut id, GuestAddress(DATA + 0x1000))
        .unwrap();
    assert_eq!(&id, b"virtio0\0\0\0\0\0\0\0\0\0\0\0\0\0");
    // A descriptor loop (0 -> 0): virtio-queue stops after the queue size; no hang.
    d.mem.write_obj(DATA, GuestAddress(DESC_ADDR)).unwrap();
    d.mem.write_obj(16u32, GuestAddress(DESC_ADDR + 8)).unwrap();
    d.mem.write_obj(1u16, GuestAddress(DESC_ADDR + 12)).unwrap();
    d.mem.write_obj(0u16, GuestAddress(DESC_ADDR + 14)).unwrap();
    let idx: u16 = d
        .mem
        .read_obj(GuestAddress(super::super::fuzz::AVAIL + 2))
        .unwrap();
    d.mem
        .write_obj(
            idx.wrapping_add(1),
            GuestAddress(super::super::fuzz::AVAIL + 2),
        )
        .unwrap();
    d.w(0x50, 0);
    // An avail index far ahead of the device: nothing is processed.
    d.mem
        .write_obj(
            idx.wrapping_add(1000),
            GuestAddress(super::super::fuzz::AVAIL + 2),
        )
        .unwrap();
    d.w(0x50, 0);
}

const DESC_ADDR: u64 = super::super::fuzz::DESC;

#[test]
fn read_only_drive_refuses_writes() {
    let (mut d, img) = Driver::with_image(64 << 10, true, false);
    d.w(0x014, 0);
    assert_ne!(d.r(0x010) & (1 << 5), 0, "VIRTIO_BLK_F_RO offered");
    d.init((FEATURES & !F_WRITE_ZEROES) | F_RO);
    d.mem
        .write_slice(&[0x55; 512], GuestAddress(DATA + 0x1000))
        .unwrap();
    assert_eq!(d.request(T_OUT, 0, &[(DATA + 0x1000, 512)], false), S_IOERR);
    let mut b = [0u8; 512];
    img.read_exact_at(&mut b, 0).unwrap();
    assert_eq!(b, [0; 512]);
}

#[test]
fn probed_raw_image_cannot_be_turned_into_qcow2_by_the_guest() {
    let (mut d, img) = Driver::with_image(64 << 10, false, true);
    d.init(FEATURES);
    d.mem
        .write_slice(b"QFI\xfb\0\0\0\x03", GuestAddress(DATA + 0x1000))
        .unwrap();
    assert_eq!(d.request(T_OUT, 0, &[(DATA + 0x1000, 512)], false), S_IOERR);
    assert_eq!(
        d.request(T_OUT, 1, &[(DATA + 0x1000, 512)], false),
        S_OK,
        "other sectors are fine"
    );
    let mut b = [0u8; 4];
    img.read_exact_at(&mut b, 0).unwrap();
    assert_eq!(b, [0; 4]);
    // With format=raw given there is no guard.
    let (mut d, _img) = Driver::with_image(64 << 10, false, false);
    d.init(FEATURES);
    d.mem
        .write_slice(b"QFI\xfb", GuestAddress(DATA + 0x1000))
        .unwrap();
    assert_eq!(d.request(T_OUT, 0, &[(DATA + 0x1000, 512)], false), S_OK);
    assert_eq!(detect_format(b"QFI\xfb"), Some("qcow2"));
    assert_eq!(detect_format(&[0u8; 512]), None);
}

#[test]
fn bad_rings_set_needs_reset_and_reset_clears_everything() {
    let (mut d, _img) = Driver::with_image(64 << 10, false, false);
    d.init(FEATURES);
    // Move the used ring outside guest memory is impossible once ready; set up again instead.
    d.w(0x70, 0);
    assert_eq!(d.r(0x70), 0);
    assert_eq!(d.r(0x044), 0, "reset made the queue not ready");
    d.w(0x70, status::ACKNOWLEDGE | status::DRIVER);
    d.w(0x24, 1);
    d.w(0x20, 1);
    d.w(
        0x70,
        status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
    );
    d.w(0x38, 16);
    d.w(0x84, 0x10); // descriptor table at 64 GiB + 0: outside memory
    d.w(0x44, 1);
    d.w(0x70, OKAY);
    d.w(0x50, 0);
    assert_ne!(d.r(0x70) & status::DEVICE_NEEDS_RESET, 0);
    assert_eq!(d.r(0x060) & 2, 2, "configuration-change interrupt");
    // Queue size not a power of two, or above the maximum: ignored.
    d.w(0x70, 0);
    d.w(0x38, 3);
    d.w(0x38, 512);
    d.w(0x38, 0);
    // Misaligned and narrow register accesses are ignored.
    d.dev.write(0x71, &[1, 0, 0, 0]);
    d.dev.write(0x70, &[1]);
    assert_eq!(d.r(0x70), 0);
}

/// A DISCARD / WRITE_ZEROES request with one segment.
fn zero_request(d: &mut Driver, kind: u32, sector: u64, count: u32, flags: u32) -> u8 {
    let mut seg = [0u8; 16];
    seg[0..8].copy_from_slice(&sector.to_le_bytes());
    seg[8..12].copy_from_slice(&count.to_le_bytes());
    seg[12..16].copy_from_slice(&flags.to_le_bytes());
    d.mem
        .write_slice(&seg, GuestAddress(DATA + 0x2000))
        .unwrap();
    d.request(kind, 0, &[(DATA + 0x2000, 16)], false)
}

fn allocated_bytes(f: &std::fs::File) -> u64 {
    use std::os::unix::fs::MetadataExt;
    f.metadata().unwrap().blocks() * 512
}

#[test]
fn discard_punches_holes_and_write_zeroes_zeroes() {
    let (mut d, img) = Driver::with_config(1 << 20, false, false, true);
    d.w(0x014, 0);
    assert_ne!(
        d.r(0x010) & (1 << 13),
        0,
        "DISCARD offered with discard=unmap"
    );
    let mut cfg = [0u8; 4];
    d.dev.read(0x100 + 44, &mut cfg);
    assert_eq!(u32::from_le_bytes(cfg), DISCARD_ALIGN);
    d.init(FEATURES | F_DISCARD);
    img.write_all_at(&[0x77; 256 << 10], 0).unwrap();
    let before = allocated_bytes(&img);
    assert_eq!(zero_request(&mut d, T_DISCARD, 0, 256, 0), S_OK);
    assert!(
        allocated_bytes(&img) <= before - (128 << 10),
        "the hole was punched"
    );
    let mut b = [0xffu8; 512];
    img.read_exact_at(&mut b, 0).unwrap();
    assert_eq!(b, [0; 512]);
    // WRITE_ZEROES, without and with unmap.
    assert_eq!(zero_request(&mut d, T_WRITE_ZEROES, 256, 8, 0), S_OK);
    assert_eq!(zero_request(&mut d, T_WRITE_ZEROES, 264, 8, 1), S_OK);
    img.read_exact_at(&mut b, 256 * 512).unwrap();
    assert_eq!(b, [0; 512]);
    img.read_exact_at(&mut b, 264 * 512).unwrap();
    assert_eq!(b, [0; 512]);
    img.read_exact_at(&mut b, 272 * 512).unwrap();
    assert_eq!(b, [0x77; 512], "nothing past the range");
    // Hostile segments: unmap on a discard, unknown flags, beyond the image, too long,
    // two segments, none.
    assert_eq!(zero_request(&mut d, T_DISCARD, 0, 8, 1), S_UNSUPP);
    assert_eq!(zero_request(&mut d, T_WRITE_ZEROES, 0, 8, 2), S_UNSUPP);
    assert_eq!(zero_request(&mut d, T_WRITE_ZEROES, 2047, 2, 0), S_IOERR);
    assert_eq!(
        zero_request(&mut d, T_WRITE_ZEROES, u64::MAX, 1, 0),
        S_IOERR
    );
    assert_eq!(zero_request(&mut d, T_DISCARD, 0, u32::MAX, 0), S_IOERR);
    assert_eq!(
        d.request(T_DISCARD, 0, &[(DATA + 0x2000, 32)], false),
        S_UNSUPP
    );
    assert_eq!(d.request(T_DISCARD, 0, &[], false), S_UNSUPP);
    assert_eq!(
        img.metadata().unwrap().len(),
        1 << 20,
        "the image kept its size"
    );
}

#[test]
fn discard_is_refused_unless_enabled_and_nothing_zeroes_a_read_only_drive() {
    let (mut d, img) = Driver::with_image(64 << 10, false, false);
    d.init(FEATURES);
    img.write_all_at(&[0x55; 4096], 0).unwrap();
    assert_eq!(
        zero_request(&mut d, T_DISCARD, 0, 8, 0),
        S_UNSUPP,
        "discard=ignore"
    );
    let (mut d, img) = Driver::with_config(64 << 10, true, false, true);
    d.w(0x014, 0);
    assert_eq!(
        d.r(0x010) & ((1 << 13) | (1 << 14)),
        0,
        "neither offered read-only"
    );
    d.init(F_VERSION_1 | F_RO);
    assert_eq!(zero_request(&mut d, T_WRITE_ZEROES, 0, 8, 0), S_UNSUPP);
    assert_eq!(allocated_bytes(&img), 0);
}

#[test]
fn acpi_fragment_names_lnro0005_with_window_and_edge_interrupt() {
    let mut b = Vec::new();
    VirtioMmioAml {
        index: 1,
        base: 0xe000_1000,
        gsi: 17,
    }
    .to_aml_bytes(&mut b as &mut dyn acpi_tables::AmlSink);
    let find = |needle: &[u8]| b.windows(needle.len()).any(|w| w == needle);
    assert!(find(b"VR01"));
    assert!(find(b"_HID\x0dLNRO0005\0"));
    // Memory32Fixed, read-write, base 0xe0001000, length 0x1000.
    assert!(find(&[
        0x86, 0x09, 0x00, 0x01, 0x00, 0x10, 0x00, 0xe0, 0x00, 0x10, 0x00, 0x00
    ]));
    // Extended interrupt: consumer, edge, active high, exclusive; one GSI, 17.
    assert!(find(&[0x89, 0x06, 0x00, 0x03, 0x01, 17, 0, 0, 0]));
}

proptest::proptest! {
    #[test]
    fn hostile_register_and_ring_traffic_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        run(&data);
    }

    #[test]
    fn hostile_traffic_after_a_proper_setup(ops in proptest::collection::vec(proptest::prelude::any::<[u8; 8]>(), 0..80), first in 0u8..8) {
        let mut data = vec![first | 1];
        for op in ops { data.extend_from_slice(&op); }
        run(&data);
    }
}

/// A directory whose file system takes O_DIRECT (tmpfs did not before Linux 6.6).
fn direct_dir() -> std::path::PathBuf {
    let ok = |d: &std::path::Path| {
        let p = d.join(format!("pmvm-odirect-probe-{}", std::process::id()));
        let r = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(&p)
            .is_ok();
        let _ = std::fs::remove_file(&p);
        r
    };
    let candidates = [
        std::env::temp_dir(),
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    ];
    candidates
        .into_iter()
        .find(|d| ok(d))
        .expect("no directory here takes O_DIRECT (needed to test cache=none)")
}

#[test]
fn cache_none_uses_o_direct_for_aligned_pieces_and_the_page_cache_for_the_rest() {
    let path = direct_dir().join(format!("pmvm-cache-none-{}.raw", std::process::id()));
    std::fs::File::create(&path)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let cfg = |cache| DriveConfig {
        id: "virtio0".into(),
        file: path.clone(),
        index: 0,
        readonly: false,
        cache,
        format_given: true,
        cdrom: false,
        if_ide: false,
        discard: false,
        bootindex: None,
    };
    let (block, _) = Block::open(&cfg(DriveCache::None), 0).expect("open with cache=none");
    assert!(block.direct.is_some(), "an O_DIRECT descriptor");
    let mut d = Driver::new(block);
    d.init(FEATURES);
    // Aligned: a 4 KiB buffer at a 4 KiB guest address, to a 4 KiB image offset.
    let page: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    d.mem
        .write_slice(&page, GuestAddress(DATA + 0x1000))
        .unwrap();
    assert_eq!(d.request(T_OUT, 8, &[(DATA + 0x1000, 4096)], false), S_OK);
    // Unaligned: 512 bytes at sector 1, from an odd guest address.
    d.mem
        .write_slice(&[0xab; 512], GuestAddress(DATA + 0x2001))
        .unwrap();
    assert_eq!(d.request(T_OUT, 1, &[(DATA + 0x2001, 512)], false), S_OK);
    assert_eq!(d.request(T_FLUSH, 0, &[], false), S_OK);
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(&on_disk[4096..8192], &page[..]);
    assert_eq!(&on_disk[512..1024], &[0xab; 512][..]);
    // Read both back the other way round (aligned read over the unaligned write's page).
    assert_eq!(d.request(T_IN, 0, &[(DATA + 0x3000, 4096)], true), S_OK);
    let mut back = vec![0u8; 4096];
    d.mem
        .read_slice(&mut back, GuestAddress(DATA + 0x3000))
        .unwrap();
    assert_eq!(&back[512..1024], &[0xab; 512][..]);
    assert_eq!(d.request(T_IN, 8, &[(DATA + 0x5001, 4096)], true), S_OK);
    d.mem
        .read_slice(&mut back, GuestAddress(DATA + 0x5001))
        .unwrap();
    assert_eq!(back, page);
    drop(d);
    let _ = std::fs::remove_file(&path);
    // directsync is O_DIRECT too; writeback is not.
    std::fs::File::create(&path)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    assert!(
        Block::open(&cfg(DriveCache::DirectSync), 0)
            .unwrap()
            .0
            .direct
            .is_some()
    );
    assert!(
        Block::open(&cfg(DriveCache::Writeback), 0)
            .unwrap()
            .0
            .direct
            .is_none()
    );
    let _ = std::fs::remove_file(&path);
}
