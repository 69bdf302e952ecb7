//! The `bootorder` file: which devices the firmware should try first.
//!
//! Format (QEMU `system/bootdevice.c`, `get_boot_devices_list`): Open Firmware-style device
//! paths separated by `\n`, the whole list terminated by one NUL; an empty list is an
//! empty file. With `-boot strict=on` QEMU appends a final `HALT` line, which tells
//! SeaBIOS not to fall back to unlisted devices.
//!
//! SeaBIOS (`src/boot.c`, `find_prio`) matches each device it finds against the lines with
//! a glob where `*` stands for any run of characters other than `/`, and a line matches
//! when the glob is a prefix ending at a `/` or at the end of the line. For virtio-mmio
//! devices it builds (`bootprio_find_mmio_device`, `bootprio_find_scsi_mmio_device`):
//!
//! - block: `/virtio-mmio@%016x/*` — so `/virtio-mmio@00000000d0000000/virtio-blk@0`;
//! - SCSI: `/virtio-mmio@%016x/*@0/*@%x,%x` (target, lun) — so
//!   `/virtio-mmio@00000000d0000000/channel@0/disk@0,0`.
//!
//! The address is the device's MMIO base as a 32-bit value (SeaBIOS ignores virtio-mmio
//! devices above 4 GiB) printed as 16 zero-padded lowercase hex digits.

/// The line that makes SeaBIOS boot only from listed devices.
pub const HALT: &str = "HALT";

/// A boot path that cannot be put in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootorderError {
    #[error("boot path {0:?} contains a newline or NUL")]
    BadCharacter(String),
    #[error("boot path is empty")]
    Empty,
}

/// The path SeaBIOS matches for a virtio-blk disk on the virtio-mmio transport at `base`.
pub fn virtio_mmio_blk(base: u64) -> String {
    format!("/virtio-mmio@{base:016x}/virtio-blk@0")
}

/// The path SeaBIOS matches for LUN `lun` of target `target` of a virtio-scsi controller on
/// the virtio-mmio transport at `base`.
pub fn virtio_mmio_scsi(base: u64, target: u32, lun: u32) -> String {
    format!("/virtio-mmio@{base:016x}/channel@0/disk@{target:x},{lun:x}")
}

/// The `bootorder` bytes for `paths` (first = highest priority); `strict` appends
/// [`HALT`] (only when the list is not empty, as QEMU does).
pub fn encode<S: AsRef<str>>(paths: &[S], strict: bool) -> Result<Vec<u8>, BootorderError> {
    let mut out = Vec::new();
    for p in paths {
        let p = p.as_ref();
        if p.is_empty() {
            return Err(BootorderError::Empty);
        }
        if p.bytes().any(|b| b == b'\n' || b == 0) {
            return Err(BootorderError::BadCharacter(p.to_owned()));
        }
        if !out.is_empty() {
            out.push(b'\n');
        }
        out.extend_from_slice(p.as_bytes());
    }
    if out.is_empty() {
        return Ok(out);
    }
    if strict {
        out.push(b'\n');
        out.extend_from_slice(HALT.as_bytes());
    }
    out.push(0);
    Ok(out)
}

/// SeaBIOS's glob match (`glob_prefix`): does `glob` match a prefix of `line` that ends at
/// the end of `line` or at a `/`? Here so tests can check our paths against the patterns
/// SeaBIOS builds.
pub fn seabios_glob_matches(glob: &str, line: &str) -> bool {
    let (g, s) = (glob.as_bytes(), line.as_bytes());
    let (mut gi, mut si) = (0usize, 0usize);
    loop {
        let gc = g.get(gi).copied();
        let sc = s.get(si).copied();
        match gc {
            None => return sc.is_none() || sc == Some(b'/'),
            Some(b'*') => {
                if sc.is_none() || sc == Some(b'/') || sc == g.get(gi + 1).copied() {
                    gi += 1;
                } else {
                    si += 1;
                }
            }
            Some(c) => {
                if sc != Some(c) {
                    return false;
                }
                gi += 1;
                si += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden() {
        let b = encode(
            &[
                virtio_mmio_blk(0xd000_0000),
                virtio_mmio_scsi(0xd000_1000, 0, 1),
            ],
            false,
        )
        .unwrap();
        assert_eq!(
            b,
            b"/virtio-mmio@00000000d0000000/virtio-blk@0\n/virtio-mmio@00000000d0001000/channel@0/disk@0,1\0"
        );
        let b = encode(&["/a"], true).unwrap();
        assert_eq!(b, b"/a\nHALT\0");
        assert!(encode::<&str>(&[], true).unwrap().is_empty());
        assert_eq!(
            encode(&["a\nb"], false),
            Err(BootorderError::BadCharacter("a\nb".into()))
        );
        assert_eq!(encode(&[""], false), Err(BootorderError::Empty));
    }

    #[test]
    fn seabios_patterns_match_our_paths() {
        // The globs SeaBIOS builds in bootprio_find_mmio_device / _scsi_mmio_device.
        let blk_glob = format!("/virtio-mmio@{:016x}/*", 0xd000_0000u32);
        let scsi_glob = format!("/virtio-mmio@{:016x}/*@0/*@{:x},{:x}", 0xd000_1000u32, 2, 3);
        assert!(seabios_glob_matches(
            &blk_glob,
            &virtio_mmio_blk(0xd000_0000)
        ));
        assert!(!seabios_glob_matches(
            &blk_glob,
            &virtio_mmio_blk(0xd000_0200)
        ));
        assert!(seabios_glob_matches(
            &scsi_glob,
            &virtio_mmio_scsi(0xd000_1000, 2, 3)
        ));
        assert!(!seabios_glob_matches(
            &scsi_glob,
            &virtio_mmio_scsi(0xd000_1000, 2, 4)
        ));
    }
}
