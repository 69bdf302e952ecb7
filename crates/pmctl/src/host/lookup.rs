//! From a path the user typed to the host device behind it: a device-DAX
//! character device, a pmem block device (or partition), or a regular file
//! and the disk its filesystem lives on; then to the namespace, if any.
//!
//! The kernel names every device node in `/sys/dev/{char,block}/MAJ:MIN`, so
//! renamed or symlinked nodes (`/dev/disk/by-...`) resolve correctly.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::sysfs::{self, HostNvdimms, Namespace};

/// What a path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A device-DAX character device; `sysdir` is its sysfs directory.
    DaxChar {
        /// `daxX.Y`.
        name: String,
        /// Sysfs directory (`size`, `align`).
        sysdir: PathBuf,
    },
    /// A block device (whole disk or partition).
    Block(BlockDev),
    /// A regular file; `fs_disk` is the block device its filesystem is on, if known.
    File {
        /// File length.
        len: u64,
        /// The filesystem's disk.
        fs_disk: Option<BlockDev>,
    },
}

/// A block device by its kernel names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDev {
    /// Whole disk (`pmem1`, `pmem0.1s`).
    pub disk: String,
    /// Partition (`pmem1p1`) when the node is one.
    pub partition: Option<String>,
    /// Bytes of the disk or partition (sysfs `size` × 512).
    pub size: Option<u64>,
}

/// Lookup failures.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// stat failed.
    #[error("cannot stat {path}: {source}")]
    Stat {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A character device that is not device DAX.
    #[error(
        "{0} is a character device but not device DAX (/dev/daxX.Y); NVDIMM backends are /dev/daxX.Y, /dev/pmemX or files"
    )]
    NotDax(PathBuf),
    /// Sockets, fifos, directories.
    #[error(
        "{0} is not a device or a regular file; give /dev/daxX.Y, /dev/pmemX, a backend file or a namespace name"
    )]
    Unsupported(PathBuf),
}

fn block_from_sysdir(dir: &Path) -> Option<BlockDev> {
    let real = std::fs::canonicalize(dir).ok()?;
    let name = real.file_name()?.to_str()?.to_owned();
    let size = sysfs::attr_u64(&real, "size").and_then(|s| s.checked_mul(512));
    if real.join("partition").exists() {
        let disk = real.parent()?.file_name()?.to_str()?.to_owned();
        Some(BlockDev {
            disk,
            partition: Some(name),
            size,
        })
    } else {
        Some(BlockDev {
            disk: name,
            partition: None,
            size,
        })
    }
}

fn dev_dir(root: &Path, kind: &str, rdev: u64) -> PathBuf {
    root.join("dev")
        .join(kind)
        .join(format!("{}:{}", libc::major(rdev), libc::minor(rdev)))
}

/// Classify `path` using sysfs under `root`.
pub fn classify(root: &Path, path: &Path) -> Result<Target, LookupError> {
    let meta = std::fs::metadata(path).map_err(|source| LookupError::Stat {
        path: path.to_owned(),
        source,
    })?;
    let ft = meta.file_type();
    if ft.is_char_device() {
        let dir = dev_dir(root, "char", meta.rdev());
        let real = std::fs::canonicalize(&dir).map_err(|_| LookupError::NotDax(path.into()))?;
        let name = real
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let is_dax = std::fs::read_link(real.join("subsystem"))
            .ok()
            .and_then(|s| s.file_name().map(|f| f == "dax"))
            .unwrap_or(false)
            || sysfs::dev_numbers(&name, "dax").is_some();
        if !is_dax {
            return Err(LookupError::NotDax(path.into()));
        }
        return Ok(Target::DaxChar { name, sysdir: real });
    }
    if ft.is_block_device() {
        let dir = dev_dir(root, "block", meta.rdev());
        let b = block_from_sysdir(&dir).unwrap_or_else(|| BlockDev {
            disk: path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned(),
            partition: None,
            size: None,
        });
        return Ok(Target::Block(b));
    }
    if ft.is_file() {
        let fs_disk = block_from_sysdir(&dev_dir(root, "block", meta.dev()));
        return Ok(Target::File {
            len: meta.len(),
            fs_disk,
        });
    }
    Err(LookupError::Unsupported(path.into()))
}

/// The namespace whose device node is `/dev/<name>`.
pub fn namespace_by_device<'a>(host: &'a HostNvdimms, name: &str) -> Option<&'a Namespace> {
    let want = Path::new("/dev").join(name);
    host.namespaces
        .iter()
        .find(|n| n.device.as_deref() == Some(want.as_path()))
}

/// The namespace behind a classified target (for a file: the one its filesystem is on).
pub fn namespace_of<'a>(host: &'a HostNvdimms, t: &Target) -> Option<&'a Namespace> {
    match t {
        Target::DaxChar { name, .. } => namespace_by_device(host, name),
        Target::Block(b) => namespace_by_device(host, &b.disk),
        Target::File { fs_disk, .. } => fs_disk
            .as_ref()
            .and_then(|b| namespace_by_device(host, &b.disk)),
    }
}

/// A namespace given by name (`namespace0.0`).
pub fn namespace_by_name<'a>(host: &'a HostNvdimms, dev: &str) -> Option<&'a Namespace> {
    host.namespaces.iter().find(|n| n.dev == dev)
}
