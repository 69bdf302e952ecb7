//! Unit tests for placement (golden GPAs and QEMU error texts).

use super::*;
use crate::{GIB, KIB, MIB, nvdimm_split};

fn nv(id: &str, size: u64, align: u64) -> MemoryDeviceRequest {
    MemoryDeviceRequest {
        id: id.into(),
        kind: DeviceKind::Nvdimm,
        size,
        align,
        slot: None,
        addr: None,
    }
}

#[test]
fn seed_example_two_nvdimms_and_hotplug() {
    // -m 4G,slots=4,maxmem=32G; two size=4G,label-size=2M file backends (4 KiB pages).
    let mut dm = DeviceMemory::new(4 * GIB, 4, 32 * GIB).unwrap();
    let pmem = nvdimm_split(4 * GIB, 2 * MIB, 4 * KIB).unwrap().pmem_size;
    let a = dm.plug(&nv("nv1", pmem, 4 * KIB)).unwrap();
    let b = dm.plug(&nv("nv2", pmem, 4 * KIB)).unwrap();
    assert_eq!(
        a,
        Placement {
            slot: 0,
            gpa: 0x1_4000_0000,
            size: 0xFFE0_0000
        }
    );
    assert_eq!(
        b,
        Placement {
            slot: 1,
            gpa: 0x2_3FE0_0000,
            size: 0xFFE0_0000
        }
    );
    // Hotplug of a third, label-less 4G NVDIMM (seed's object_add/device_add).
    let c = dm.plug(&nv("nvdimm2", 4 * GIB, 4 * KIB)).unwrap();
    assert_eq!(
        c,
        Placement {
            slot: 2,
            gpa: 0x3_3FC0_0000,
            size: 4 * GIB
        }
    );
    // A fourth device breaks the seed's slots rule (1 RAM + 4 devices > 4).
    let e = dm.plug(&nv("nv4", GIB, 4 * KIB)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "-m slots=4 is too small: 1 RAM + 4 memory device(s) (including 'nv4') need at least slots=5 \
         (slots must be >= RAM devices + NVDIMM devices, hot-plugged ones included)"
    );
    // Under plain QEMU rules it fits (slot 3).
    let mut q = dm.clone().with_slot_rule(SlotRule::Qemu);
    assert_eq!(q.plug(&nv("nv4", GIB, 4 * KIB)).unwrap().slot, 3);
    assert_eq!(dm.iter().count(), 3);
}

#[test]
fn aligned_first_fit() {
    let mut dm = DeviceMemory::new(GIB, 8, 16 * GIB).unwrap();
    let p1 = dm.plug(&nv("a", 126 * MIB, 2 * MIB)).unwrap();
    assert_eq!(p1.gpa, 4 * GIB);
    // 1 GiB-aligned device is pushed past 'a' to the next GiB.
    let p2 = dm.plug(&nv("b", GIB, GIB)).unwrap();
    assert_eq!(p2.gpa, 5 * GIB);
    // A 2 MiB-aligned device fills the hole between 'a' and 'b'.
    let p3 = dm.plug(&nv("c", 64 * MIB, 2 * MIB)).unwrap();
    assert_eq!(p3.gpa, 4 * GIB + 126 * MIB);
    assert_eq!((p1.slot, p2.slot, p3.slot), (0, 1, 2));
}

#[test]
fn explicit_slot_and_addr() {
    let mut dm = DeviceMemory::new(GIB, 4, 9 * GIB).unwrap();
    let mut r = nv("a", GIB, 2 * MIB);
    r.slot = Some(2);
    r.addr = Some(6 * GIB);
    assert_eq!(
        dm.plug(&r).unwrap(),
        Placement {
            slot: 2,
            gpa: 6 * GIB,
            size: GIB
        }
    );
    // Auto slot = lowest free (0), first fit below 'a'.
    assert_eq!(
        dm.plug(&nv("b", GIB, 2 * MIB)).unwrap(),
        Placement {
            slot: 0,
            gpa: 4 * GIB,
            size: GIB
        }
    );

    let mut busy = nv("c", GIB, 2 * MIB);
    busy.slot = Some(2);
    assert_eq!(
        dm.plug(&busy).unwrap_err().to_string(),
        "slot 2 is busy; memory device 'a' uses it, pick another slot= or omit it"
    );
    busy.slot = Some(4);
    assert!(
        dm.plug(&busy)
            .unwrap_err()
            .to_string()
            .starts_with("invalid slot number 4, valid range is [0-3];")
    );

    let mut conflict = nv("d", GIB, 2 * MIB);
    conflict.addr = Some(6 * GIB + 512 * MIB);
    assert!(
        dm.plug(&conflict)
            .unwrap_err()
            .to_string()
            .starts_with("address range conflicts with memory device id='a';")
    );
    conflict.addr = Some(6 * GIB + 4 * KIB);
    assert!(
        dm.plug(&conflict)
            .unwrap_err()
            .to_string()
            .starts_with("address must be aligned to 0x200000 bytes;")
    );
    conflict.addr = Some(2 * GIB);
    assert!(dm.plug(&conflict).unwrap_err().to_string().starts_with(
        "can't add memory device [0x80000000:0x40000000], usable range for memory devices [0x100000000:0x300000000];"
    ));
    assert_eq!(dm.iter().count(), 2, "failed plugs leave no trace");
}

#[test]
fn capacity_and_window_errors() {
    let mut dm = DeviceMemory::new(4 * GIB, 3, 8 * GIB).unwrap();
    dm.plug(&nv("a", 3 * GIB, 4 * KIB)).unwrap();
    let e = dm.plug(&nv("b", 2 * GIB, 4 * KIB)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "not enough space, currently 0xc0000000 in use of total space for memory devices 0x100000000; \
         -m maxmem=8G is too small for RAM 4G + memory devices 5G (with 'b' of 2G): need maxmem >= 9G"
    );

    let mut none = DeviceMemory::new(4 * GIB, 0, 4 * GIB).unwrap();
    let e = none
        .plug(&nv("nv1", 4 * GIB - 2 * MIB, 4 * KIB))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the configuration is not prepared for memory devices (e.g., for memory hotplug), consider \
         specifying the maxmem option; for memory device 'nv1' start with e.g. -m 4G,slots=2,maxmem=8G"
    );
    let mut noslots = DeviceMemory::new(4 * GIB, 0, 8 * GIB).unwrap();
    assert!(
        noslots
            .plug(&nv("x", GIB, 4 * KIB))
            .unwrap_err()
            .to_string()
            .starts_with("no slots where allocated, please specify the 'slots' option")
    );

    let mut full = DeviceMemory::new(GIB, 1, 3 * GIB)
        .unwrap()
        .with_slot_rule(SlotRule::Qemu);
    full.plug(&nv("a", GIB, 4 * KIB)).unwrap();
    assert!(
        full.plug(&nv("b", GIB, 4 * KIB))
            .unwrap_err()
            .to_string()
            .starts_with("no free slots available;")
    );
    assert!(matches!(
        full.plug(&nv("a", GIB, 4 * KIB)),
        Err(LayoutError::DuplicateId { .. })
    ));
}

#[test]
fn alignment_errors_and_fragmentation() {
    let mut dm = DeviceMemory::new(GIB, 2, 2 * GIB)
        .unwrap()
        .with_slot_rule(SlotRule::Qemu);
    assert!(matches!(
        dm.plug(&nv("a", 3 * MIB, 3 * MIB)),
        Err(LayoutError::BadAlign { .. })
    ));
    assert!(dm.plug(&nv("a", 3 * MIB, 2 * MIB)).unwrap_err().to_string().starts_with(
        "backend memory size must be multiple of 0x200000; 'a' has 0x300000, use size=2M or size=4M"
    ));
    // Window = 1 GiB + 2 GiB slack; an 8 GiB alignment cannot be met inside it.
    let e = dm.plug(&nv("big", 8 * GIB, 8 * GIB));
    assert!(matches!(e, Err(LayoutError::NotEnoughSpace { .. })));
    // Window [4G, 14G): an 8G device aligned to 8G would need [8G, 16G).
    let mut dm = DeviceMemory::new(GIB, 2, 9 * GIB)
        .unwrap()
        .with_slot_rule(SlotRule::Qemu);
    let e = dm.plug(&nv("x", 8 * GIB, 8 * GIB)).unwrap_err();
    assert!(
        e.to_string().starts_with(
            "could not find position in guest address space for memory device - memory fragmented"
        ),
        "{e}"
    );
    assert!(
        dm.plug(&nv("y", GIB, 8 * GIB))
            .unwrap_err()
            .to_string()
            .ends_with("use size=8G")
    );
    assert_eq!(alignment_warning(GIB), None);
    assert!(
        alignment_warning(2 * GIB)
            .unwrap()
            .starts_with("the alignment (0x80000000) exceeds the expected maximum alignment")
    );
}

#[test]
fn unplug_rules() {
    let mut dm = DeviceMemory::new(GIB, 4, 8 * GIB).unwrap();
    dm.plug(&nv("n", GIB, 4 * KIB)).unwrap();
    let mut d = nv("d", GIB, 2 * MIB);
    d.kind = DeviceKind::PcDimm;
    dm.plug(&d).unwrap();
    assert_eq!(
        dm.unplug("n").unwrap_err().to_string(),
        "nvdimm device hot unplug is not supported yet.; stop the guest to remove 'n'"
    );
    assert_eq!(dm.unplug("d").unwrap().placement.slot, 1);
    assert!(matches!(
        dm.unplug("zz"),
        Err(LayoutError::UnknownId { .. })
    ));
    assert_eq!(dm.forget("n").unwrap().id, "n");
    assert_eq!(dm.used(), 0);
}
