//! Fuzz entry point: hostile port accesses against a device with a few files over a small
//! guest memory. Shared by the cargo-fuzz target and the property tests.

use crate::acpi::{self, AcpiTableSet};
use crate::table_loader;
use crate::{FwCfg, VecMem, interp};

/// Guest memory the fuzzer's DMA can reach: 64 KiB at 0x1000.
const MEM_BASE: u64 = 0x1000;
const MEM_LEN: usize = 0x1_0000;

/// A device with the usual files, one writable.
fn fuzz_device() -> FwCfg<VecMem> {
    let mut fw = FwCfg::new(VecMem::new(MEM_BASE, MEM_LEN));
    // The names and items are fixed and valid; errors cannot happen here.
    let _ = fw.add_u16(crate::keys::NB_CPUS, 2);
    let _ = fw.add_file("etc/e820", crate::e820::encode(&[]));
    let _ = fw.add_file(
        "bootorder",
        b"/virtio-mmio@00000000d0000000/virtio-blk@0\0".to_vec(),
    );
    let _ = fw.add_file_writable("etc/ramfb", vec![0u8; 28]);
    let _ = fw.add_file("big", vec![0xa5; 5000]);
    fw
}

/// Interprets `data` as a sequence of port accesses:
/// `[op, offset, len, bytes...]` where `op & 1` is read/write, offsets and lengths are
/// taken modulo small ranges so most accesses hit real registers. DMA addresses come
/// from the data too, so they point anywhere, including at the fake memory.
pub fn fuzz_ports(data: &[u8]) {
    let mut fw = fuzz_device();
    let mut it = data.iter().copied();
    let mut steps = 0usize;
    while let (Some(op), Some(off), Some(len)) = (it.next(), it.next(), it.next()) {
        steps += 1;
        if steps > 4096 {
            break;
        }
        let offset = u64::from(off % 14);
        let len = [1usize, 2, 4, 8][usize::from(len % 4)];
        if op & 1 == 0 {
            let mut buf = [0u8; 8];
            fw.pio_read(offset, &mut buf[..len]);
        } else {
            let mut buf = [0u8; 8];
            for b in buf.iter_mut().take(len) {
                *b = it.next().unwrap_or(0);
            }
            // Bias DMA address writes towards the fake memory.
            if op & 2 != 0 && offset == 8 && len == 4 {
                let a = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                let a = MEM_BASE as u32 + (a % MEM_LEN as u32);
                buf[..4].copy_from_slice(&a.to_be_bytes());
            }
            fw.pio_write(offset, &buf[..len]);
        }
        if op & 0x80 != 0 {
            // Let the guest lay out a DMA descriptor in memory directly.
            let mut d = [0u8; 16];
            for b in d.iter_mut() {
                *b = it.next().unwrap_or(0);
            }
            let at = MEM_BASE + u64::from(op & 0x70) * 16;
            let _ = crate::GuestMem::write(fw.mem(), at, &d);
        }
    }
    let _ = fw.take_written_files();
    let _ = fw.file("etc/ramfb");
}

/// Runs hostile bytes as a linker/loader script over the files of a small ACPI set.
pub fn fuzz_loader_script(data: &[u8]) {
    let mut set = AcpiTableSet::new(*b"PMVM  ", *b"PMVMFUZZ", 1);
    let mut madt = vec![0u8; 44];
    madt[0..4].copy_from_slice(b"APIC");
    madt[4] = 44;
    set.tables.push(madt);
    let Ok(blobs) = acpi::build_acpi(&set) else {
        return;
    };
    let files = |n: &str| match n {
        table_loader::ACPI_TABLES_FILE => Some(blobs.tables.clone()),
        table_loader::ACPI_RSDP_FILE => Some(blobs.rsdp.clone()),
        "etc/wp" => Some(vec![0u8; 8]),
        _ => None,
    };
    let script = &data[..data.len() - data.len() % table_loader::ENTRY_LEN];
    if let Ok(l) = interp::run(script, files, interp::Zones::default()) {
        let _ = interp::check_acpi(&l);
    }
}
