//! What persistence a memory backend gives, probed on the host the same way by pmvm (at
//! start-up, for every NVDIMM backend) and by `pmctl probe`.
//!
//! QEMU's guide: only device DAX, or a file on a DAX filesystem mapped with MAP_SYNC (pmem=on,
//! share=on), survives a host crash; everything else silently is not. We say which it is.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// Linux `MAP_SYNC` and `MAP_SHARED_VALIDATE` (not in every libc crate version for every target).
pub const MAP_SYNC: libc::c_int = 0x80000;
pub const MAP_SHARED_VALIDATE: libc::c_int = 0x03;

const TMPFS_MAGIC: i64 = 0x0102_1994;
const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;
const RAMFS_MAGIC: i64 = 0x8584_58f6;

/// The kind of backend and the persistence it can give.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum BackendClass {
    /// A device-DAX character device (`/dev/daxX.Y`): writes go straight to persistent memory.
    DeviceDax {
        align: Option<u64>,
        size: Option<u64>,
    },
    /// A file on a DAX filesystem: MAP_SYNC works, so with pmem=on,share=on writes persist.
    DaxFile,
    /// A file (or block device) behind the page cache: data reaches the media only after
    /// msync/writeback; a host crash loses what was not written back.
    PageCache { fs: String },
    /// tmpfs, hugetlbfs or ramfs: gone when the host reboots.
    Volatile { fs: String },
    /// Anonymous memory (`memory-backend-ram`): gone when pmvm exits.
    Ram,
    /// The path does not exist yet (it will be created as a regular file there).
    Missing { dir_fs: String },
}

/// A probe result.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Probe {
    pub path: Option<PathBuf>,
    #[serde(flatten)]
    pub class: BackendClass,
    /// Whether data written through a MAP_SYNC mapping survives a host crash.
    pub crash_persistent: bool,
    /// One sentence a user can act on.
    pub explanation: String,
}

fn fs_name(magic: i64) -> String {
    match magic {
        TMPFS_MAGIC => "tmpfs".into(),
        HUGETLBFS_MAGIC => "hugetlbfs".into(),
        RAMFS_MAGIC => "ramfs".into(),
        0xef53 => "ext4".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683e => "btrfs".into(),
        0x0102_1997 => "9p".into(),
        0x6969 => "nfs".into(),
        0x6265_6572 => "sysfs".into(),
        0x1373 => "devtmpfs".into(),
        m => format!("filesystem magic {m:#x}"),
    }
}

fn statfs_magic(path: &Path) -> std::io::Result<i64> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains NUL"))?;
    // SAFETY: a zeroed statfs is a valid out-parameter.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path and st a writable statfs.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_type as i64)
}

/// Tries a 4 KiB MAP_SHARED_VALIDATE|MAP_SYNC mapping of the file: success means DAX.
pub fn map_sync_works(path: &Path) -> bool {
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    else {
        return false;
    };
    let Ok(meta) = f.metadata() else { return false };
    if meta.len() < 4096 {
        return false;
    }
    use std::os::fd::AsRawFd;
    // SAFETY: mapping 4 KiB of an open file we own; unmapped right away.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            MAP_SHARED_VALIDATE | MAP_SYNC,
            f.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return false;
    }
    // SAFETY: p is the 4 KiB mapping created above.
    unsafe { libc::munmap(p, 4096) };
    true
}

fn sysfs_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Probes `path` (a file, block device or device-DAX node).
pub fn probe_path(path: &Path) -> std::io::Result<Probe> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let fs = fs_name(statfs_magic(dir)?);
            return Ok(Probe {
                path: Some(path.into()),
                explanation: format!("does not exist; it would be created on {fs}"),
                class: BackendClass::Missing { dir_fs: fs },
                crash_persistent: false,
            });
        }
        Err(e) => return Err(e),
    };
    let ft = meta.file_type();
    if ft.is_char_device() {
        use std::os::unix::fs::MetadataExt;
        let (maj, min) = (libc::major(meta.rdev()), libc::minor(meta.rdev()));
        let sys = PathBuf::from(format!("/sys/dev/char/{maj}:{min}"));
        let subsystem = std::fs::read_link(sys.join("subsystem")).ok();
        if subsystem
            .as_ref()
            .and_then(|s| s.file_name())
            .is_some_and(|n| n == "dax")
        {
            return Ok(Probe {
                path: Some(path.into()),
                class: BackendClass::DeviceDax { align: sysfs_u64(&sys.join("align")), size: sysfs_u64(&sys.join("size")) },
                crash_persistent: true,
                explanation: "device DAX: guest writes go straight to persistent memory (use align= of the device)".into(),
            });
        }
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{} is a character device but not device DAX",
                path.display()
            ),
        ));
    }
    let fs = fs_name(statfs_magic(path)?);
    let magic = statfs_magic(path)?;
    if matches!(magic, TMPFS_MAGIC | HUGETLBFS_MAGIC | RAMFS_MAGIC) {
        return Ok(Probe {
            path: Some(path.into()),
            explanation: format!(
                "a file on {fs}: volatile, its contents are lost when the host reboots"
            ),
            class: BackendClass::Volatile { fs },
            crash_persistent: false,
        });
    }
    if ft.is_file() && map_sync_works(path) {
        return Ok(Probe {
            path: Some(path.into()),
            class: BackendClass::DaxFile,
            crash_persistent: true,
            explanation: format!(
                "a file on a DAX filesystem ({fs}): MAP_SYNC works; with pmem=on,share=on guest writes persist"
            ),
        });
    }
    let what = if ft.is_block_device() {
        "a block device"
    } else {
        "a file"
    };
    Ok(Probe {
        path: Some(path.into()),
        explanation: format!(
            "{what} behind the page cache ({fs}): writes reach the media only when written back; a host crash can lose them"
        ),
        class: BackendClass::PageCache { fs },
        crash_persistent: false,
    })
}

/// The probe result for anonymous memory.
pub fn probe_ram() -> Probe {
    Probe {
        path: None,
        class: BackendClass::Ram,
        crash_persistent: false,
        explanation: "anonymous RAM: the contents are lost when pmvm exits".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_shm_is_volatile_and_missing_files_say_where() {
        let dir = std::env::temp_dir().join(format!("pmem-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("x.img");
        let p = probe_path(&f).unwrap();
        assert!(matches!(p.class, BackendClass::Missing { .. }));
        std::fs::write(&f, vec![0u8; 8192]).unwrap();
        let p = probe_path(&f).unwrap();
        assert!(!p.crash_persistent);
        if Path::new("/dev/shm").exists() {
            let s = Path::new("/dev/shm").join(format!("pmem-probe-{}", std::process::id()));
            std::fs::write(&s, vec![0u8; 8192]).unwrap();
            let p = probe_path(&s).unwrap();
            assert_eq!(p.class, BackendClass::Volatile { fs: "tmpfs".into() });
            assert!(!map_sync_works(&s));
            std::fs::remove_file(&s).unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(probe_path(Path::new("/dev/null")).is_err());
    }
}
