//! Golden tests of the fw_cfg device: exact bytes the guest sees on the ports and through DMA.

use fw_cfg::{FwCfg, FwCfgError, GuestMem, VecMem, dma_ctl, keys, port_offset};

const MEM: u64 = 0x10_0000;

fn dev() -> FwCfg<VecMem> {
    FwCfg::new(VecMem::new(MEM, 0x1_0000))
}

fn select(fw: &mut FwCfg<VecMem>, key: u16) {
    fw.pio_write(port_offset::SELECTOR, &key.to_le_bytes());
}

fn read_n(fw: &mut FwCfg<VecMem>, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            let mut b = [0u8];
            fw.pio_read(port_offset::DATA, &mut b);
            b[0]
        })
        .collect()
}

/// Writes an FWCfgDmaAccess at `at` and kicks it the way SeaBIOS does (low half only).
fn dma(fw: &mut FwCfg<VecMem>, at: u64, control: u32, len: u32, addr: u64) -> u32 {
    let mut d = Vec::new();
    d.extend_from_slice(&control.to_be_bytes());
    d.extend_from_slice(&len.to_be_bytes());
    d.extend_from_slice(&addr.to_be_bytes());
    fw.mem().write(at, &d).unwrap();
    fw.pio_write(port_offset::DMA_LOW, &(at as u32).to_be_bytes());
    let mut c = [0u8; 4];
    fw.mem().read(at, &mut c).unwrap();
    u32::from_be_bytes(c)
}

fn mem_bytes(fw: &FwCfg<VecMem>, at: u64, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    fw.mem().read(at, &mut b).unwrap();
    b
}

#[test]
fn signature_and_id() {
    let mut fw = dev();
    // Reset state selects the signature.
    assert_eq!(read_n(&mut fw, 4), b"QEMU");
    select(&mut fw, keys::SIGNATURE);
    assert_eq!(read_n(&mut fw, 6), b"QEMU\0\0");
    select(&mut fw, keys::ID);
    assert_eq!(read_n(&mut fw, 4), [3, 0, 0, 0]);
    fw.set_dma_enabled(false);
    select(&mut fw, keys::ID);
    assert_eq!(read_n(&mut fw, 4), [1, 0, 0, 0]);
}

#[test]
fn dma_register_reads_signature() {
    let mut fw = dev();
    let mut b = [0u8; 4];
    fw.pio_read(port_offset::DMA_HIGH, &mut b);
    assert_eq!(&b, b"QEMU");
    fw.pio_read(port_offset::DMA_LOW, &mut b);
    assert_eq!(&b, b" CFG");
    let mut one = [0u8; 1];
    fw.pio_read(5, &mut one);
    assert_eq!(one, [b'E']);
}

#[test]
fn directory_golden_bytes_sorted_by_name() {
    let mut fw = dev();
    fw.add_file("etc/table-loader", vec![1; 3]).unwrap();
    fw.add_file("bootorder", vec![2; 0x102]).unwrap();
    fw.add_file_writable("etc/acpi/rsdp", vec![3; 36]).unwrap();
    let mut want = vec![0, 0, 0, 3];
    for (size, key, name) in [
        (0x102u32, 0x20u16, "bootorder"),
        (36, 0x21, "etc/acpi/rsdp"),
        (3, 0x22, "etc/table-loader"),
    ] {
        want.extend_from_slice(&size.to_be_bytes());
        want.extend_from_slice(&key.to_be_bytes());
        want.extend_from_slice(&[0, 0]);
        let mut n = [0u8; 56];
        n[..name.len()].copy_from_slice(name.as_bytes());
        want.extend_from_slice(&n);
    }
    assert_eq!(fw.directory(), &want[..]);
    select(&mut fw, keys::FILE_DIR);
    assert_eq!(
        read_n(&mut fw, want.len() + 2),
        [&want[..], &[0, 0]].concat()
    );
    assert_eq!(fw.file_key("etc/table-loader"), Some(0x22));
    select(&mut fw, 0x22);
    assert_eq!(read_n(&mut fw, 4), [1, 1, 1, 0]);
    // The write-channel bit is ignored when selecting.
    select(&mut fw, 0x22 | keys::WRITE_CHANNEL);
    assert_eq!(read_n(&mut fw, 1), [1]);
}

#[test]
fn host_errors() {
    let mut fw = dev();
    assert_eq!(fw.add_file("", vec![]), Err(FwCfgError::NameEmpty));
    assert!(matches!(
        fw.add_file(&"x".repeat(56), vec![]),
        Err(FwCfgError::NameTooLong { len: 56, .. })
    ));
    assert!(fw.add_file(&"x".repeat(55), vec![]).is_ok());
    assert!(matches!(
        fw.add_file(&"x".repeat(55), vec![]),
        Err(FwCfgError::DuplicateFile(_))
    ));
    assert_eq!(
        fw.add_bytes(keys::SIGNATURE, vec![1]),
        Err(FwCfgError::ReservedKey(0))
    );
    assert_eq!(
        fw.add_bytes(keys::FILE_DIR, vec![1]),
        Err(FwCfgError::ReservedKey(0x19))
    );
    assert_eq!(
        fw.add_bytes(0x20, vec![1]),
        Err(FwCfgError::ReservedKey(0x20))
    );
    fw.add_u16(keys::NB_CPUS, 4).unwrap();
    assert_eq!(
        fw.add_u16(keys::NB_CPUS, 4),
        Err(FwCfgError::DuplicateKey(5))
    );
    fw.add_u32(keys::ARCH_LOCAL | 3, 0).unwrap();
    assert_eq!(fw.item(keys::NB_CPUS), Some(&[4u8, 0][..]));
    assert!(matches!(
        fw.modify_file("nope", vec![]),
        Err(FwCfgError::NoSuchFile(_))
    ));
}

#[test]
fn dma_read_of_a_file_with_select() {
    let mut fw = dev();
    let data: Vec<u8> = (0..100u8).collect();
    fw.add_file("etc/e820", data.clone()).unwrap();
    let key = fw.file_key("etc/e820").unwrap();
    let ctl = (u32::from(key) << 16) | dma_ctl::SELECT | dma_ctl::READ;
    assert_eq!(dma(&mut fw, MEM, ctl, 60, MEM + 0x100), 0);
    assert_eq!(mem_bytes(&fw, MEM + 0x100, 60), &data[..60]);
    // Continue without select; past the end reads as zeros.
    fw.mem().write(MEM + 0x200, &[0xff; 50]).unwrap();
    assert_eq!(dma(&mut fw, MEM, dma_ctl::READ, 50, MEM + 0x200), 0);
    assert_eq!(
        mem_bytes(&fw, MEM + 0x200, 50),
        [&data[60..], &[0u8; 10][..]].concat()
    );
    // Skip then read, as SeaBIOS's qemu_cfg_skip does.
    let ctl = (u32::from(key) << 16) | dma_ctl::SELECT | dma_ctl::SKIP;
    assert_eq!(dma(&mut fw, MEM, ctl, 90, 0), 0);
    assert_eq!(dma(&mut fw, MEM, dma_ctl::READ, 10, MEM + 0x300), 0);
    assert_eq!(mem_bytes(&fw, MEM + 0x300, 10), &data[90..]);
    // A 64-bit address write also triggers.
    let mut d = Vec::new();
    d.extend_from_slice(&((u32::from(key) << 16) | dma_ctl::SELECT | dma_ctl::READ).to_be_bytes());
    d.extend_from_slice(&4u32.to_be_bytes());
    d.extend_from_slice(&(MEM + 0x400).to_be_bytes());
    fw.mem().write(MEM + 0x40, &d).unwrap();
    fw.pio_write(port_offset::DMA_HIGH, &(MEM + 0x40).to_be_bytes());
    assert_eq!(mem_bytes(&fw, MEM + 0x400, 4), &data[..4]);
    assert_eq!(mem_bytes(&fw, MEM + 0x40, 4), [0; 4]);
}

#[test]
fn dma_write_to_writable_file() {
    let mut fw = dev();
    fw.add_file_writable("etc/ramfb", vec![0u8; 28]).unwrap();
    fw.add_file("etc/ro", vec![7u8; 8]).unwrap();
    let key = fw.file_key("etc/ramfb").unwrap();
    fw.mem().write(MEM + 0x100, &[0xab; 28]).unwrap();
    let ctl = (u32::from(key) << 16) | dma_ctl::SELECT | dma_ctl::WRITE;
    assert_eq!(dma(&mut fw, MEM, ctl, 28, MEM + 0x100), 0);
    assert_eq!(fw.file("etc/ramfb"), Some(&[0xab; 28][..]));
    assert_eq!(fw.take_written_files(), vec!["etc/ramfb".to_string()]);
    assert!(fw.take_written_files().is_empty());
    // Past the end: error, nothing written.
    fw.mem().write(MEM + 0x100, &[0x11; 29]).unwrap();
    assert_eq!(dma(&mut fw, MEM, ctl, 29, MEM + 0x100), dma_ctl::ERROR);
    assert_eq!(fw.file("etc/ramfb"), Some(&[0xab; 28][..]));
    // Offset writes after a skip.
    let skip = (u32::from(key) << 16) | dma_ctl::SELECT | dma_ctl::SKIP;
    assert_eq!(dma(&mut fw, MEM, skip, 20, 0), 0);
    assert_eq!(dma(&mut fw, MEM, dma_ctl::WRITE, 8, MEM + 0x100), 0);
    assert_eq!(
        fw.file("etc/ramfb").unwrap(),
        [&[0xab; 20][..], &[0x11; 8][..]].concat()
    );
    // Read-only file: error bit, contents unchanged.
    let ro = (u32::from(fw.file_key("etc/ro").unwrap()) << 16) | dma_ctl::SELECT | dma_ctl::WRITE;
    assert_eq!(dma(&mut fw, MEM, ro, 4, MEM + 0x100), dma_ctl::ERROR);
    assert_eq!(fw.file("etc/ro"), Some(&[7u8; 8][..]));
    // Well-known keys are never writable.
    let sig = dma_ctl::SELECT | dma_ctl::WRITE;
    assert_eq!(dma(&mut fw, MEM, sig, 4, MEM + 0x100), dma_ctl::ERROR);
}

#[test]
fn dma_errors_on_bad_addresses() {
    let mut fw = dev();
    fw.add_file("f", vec![1u8; 16]).unwrap();
    let key = u32::from(fw.file_key("f").unwrap());
    // Destination outside guest memory.
    let ctl = (key << 16) | dma_ctl::SELECT | dma_ctl::READ;
    assert_eq!(dma(&mut fw, MEM, ctl, 16, 0xdead_0000), dma_ctl::ERROR);
    // Destination that wraps around the address space.
    assert_eq!(dma(&mut fw, MEM, ctl, 16, u64::MAX - 4), dma_ctl::ERROR);
    // Huge length past the end of memory: error after filling what exists.
    assert_eq!(
        dma(&mut fw, MEM, ctl, u32::MAX, MEM + 0x100),
        dma_ctl::ERROR
    );
    // Unknown control bits are ignored; no operation means nothing happens.
    assert_eq!(dma(&mut fw, MEM, 0xffe0_0000 | 0x20, 16, 0), 0);
    // A descriptor outside memory: nothing to write the status to, but no panic.
    assert_eq!(fw.dma(0xffff_ffff_ffff_fff8), dma_ctl::ERROR);
    // Selecting a key that does not exist and reading: zeros, success (like QEMU).
    fw.mem().write(MEM + 0x100, &[9; 8]).unwrap();
    let ctl = (0x3fffu32 << 16) | dma_ctl::SELECT | dma_ctl::READ;
    assert_eq!(dma(&mut fw, MEM, ctl, 8, MEM + 0x100), 0);
    assert_eq!(mem_bytes(&fw, MEM + 0x100, 8), [0; 8]);
}

#[test]
fn dma_address_halves_and_reset() {
    let mut fw = dev();
    fw.add_file("f", vec![5u8; 4]).unwrap();
    let key = u32::from(fw.file_key("f").unwrap());
    let mut d = Vec::new();
    d.extend_from_slice(&((key << 16) | dma_ctl::SELECT | dma_ctl::READ).to_be_bytes());
    d.extend_from_slice(&4u32.to_be_bytes());
    d.extend_from_slice(&(MEM + 0x800).to_be_bytes());
    fw.mem().write(MEM + 0x80, &d).unwrap();
    // A high half that points nowhere, then the low half: the transfer fails...
    fw.pio_write(port_offset::DMA_HIGH, &1u32.to_be_bytes());
    fw.pio_write(port_offset::DMA_LOW, &((MEM + 0x80) as u32).to_be_bytes());
    assert_eq!(mem_bytes(&fw, MEM + 0x800, 4), [0; 4]);
    // ...and the latched address is cleared, so a low-only write works next.
    fw.pio_write(port_offset::DMA_LOW, &((MEM + 0x80) as u32).to_be_bytes());
    assert_eq!(mem_bytes(&fw, MEM + 0x800, 4), [5; 4]);
    // Odd sizes are ignored.
    fw.pio_write(port_offset::DMA_LOW, &[1, 2]);
    fw.pio_write(port_offset::DATA, &[1]);
    fw.reset();
    assert_eq!(read_n(&mut fw, 4), b"QEMU");
}

#[test]
fn dma_disabled_ignores_the_registers() {
    let mut fw = dev();
    fw.set_dma_enabled(false);
    let mut b = [0xffu8; 4];
    fw.pio_read(port_offset::DMA_HIGH, &mut b);
    assert_eq!(b, [0; 4]);
    fw.mem()
        .write(MEM, &(dma_ctl::READ | 0x100).to_be_bytes())
        .unwrap();
    fw.pio_write(port_offset::DMA_LOW, &(MEM as u32).to_be_bytes());
    assert_eq!(
        mem_bytes(&fw, MEM, 4),
        (dma_ctl::READ | 0x100).to_be_bytes()
    );
}

#[test]
fn modify_file_updates_directory() {
    let mut fw = dev();
    fw.add_file("bootorder", vec![]).unwrap();
    fw.modify_file("bootorder", b"/x\0".to_vec()).unwrap();
    assert_eq!(&fw.directory()[4..8], &3u32.to_be_bytes());
    assert_eq!(fw.item(0x20), Some(&b"/x\0"[..]));
}

#[test]
fn directory_is_bounded() {
    let mut fw = dev();
    for i in 0..fw_cfg::MAX_FILES {
        fw.add_file(&format!("f{i:05}"), vec![]).unwrap();
    }
    assert_eq!(fw.add_file("z", vec![]), Err(FwCfgError::TooManyFiles));
    let last = fw
        .file_key(&format!("f{:05}", fw_cfg::MAX_FILES - 1))
        .unwrap();
    assert_eq!(usize::from(last), 0x20 + fw_cfg::MAX_FILES - 1);
    assert!(last < keys::WRITE_CHANNEL);
}
