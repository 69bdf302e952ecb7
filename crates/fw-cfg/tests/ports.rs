//! Property tests: hostile port sequences never panic, never grow memory, and the
//! data port agrees with the items.

use fw_cfg::{FwCfg, GuestMem, VecMem, dma_ctl, port_offset};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes_drive_the_ports(data in prop::collection::vec(any::<u8>(), 0..4096)) {
        fw_cfg::fuzz_ports(&data);
    }

    #[test]
    fn random_accesses_keep_items_intact(
        ops in prop::collection::vec((0u64..16, prop::collection::vec(any::<u8>(), 0..9), any::<bool>()), 0..300),
    ) {
        let mut fw = FwCfg::new(VecMem::new(0x1000, 0x2000));
        let file: Vec<u8> = (0..200u8).collect();
        fw.add_file("etc/a", file.clone()).unwrap();
        fw.add_file_writable("etc/w", vec![0; 16]).unwrap();
        let dir = fw.directory().to_vec();
        for (off, mut bytes, write) in ops {
            if write {
                fw.pio_write(off, &bytes);
            } else {
                fw.pio_read(off, &mut bytes);
            }
        }
        // Read-only items are unchanged; the writable one kept its size.
        prop_assert_eq!(fw.file("etc/a"), Some(&file[..]));
        prop_assert_eq!(fw.file("etc/w").map(<[u8]>::len), Some(16));
        prop_assert_eq!(fw.directory(), &dir[..]);
        prop_assert!(fw.take_written_files().len() <= 1);
    }

    #[test]
    fn data_port_reads_the_item_then_zeros(start in 0usize..300, n in 0usize..300) {
        let mut fw = FwCfg::new(VecMem::new(0, 0));
        let file: Vec<u8> = (0..200).map(|i| (i * 7 + 1) as u8).collect();
        fw.add_file("f", file.clone()).unwrap();
        let key = fw.file_key("f").unwrap();
        fw.pio_write(port_offset::SELECTOR, &key.to_le_bytes());
        for _ in 0..start {
            let _ = fw.read_data();
        }
        for i in start..start + n {
            let mut b = [0u8];
            fw.pio_read(port_offset::DATA, &mut b);
            prop_assert_eq!(b[0], file.get(i).copied().unwrap_or(0));
        }
    }

    #[test]
    fn dma_read_matches_the_data_port(skip in 0u32..250, len in 0u32..300) {
        let mem = VecMem::new(0x1000, 0x1000);
        let mut fw = FwCfg::new(&mem);
        let file: Vec<u8> = (0..200).map(|i| (i * 13 + 5) as u8).collect();
        fw.add_file("f", file.clone()).unwrap();
        let key = u32::from(fw.file_key("f").unwrap());
        let kick = |fw: &mut FwCfg<&VecMem>, ctl: u32, len: u32, addr: u64| {
            let mut d = ctl.to_be_bytes().to_vec();
            d.extend_from_slice(&len.to_be_bytes());
            d.extend_from_slice(&addr.to_be_bytes());
            mem.write(0x1000, &d).unwrap();
            fw.pio_write(port_offset::DMA_LOW, &0x1000u32.to_be_bytes());
        };
        kick(&mut fw, (key << 16) | dma_ctl::SELECT | dma_ctl::SKIP, skip, 0);
        kick(&mut fw, dma_ctl::READ, len, 0x1100);
        let mut got = vec![0u8; len as usize];
        mem.read(0x1100, &mut got).unwrap();
        let want: Vec<u8> = (skip as usize..(skip + len) as usize)
            .map(|i| file.get(i).copied().unwrap_or(0))
            .collect();
        prop_assert_eq!(got, want);
    }
}
