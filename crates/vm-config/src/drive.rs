//! `-drive`: disks, given to the guest as virtio-blk devices (virtio-mmio, described in ACPI).
//!
//! QEMU's `pc` machine puts a `-drive` without `if=` on IDE; pmvm has no IDE controller and
//! gives every drive as virtio-blk (the guest sees `/dev/vdX`). It says so once at start-up
//! instead of pretending, and refuses what it cannot honour (other formats, snapshot=on,
//! snapshot=on) with the option that would work.

use std::path::PathBuf;

use crate::ConfigError;
use crate::keyval::Props;

/// Magic numbers of image formats that must not be used as raw (the headers QEMU probes for).
const FORMAT_MAGICS: &[(&[u8], &str)] = &[
    (b"QFI\xfb", "qcow2"),
    (b"KDMV", "vmdk"),
    (b"vhdxfile", "vhdx"),
    (b"QED\0", "qed"),
    (b"LUKS\xba\xbe", "luks"),
    (b"conectix", "vpc"),
];

/// The image format whose header starts `head` (the first 512 bytes of an image), if it is not
/// raw. pmvm refuses such images, pmctl refuses to attach them, and the guest may not write
/// such a header into sector 0 of a probed raw image.
pub fn detect_image_format(head: &[u8]) -> Option<&'static str> {
    if head.len() >= 0x44 && head[0x40..0x44] == [0x7f, 0x10, 0xda, 0xbe] {
        return Some("vdi");
    }
    FORMAT_MAGICS
        .iter()
        .find(|(m, _)| head.starts_with(m))
        .map(|(_, f)| *f)
}

/// The most drives a VM may have: one interrupt line each (see the vmm's `irqs::VIRTIO`).
pub const MAX_DRIVES: usize = 8;

/// How writes reach storage (`cache=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriveCache {
    /// `writeback` (QEMU's default): writes go to the host page cache; a guest flush
    /// (VIRTIO_BLK_T_FLUSH) is an fdatasync.
    Writeback,
    /// `writethrough`: every write is on stable storage before it completes (O_DSYNC).
    Writethrough,
    /// `unsafe`: guest flushes are ignored (for throw-away guests).
    Unsafe,
    /// `none` (libvirt's usual choice): O_DIRECT, the host page cache is bypassed; a guest
    /// flush is an fdatasync.
    None,
    /// `directsync`: O_DIRECT and O_DSYNC.
    DirectSync,
}

impl DriveCache {
    /// The `cache=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            DriveCache::Writeback => "writeback",
            DriveCache::Writethrough => "writethrough",
            DriveCache::Unsafe => "unsafe",
            DriveCache::None => "none",
            DriveCache::DirectSync => "directsync",
        }
    }

    /// The image is opened with O_DIRECT.
    pub fn direct(self) -> bool {
        matches!(self, DriveCache::None | DriveCache::DirectSync)
    }

    /// Every write is stable before it completes (O_DSYNC).
    pub fn write_through(self) -> bool {
        matches!(self, DriveCache::Writethrough | DriveCache::DirectSync)
    }
}

/// One `-drive`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveConfig {
    /// `id=`, or QEMU's default name for a virtio drive, `virtio<index>`.
    pub id: String,
    /// The image (raw).
    pub file: PathBuf,
    /// `index=`, or the next free one in command-line order.
    pub index: u32,
    /// `readonly=on`, or `media=cdrom` (always read-only).
    pub readonly: bool,
    pub cache: DriveCache,
    /// `format=raw` was given: no probing and no warning.
    pub format_given: bool,
    /// `media=cdrom`.
    pub cdrom: bool,
    /// `if=` was absent or `ide`: QEMU would give an IDE disk; pmvm gives virtio-blk and warns.
    pub if_ide: bool,
    /// `discard=unmap`: guest discards punch holes in the image (QEMU's default `ignore` drops
    /// them).
    pub discard: bool,
    /// `bootindex=N`: the firmware tries drives with a bootindex first, lowest first.
    pub bootindex: Option<u32>,
}

const KEYS: &[&str] = &[
    "file",
    "format",
    "if",
    "id",
    "index",
    "media",
    "readonly",
    "cache",
    "snapshot",
    "aio",
    "discard",
    "bootindex",
];

impl DriveConfig {
    /// Parses one `-drive` value; `index` is given later by [`assign_indexes`].
    pub fn from_props(p: &Props) -> Result<(DriveConfig, Option<u32>), ConfigError> {
        if let Some(k) = p.unknown(KEYS) {
            return Err(ConfigError::new(format!(
                "-drive: parameter '{k}' is not supported by pmvm (it knows {})",
                KEYS.join(", ")
            )));
        }
        let cdrom = match p.get("media").unwrap_or("disk") {
            "disk" => false,
            "cdrom" => true,
            m => {
                return Err(ConfigError::new(format!(
                    "-drive: media={m}: expected disk or cdrom"
                )));
            }
        };
        let file = match p.get("file") {
            Some(f) if !f.is_empty() => PathBuf::from(f),
            _ => {
                return Err(ConfigError::new(
                    "-drive: file= is missing or empty: pmvm's drives are virtio disks and cannot be \
                     empty (no removable media); give file=IMAGE or drop the -drive",
                ));
            }
        };
        let format_given = match p.get("format") {
            None => false,
            Some("raw") => true,
            Some(f) => {
                return Err(ConfigError::new(format!(
                    "-drive file={}: format={f} is not supported; pmvm reads raw images only \
                     (convert with: qemu-img convert -O raw {} IMAGE.raw)",
                    file.display(),
                    file.display()
                )));
            }
        };
        let if_ide = match p.get("if") {
            None | Some("ide") => true,
            Some("virtio") => false,
            Some(i) => {
                return Err(ConfigError::new(format!(
                    "-drive: if={i} is not supported; pmvm gives drives as virtio disks: use if=virtio"
                )));
            }
        };
        let cache = match p.get("cache").unwrap_or("writeback") {
            "writeback" => DriveCache::Writeback,
            "writethrough" => DriveCache::Writethrough,
            "unsafe" => DriveCache::Unsafe,
            "none" => DriveCache::None,
            "directsync" => DriveCache::DirectSync,
            c => {
                return Err(ConfigError::new(format!(
                    "-drive: cache={c}: expected writeback, writethrough, none, directsync or unsafe"
                )));
            }
        };
        if p.flag("-drive", "snapshot")? == Some(true) {
            return Err(ConfigError::new(
                "-drive: snapshot=on is not supported by pmvm; copy the image and use the copy",
            ));
        }
        if let Some(a) = p.get("aio").filter(|a| *a != "threads") {
            return Err(ConfigError::new(format!(
                "-drive: aio={a} is not supported; pmvm does synchronous I/O (aio=threads)"
            )));
        }
        let discard = match p.get("discard").unwrap_or("ignore") {
            "ignore" | "off" => false,
            "unmap" | "on" => true,
            d => {
                return Err(ConfigError::new(format!(
                    "-drive: discard={d}: expected ignore (the default) or unmap"
                )));
            }
        };
        let index = p
            .get("index")
            .map(|v| {
                v.parse::<u32>()
                    .ok()
                    .filter(|i| (*i as usize) < MAX_DRIVES)
                    .ok_or_else(|| {
                        ConfigError::new(format!(
                            "-drive: index={v}: expected a number from 0 to {}",
                            MAX_DRIVES - 1
                        ))
                    })
            })
            .transpose()?;
        let readonly = cdrom || p.flag("-drive", "readonly")?.unwrap_or(false);
        let bootindex = p
            .get("bootindex")
            .map(|v| {
                v.parse::<u32>().map_err(|_| {
                    ConfigError::new(format!(
                        "-drive: bootindex={v}: expected a number (lower boots first)"
                    ))
                })
            })
            .transpose()?;
        let cfg = DriveConfig {
            id: p.get("id").unwrap_or_default().to_string(),
            file,
            index: 0,
            readonly,
            cache,
            format_given,
            cdrom,
            if_ide,
            discard: discard && !readonly,
            bootindex,
        };
        Ok((cfg, index))
    }
}

/// Gives every drive its index (explicit ones first, then the lowest free ones in command-line
/// order, as QEMU does), sorts by index and names the unnamed ones `virtio<index>`.
pub fn assign_indexes(
    drives: Vec<(DriveConfig, Option<u32>)>,
) -> Result<Vec<DriveConfig>, ConfigError> {
    if drives.len() > MAX_DRIVES {
        return Err(ConfigError::new(format!(
            "-drive: {} drives given; pmvm supports at most {MAX_DRIVES}",
            drives.len()
        )));
    }
    let mut used = [false; MAX_DRIVES];
    for (d, i) in &drives {
        if let Some(i) = *i
            && std::mem::replace(&mut used[i as usize], true)
        {
            return Err(ConfigError::new(format!(
                "-drive file={}: index={i} is already used by another drive",
                d.file.display()
            )));
        }
    }
    let mut out = Vec::with_capacity(drives.len());
    for (mut d, i) in drives {
        d.index = match i {
            Some(i) => i,
            None => {
                // There is a free index: at most MAX_DRIVES drives, each takes one.
                let free = used.iter().position(|u| !u).unwrap_or(0);
                used[free] = true;
                free as u32
            }
        };
        if d.id.is_empty() {
            d.id = format!("virtio{}", d.index);
        }
        out.push(d);
    }
    out.sort_by_key(|d| d.index);
    for (i, d) in out.iter().enumerate() {
        if out[..i].iter().any(|o| o.id == d.id) {
            return Err(ConfigError::new(format!(
                "-drive: duplicate drive id '{}'",
                d.id
            )));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyval::parse;

    fn drive(s: &str) -> Result<(DriveConfig, Option<u32>), ConfigError> {
        DriveConfig::from_props(&parse("-drive", s, None)?)
    }

    #[test]
    fn seed_drive_is_accepted_as_virtio() {
        let (d, i) = drive("file=/vm/fedora27.raw,format=raw,index=0,media=disk").unwrap();
        assert_eq!(i, Some(0));
        assert!(d.if_ide && d.format_given && !d.readonly && !d.cdrom);
        assert_eq!(d.cache, DriveCache::Writeback);
        let (d, _) = drive("media=cdrom,file=/dl/Fedora.iso,readonly").unwrap();
        assert!(d.cdrom && d.readonly && !d.format_given);
    }

    #[test]
    fn refusals_name_the_fix() {
        let e = |s: &str| drive(s).unwrap_err().0;
        assert!(e("file=a.qcow2,format=qcow2").contains("qemu-img convert -O raw a.qcow2"));
        assert!(e("media=cdrom,file=,readonly").contains("cannot be empty"));
        assert!(e("file=a,if=scsi").contains("if=virtio"));
        assert!(e("file=a,cache=bogus").contains("writeback, writethrough, none"));
        let (d, _) = drive("file=a,cache=none").unwrap();
        assert!(d.cache.direct() && !d.cache.write_through());
        let (d, _) = drive("file=a,cache=directsync").unwrap();
        assert!(d.cache.direct() && d.cache.write_through());
        assert!(e("file=a,snapshot=on").contains("snapshot=on"));
        assert!(e("file=a,index=8").contains("0 to 7"));
        assert!(e("file=a,bogus=1").contains("'bogus'"));
        assert!(e("file=a,media=floppy").contains("media=floppy"));
        assert!(drive("file=a,snapshot=off,cache=unsafe,aio=threads,discard=ignore").is_ok());
        assert!(drive("file=a,discard=unmap").unwrap().0.discard);
        assert!(!drive("file=a,discard=unmap,readonly=on").unwrap().0.discard);
        assert!(e("file=a,discard=trim").contains("ignore (the default) or unmap"));
        assert_eq!(drive("file=a,bootindex=3").unwrap().0.bootindex, Some(3));
        assert!(e("file=a,bootindex=first").contains("bootindex=first"));
    }

    #[test]
    fn indexes_explicit_first_then_lowest_free() {
        let ds = vec![
            drive("file=a").unwrap(),
            drive("file=b,index=0").unwrap(),
            drive("file=c,id=data").unwrap(),
        ];
        let out = assign_indexes(ds).unwrap();
        let v: Vec<_> = out
            .iter()
            .map(|d| (d.index, d.id.as_str(), d.file.to_str().unwrap()))
            .collect();
        assert_eq!(
            v,
            vec![(0, "virtio0", "b"), (1, "virtio1", "a"), (2, "data", "c")]
        );
        let dup = vec![
            drive("file=a,index=1").unwrap(),
            drive("file=b,index=1").unwrap(),
        ];
        assert!(
            assign_indexes(dup)
                .unwrap_err()
                .0
                .contains("index=1 is already used")
        );
        let dup = vec![drive("file=a,id=x").unwrap(), drive("file=b,id=x").unwrap()];
        assert!(
            assign_indexes(dup)
                .unwrap_err()
                .0
                .contains("duplicate drive id 'x'")
        );
        let many = (0..9)
            .map(|i| drive(&format!("file=f{i}")).unwrap())
            .collect();
        assert!(assign_indexes(many).unwrap_err().0.contains("at most 8"));
    }
}
