//! How the guest starts: a kernel loaded directly (`-kernel`) or firmware (SeaBIOS built for
//! QEMU's microvm) that boots from a disk or an ISO, with QEMU's `-bios`, `-boot`, `-cdrom`,
//! `bootindex=` and `-debugcon` options.
//!
//! Rules (QEMU's where QEMU has one):
//! * no `-kernel`: firmware boot with `-bios FILE` or [`DEFAULT_FIRMWARE`];
//! * `-kernel` without `-bios`: direct kernel boot, as before;
//! * `-kernel` with `-bios`: refused (the microvm SeaBIOS loads a kernel from fw_cfg only
//!   through QEMU's `linuxboot_dma.bin` option ROM, which pmvm does not provide);
//! * `-initrd`/`-append` without `-kernel`: refused with QEMU's words.

use std::path::{Path, PathBuf};

use crate::keyval::parse as keyval;
use crate::{ConfigError, DriveConfig, VmConfig};

/// The firmware used without `-kernel` and `-bios`: Debian's `seabios` package ships SeaBIOS
/// built for QEMU's microvm (virtio-mmio disks found through the DSDT, fw_cfg, no PCI).
pub const DEFAULT_FIRMWARE: &str = "/usr/share/seabios/bios-microvm.bin";

/// The largest firmware image: it is mapped at 4 GiB - size and must stay above KVM's TSS and
/// identity-map pages (0xfffb_c000..0xfffc_0000).
pub const MAX_FIRMWARE_SIZE: u64 = 256 << 10;

/// `-boot`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootConfig {
    /// `order=` (or `once=`): QEMU's device letters; `c` is the first hard disk, `d` the first
    /// CD-ROM; `a`, `b` (floppy) and `n`-`p` (network) name devices pmvm does not have. `None`:
    /// QEMU's default, disks then CD-ROMs.
    pub order: Option<String>,
    /// `menu=on`: SeaBIOS shows its boot menu (F12 on the serial console).
    pub menu: bool,
    /// `strict=on`: boot only from the devices listed (bootorder ends with `HALT`).
    pub strict: bool,
    /// `reboot-timeout=MS`: how long SeaBIOS waits before rebooting when nothing boots; -1
    /// (the default) never reboots.
    pub reboot_timeout: Option<i64>,
    /// `splash-time=MS`: how long the boot menu prompt waits.
    pub splash_time: Option<u16>,
}

/// `-debugcon`: where the firmware's debug port (0x402, SeaBIOS's log) goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DebugconConfig {
    /// pmvm's standard error, each line prefixed with `seabios: `.
    Stdio,
    /// Appended to a file.
    File(PathBuf),
}

/// How the boot CPU starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootSource {
    /// `-kernel`: Linux boot protocol or PVH, as before.
    Kernel(PathBuf),
    /// Firmware image (its path); it boots from the drives in [`boot_drive_order`].
    Firmware(PathBuf),
}

/// Parses `-boot [order=]LETTERS[,once=..][,menu=on|off][,strict=on|off][,reboot-timeout=MS]
/// [,splash-time=MS][,splash=FILE]`.
pub fn parse_boot(s: &str) -> Result<BootConfig, ConfigError> {
    let p = keyval("-boot", s, Some("order"))?;
    const KEYS: &[&str] = &[
        "order",
        "once",
        "menu",
        "strict",
        "reboot-timeout",
        "splash-time",
        "splash",
    ];
    if let Some(k) = p.unknown(KEYS) {
        return Err(ConfigError::new(format!(
            "-boot: parameter '{k}' is not supported (pmvm knows {})",
            KEYS.join(", ")
        )));
    }
    let mut b = BootConfig::default();
    for key in ["order", "once"] {
        if let Some(o) = p.get(key) {
            if let Some(c) = o.chars().find(|c| !('a'..='p').contains(c)) {
                return Err(ConfigError::new(format!(
                    "-boot {key}={o}: Invalid boot device '{c}' (c: first disk, d: first CD-ROM)"
                )));
            }
            b.order = Some(o.to_string());
        }
    }
    b.menu = p.flag("-boot", "menu")?.unwrap_or(false);
    b.strict = p.flag("-boot", "strict")?.unwrap_or(false);
    if let Some(v) = p.get("reboot-timeout") {
        b.reboot_timeout = Some(
            v.parse::<i64>()
                .ok()
                .filter(|t| (-1..=0xffff).contains(t))
                .ok_or_else(|| {
                    ConfigError::new(format!(
                        "-boot reboot-timeout={v}: expected -1 (never) or 0 to 65535 ms"
                    ))
                })?,
        );
    }
    if let Some(v) = p.get("splash-time") {
        b.splash_time = Some(v.parse::<u16>().map_err(|_| {
            ConfigError::new(format!("-boot splash-time={v}: expected 0 to 65535 ms"))
        })?);
    }
    Ok(b)
}

/// Parses `-debugcon file:PATH|stdio|none`.
pub fn parse_debugcon(s: &str) -> Result<Option<DebugconConfig>, ConfigError> {
    match s {
        "stdio" => Ok(Some(DebugconConfig::Stdio)),
        "none" | "null" => Ok(None),
        _ => match s.strip_prefix("file:") {
            Some(p) if !p.is_empty() => Ok(Some(DebugconConfig::File(PathBuf::from(p)))),
            _ => Err(ConfigError::new(format!(
                "-debugcon '{s}' is not supported; use file:PATH, stdio or none"
            ))),
        },
    }
}

/// Chooses the boot source from `-kernel`, `-bios`, `-initrd` and `-append`.
/// `default_firmware` is [`DEFAULT_FIRMWARE`] (a parameter for tests).
pub fn boot_source(
    kernel: Option<PathBuf>,
    bios: Option<PathBuf>,
    initrd: bool,
    append: bool,
    default_firmware: &Path,
) -> Result<BootSource, ConfigError> {
    match (kernel, bios) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            "-kernel with -bios is not supported: the microvm SeaBIOS loads a kernel only through \
             QEMU's linuxboot option ROM, which pmvm does not have; drop -bios to boot the kernel \
             directly, or drop -kernel to boot from a disk",
        )),
        (Some(k), None) => Ok(BootSource::Kernel(k)),
        (None, bios) => {
            if initrd {
                return Err(ConfigError::new("-initrd only allowed with -kernel option"));
            }
            if append {
                return Err(ConfigError::new("-append only allowed with -kernel option"));
            }
            match bios {
                Some(b) => Ok(BootSource::Firmware(b)),
                None if default_firmware.exists() => {
                    Ok(BootSource::Firmware(default_firmware.to_path_buf()))
                }
                None => Err(ConfigError::new(format!(
                    "no -kernel given and the default firmware {} is missing: install it \
                     (Debian package 'seabios': apt-get install seabios), give a firmware image \
                     with -bios FILE, or boot a Linux kernel directly with -kernel FILE",
                    default_firmware.display()
                ))),
            }
        }
    }
}

/// Checks a firmware image: a readable regular file, non-empty, a multiple of 4 KiB (it is
/// mapped as guest pages) and at most [`MAX_FIRMWARE_SIZE`].
pub fn check_firmware(path: &Path) -> Result<(), ConfigError> {
    let err = |why: String| ConfigError::new(format!("-bios '{}': {why}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| err(format!("could not load the BIOS: {e}")))?;
    if !meta.is_file() {
        return Err(err("not a regular file".into()));
    }
    std::fs::File::open(path).map_err(|e| err(format!("could not load the BIOS: {e}")))?;
    let size = meta.len();
    if size == 0 || size % 4096 != 0 {
        return Err(err(format!(
            "{size} bytes: a firmware image must be a non-empty multiple of 4 KiB"
        )));
    }
    if size > MAX_FIRMWARE_SIZE {
        return Err(err(format!(
            "{size} bytes is too large for the BIOS region (at most {} KiB below 4 GiB); \
             use SeaBIOS for microvm ({DEFAULT_FIRMWARE})",
            MAX_FIRMWARE_SIZE >> 10
        )));
    }
    Ok(())
}

/// The drives the firmware should try, best first, as indexes into `cfg.drives`, and whether
/// the list is strict (nothing else may boot). Drives with `bootindex=` come first (by
/// bootindex), then the `-boot order=` letters: `c` every disk, `d` every CD-ROM (each in
/// index order); without `-boot order`, QEMU's default: disks, then CD-ROMs. SeaBIOS tries the
/// rest after these unless the list is strict.
pub fn boot_drive_order(cfg: &VmConfig) -> (Vec<usize>, bool) {
    let mut out: Vec<usize> = Vec::new();
    let mut indexed: Vec<(u32, usize)> = cfg
        .drives
        .iter()
        .enumerate()
        .filter_map(|(i, d)| d.bootindex.map(|b| (b, i)))
        .collect();
    indexed.sort();
    out.extend(indexed.iter().map(|(_, i)| *i));
    let order = cfg.boot.order.as_deref().unwrap_or("cd");
    let push = |want_cdrom: bool, out: &mut Vec<usize>| {
        for (i, d) in cfg.drives.iter().enumerate() {
            if d.cdrom == want_cdrom && !out.contains(&i) {
                out.push(i);
            }
        }
    };
    for c in order.chars() {
        match c {
            'c' => push(false, &mut out),
            'd' => push(true, &mut out),
            _ => {}
        }
    }
    (out, cfg.boot.strict)
}

/// Whether a drive is a CD-ROM image with no MBR boot signature: SeaBIOS sees every virtio disk
/// as a hard disk, so such an ISO (El Torito only, not "isohybrid") cannot boot.
pub fn cdrom_without_mbr(d: &DriveConfig) -> bool {
    use std::io::Read;
    if !d.cdrom {
        return false;
    }
    let mut sector = [0u8; 512];
    match std::fs::File::open(&d.file).and_then(|mut f| f.read_exact(&mut sector)) {
        Ok(()) => sector[510..512] != [0x55, 0xaa],
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_options() {
        let b = parse_boot("order=dc,menu=on,strict=on,reboot-timeout=1000").unwrap();
        assert_eq!(b.order.as_deref(), Some("dc"));
        assert!(b.menu && b.strict);
        assert_eq!(b.reboot_timeout, Some(1000));
        assert_eq!(parse_boot("cd").unwrap().order.as_deref(), Some("cd"));
        assert!(
            parse_boot("order=q")
                .unwrap_err()
                .0
                .contains("Invalid boot device 'q'")
        );
        assert!(parse_boot("foo=1").unwrap_err().0.contains("'foo'"));
        assert!(parse_boot("reboot-timeout=-5").is_err());
        assert!(parse_boot("menu=maybe").is_err());
    }

    #[test]
    fn debugcon() {
        assert_eq!(
            parse_debugcon("stdio").unwrap(),
            Some(DebugconConfig::Stdio)
        );
        assert_eq!(parse_debugcon("none").unwrap(), None);
        assert_eq!(
            parse_debugcon("file:/tmp/x").unwrap(),
            Some(DebugconConfig::File("/tmp/x".into()))
        );
        assert!(parse_debugcon("vc").is_err());
    }

    #[test]
    fn source_rules() {
        let fw = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let missing = Path::new("/nonexistent/bios-microvm.bin");
        let k = Some(PathBuf::from("k"));
        let b = Some(PathBuf::from("b"));
        assert_eq!(
            boot_source(k.clone(), None, true, true, missing).unwrap(),
            BootSource::Kernel("k".into())
        );
        assert!(
            boot_source(k, b.clone(), false, false, &fw)
                .unwrap_err()
                .0
                .contains("-kernel with -bios")
        );
        assert_eq!(
            boot_source(None, b, false, false, missing).unwrap(),
            BootSource::Firmware("b".into())
        );
        assert_eq!(
            boot_source(None, None, false, false, &fw).unwrap(),
            BootSource::Firmware(fw.clone())
        );
        let e = boot_source(None, None, false, false, missing)
            .unwrap_err()
            .0;
        assert!(e.contains("'seabios'") && e.contains("-bios FILE"), "{e}");
        assert_eq!(
            boot_source(None, None, true, false, &fw).unwrap_err().0,
            "-initrd only allowed with -kernel option"
        );
        assert_eq!(
            boot_source(None, None, false, true, &fw).unwrap_err().0,
            "-append only allowed with -kernel option"
        );
    }

    #[test]
    fn firmware_file_checks() {
        let dir = std::env::temp_dir().join(format!("vmcfg-fw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = |name: &str, len: usize| {
            let p = dir.join(name);
            std::fs::write(&p, vec![0u8; len]).unwrap();
            p
        };
        assert!(check_firmware(&f("ok", 128 << 10)).is_ok());
        assert!(check_firmware(&f("max", 256 << 10)).is_ok());
        let e = check_firmware(&f("big", 512 << 10)).unwrap_err().0;
        assert!(e.contains("too large for the BIOS region"), "{e}");
        assert!(
            check_firmware(&f("odd", 1000))
                .unwrap_err()
                .0
                .contains("multiple of 4 KiB")
        );
        assert!(check_firmware(&f("empty", 0)).is_err());
        let e = check_firmware(&dir.join("missing")).unwrap_err().0;
        assert!(e.contains("could not load the BIOS"), "{e}");
        assert!(
            check_firmware(&dir)
                .unwrap_err()
                .0
                .contains("not a regular file")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
