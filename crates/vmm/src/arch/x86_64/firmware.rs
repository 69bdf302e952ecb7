//! Firmware boot: SeaBIOS built for QEMU's microvm (`bios-microvm.bin`, Debian's `seabios`
//! package) boots an installed OS from its disk or an installer ISO, as QEMU's microvm does.
//!
//! * The image is mapped read-only at 4 GiB - size, so the reset vector 0xffff_fff0 is in it,
//!   and its last 128 KiB are copied into RAM at 1 MiB - 128 KiB (0xe_0000), writable: SeaBIOS
//!   runs from that low alias and writes its F segment there (QEMU's microvm does the same,
//!   `x86_bios_rom_init` with a RAM copy; there is no PAM to unlock without a host bridge).
//! * vCPU 0 stays in KVM's reset state (real mode, CS:IP = F000:FFF0).
//! * The firmware learns the machine through fw_cfg (`devices/fw_cfg.rs`): CPU counts, the
//!   e820 map, the boot order, the ACPI tables through the table loader.
//!
//! docs/firmware-boot.md has the design and the sources of these facts.

use std::path::Path;

use fw_cfg::e820::E820Entry as FwE820;
use fw_cfg::{FwCfg, keys};
use vm_config::VmConfig;
use vm_memory::{Bytes, GuestAddress};

use super::boot::E820Entry;
use super::error::{BootError, Result};
use super::layout::{FOUR_GIB, KVM_IDENTITY_MAP_ADDR, KVM_TSS_ADDR};
use crate::devices::fw_cfg::FwCfgMem;
use crate::memory::GuestRam;

/// The low alias of the image ends at 1 MiB.
const LOW_ALIAS_END: u64 = 0x10_0000;
/// At most this much of the image's end is copied below 1 MiB (the E and F segments).
const LOW_ALIAS_MAX: usize = 128 << 10;
/// KVM's identity-map page and three TSS pages, which the firmware must not use.
const KVM_PAGES_END: u64 = KVM_TSS_ADDR + 3 * 4096;

/// A firmware image read from disk.
pub struct FirmwareImage {
    pub bytes: Vec<u8>,
}

impl FirmwareImage {
    /// Reads the image and checks its size again (vm-config checked it at parse time; the file
    /// may have changed since, and a reset reads it again).
    pub fn load(path: &Path) -> Result<FirmwareImage> {
        let fail = |why: String| BootError::Firmware {
            path: path.to_path_buf(),
            why,
        };
        let bytes =
            std::fs::read(path).map_err(|e| fail(format!("could not load the BIOS: {e}")))?;
        let len = bytes.len() as u64;
        if len == 0 || !len.is_multiple_of(4096) || len > vm_config::MAX_FIRMWARE_SIZE {
            return Err(fail(format!(
                "{len} bytes: a firmware image must be a non-empty multiple of 4 KiB of at most {} KiB",
                vm_config::MAX_FIRMWARE_SIZE >> 10
            )));
        }
        Ok(FirmwareImage { bytes })
    }

    /// Where the image is mapped: right below 4 GiB.
    pub fn rom_gpa(&self) -> u64 {
        FOUR_GIB - self.bytes.len() as u64
    }

    /// Copies the image's last 128 KiB (or all of a smaller image) to end at 1 MiB.
    pub fn copy_low_alias(&self, mem: &GuestRam) -> Result<()> {
        let n = self.bytes.len().min(LOW_ALIAS_MAX);
        let tail = &self.bytes[self.bytes.len() - n..];
        mem.write_slice(tail, GuestAddress(LOW_ALIAS_END - n as u64))
            .map_err(|e| BootError::write("the firmware's low alias", e))
    }
}

/// `etc/e820`: the direct-boot map (RAM, the EBDA-to-1 MiB area, the mailbox, high RAM) plus
/// KVM's TSS and identity-map pages as reserved: once `etc/e820` exists SeaBIOS reserves only
/// 0xfffc_0000-4 GiB itself, and an OS that used those pages would fault mysteriously.
pub fn firmware_e820(map: &[E820Entry]) -> Vec<FwE820> {
    let mut out: Vec<FwE820> = map
        .iter()
        .map(|e| FwE820::new(e.addr, e.size, e.kind))
        .collect();
    out.push(FwE820::new(
        KVM_IDENTITY_MAP_ADDR,
        KVM_PAGES_END - KVM_IDENTITY_MAP_ADDR,
        fw_cfg::e820::E820_RESERVED,
    ));
    out.sort_by_key(|e| e.addr);
    out
}

/// The `bootorder` paths for the drives, best first (see `vm_config::boot_drive_order`);
/// `bases` are the drives' virtio-mmio windows, in `cfg.drives` order.
pub fn bootorder_paths(cfg: &VmConfig, bases: &[u64]) -> (Vec<String>, bool) {
    let (order, strict) = vm_config::boot_drive_order(cfg);
    let paths = order
        .iter()
        .filter_map(|i| bases.get(*i))
        .map(|b| fw_cfg::bootorder::virtio_mmio_blk(*b))
        .collect();
    (paths, strict)
}

/// What the firmware is told besides the ACPI tables.
pub struct FirmwareSpec<'a> {
    pub cfg: &'a VmConfig,
    /// The memory map (as for direct boot).
    pub e820: &'a [E820Entry],
    /// Each drive's virtio-mmio base, in `cfg.drives` order.
    pub drive_bases: &'a [u64],
    /// A serial port exists: SeaBIOS uses it as its console (pmvm has no display).
    pub serial: bool,
    pub acpi: &'a fw_cfg::acpi::AcpiBlobs,
}

/// The fw_cfg device with every item SeaBIOS reads.
pub fn build_fw_cfg(mem: &GuestRam, spec: &FirmwareSpec) -> Result<FwCfg<FwCfgMem>> {
    let cfg = spec.cfg;
    let mut fw = FwCfg::new(FwCfgMem(mem.clone()));
    let item = |name: &str| {
        let name = name.to_string();
        move |e: fw_cfg::FwCfgError| BootError::FwCfg {
            item: name.clone(),
            why: e.to_string(),
        }
    };
    let cpus = u16::try_from(cfg.cpus).unwrap_or(u16::MAX);
    fw.add_u16(keys::NB_CPUS, cpus).map_err(item("NB_CPUS"))?;
    fw.add_u16(keys::MAX_CPUS, cpus).map_err(item("MAX_CPUS"))?;
    fw.add_u64(keys::RAM_SIZE, cfg.memory.size)
        .map_err(item("RAM_SIZE"))?;
    fw.add_u16(keys::NOGRAPHIC, u16::from(spec.serial))
        .map_err(item("NOGRAPHIC"))?;
    fw.add_u16(keys::BOOT_MENU, u16::from(cfg.boot.menu))
        .map_err(item("BOOT_MENU"))?;
    if let Some(ms) = cfg.boot.splash_time {
        fw.add_file("etc/boot-menu-wait", ms.to_le_bytes().to_vec())
            .map_err(item("etc/boot-menu-wait"))?;
    }
    // -1 (as QEMU's default): SeaBIOS waits for a key instead of rebooting.
    let fail_wait = cfg.boot.reboot_timeout.unwrap_or(-1) as i32;
    fw.add_file("etc/boot-fail-wait", fail_wait.to_le_bytes().to_vec())
        .map_err(item("etc/boot-fail-wait"))?;
    fw.add_file("etc/e820", fw_cfg::e820::encode(&firmware_e820(spec.e820)))
        .map_err(item("etc/e820"))?;
    let (paths, strict) = bootorder_paths(cfg, spec.drive_bases);
    let bootorder = fw_cfg::bootorder::encode(&paths, strict).map_err(|e| BootError::FwCfg {
        item: "bootorder".into(),
        why: e.to_string(),
    })?;
    fw.add_file("bootorder", bootorder)
        .map_err(item("bootorder"))?;
    spec.acpi.install(&mut fw).map_err(item("etc/acpi"))?;
    Ok(fw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{RamSplit, e820_map};
    use fw_cfg::e820::{E820_RAM, E820_RESERVED};

    fn config(extra: &str) -> VmConfig {
        let fw = std::env::temp_dir().join(format!("vmm-fw-test-{}.bin", std::process::id()));
        std::fs::write(&fw, vec![0u8; 128 << 10]).unwrap();
        let mut argv = vec!["-bios".to_string(), fw.display().to_string()];
        argv.extend(extra.split_whitespace().map(str::to_string));
        match vm_config::parse_args(&argv).unwrap() {
            vm_config::Action::Run(c) => *c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn e820_lists_ram_and_every_reserved_range() {
        let split = RamSplit {
            below_4g: 512 << 20,
            above_4g: 0,
        };
        let map = firmware_e820(&e820_map(split, 0x2_0000));
        let want = [
            (0, 0x9fc00, E820_RAM),
            (0x9fc00, 0x100000 - 0x9fc00, E820_RESERVED),
            (0x100000, (512 << 20) - 0x100000, E820_RAM),
            (0xfe00_0000, 0x2_0000, E820_RESERVED),
            (0xfffb_c000, 0x4000, E820_RESERVED),
        ];
        let got: Vec<_> = map.iter().map(|e| (e.addr, e.len, e.kind)).collect();
        assert_eq!(got, want);
        // High RAM after the KVM pages, and the bytes are 20 per entry.
        let split = RamSplit {
            below_4g: 3 << 30,
            above_4g: 1 << 30,
        };
        let map = firmware_e820(&e820_map(split, 0));
        assert_eq!(map.last().unwrap().addr, FOUR_GIB);
        assert_eq!(fw_cfg::e820::encode(&map).len(), map.len() * 20);
    }

    #[test]
    fn bootorder_from_drives() {
        let c = config("-drive file=d.raw,format=raw,index=0,media=disk -cdrom x.iso");
        let (paths, strict) = bootorder_paths(&c, &[0xe000_0000, 0xe000_1000]);
        assert_eq!(
            paths,
            [
                "/virtio-mmio@00000000e0000000/virtio-blk@0",
                "/virtio-mmio@00000000e0001000/virtio-blk@0"
            ]
        );
        assert!(!strict);
        let c = config("-drive file=d.raw -cdrom x.iso -boot order=d,strict=on");
        let (paths, strict) = bootorder_paths(&c, &[0xe000_0000, 0xe000_1000]);
        assert_eq!(paths, ["/virtio-mmio@00000000e0001000/virtio-blk@0"]);
        assert!(strict);
        let bytes = fw_cfg::bootorder::encode(&paths, strict).unwrap();
        assert_eq!(
            bytes,
            b"/virtio-mmio@00000000e0001000/virtio-blk@0\nHALT\0".to_vec()
        );
    }

    #[test]
    fn rom_sits_above_the_kvm_pages() {
        let img = FirmwareImage {
            bytes: vec![0; vm_config::MAX_FIRMWARE_SIZE as usize],
        };
        assert!(img.rom_gpa() >= KVM_PAGES_END);
        assert_eq!(
            FirmwareImage {
                bytes: vec![0; 128 << 10]
            }
            .rom_gpa(),
            0xfffe_0000
        );
    }
}
