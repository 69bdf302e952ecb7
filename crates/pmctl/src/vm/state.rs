//! VM definitions on disk: one JSON file per VM in the state directory,
//! written atomically (temporary file, fsync, rename, fsync of the directory)
//! so a crash leaves the old or the new definition, never a torn one. The
//! NVDIMM assignments record the sizing computed at attach time; nothing is
//! recomputed later, so the label area never moves (management-and-labels.md §6).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::VmError;

/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/pmctl";

/// A VM definition (`STATE/NAME.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmDef {
    /// Name (also the file name and `-name guest=`).
    pub name: String,
    /// Guest RAM in bytes (without NVDIMMs).
    pub memory: u64,
    /// vCPUs.
    pub cpus: u32,
    /// Kernel image (direct boot); `None`: firmware boot from the disks (older
    /// definitions always have one, so they load unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<PathBuf>,
    /// Firmware image for a firmware boot (`-bios`); `None`: pmvm's default SeaBIOS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bios: Option<PathBuf>,
    /// Initial ramdisk.
    #[serde(default)]
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    #[serde(default)]
    pub append: String,
    /// Memory-device slots (`-m slots=`).
    pub slots: u32,
    /// Derived `-m maxmem=`: memory + sum of NVDIMM backend sizes + headroom + `hotplug`
    /// (oVirt raises maxMemory by the NVDIMM sizes); equals `memory` without NVDIMMs and
    /// without `hotplug`. Fixed while the VM runs.
    pub maxmem: u64,
    /// Room in `maxmem` for NVDIMMs attached while the VM runs (`--hotplug-room`).
    #[serde(default)]
    pub hotplug: u64,
    /// Host NVDIMM assignments, in slot order.
    #[serde(default)]
    pub nvdimms: Vec<Assignment>,
    /// Raw disk images, given to the guest as virtio disks /dev/vda, /dev/vdb, ... in order.
    #[serde(default)]
    pub disks: Vec<Disk>,
}

/// A disk image of a VM (`-drive file=...,format=raw,if=virtio`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    /// Image path (canonical when it existed at create time).
    pub path: PathBuf,
    /// Given read-only (`readonly=on`).
    #[serde(default)]
    pub readonly: bool,
}

/// One host device assigned to a VM, with the sizing fixed at attach time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// Host path (canonical): `/dev/daxX.Y`, `/dev/pmemX` or a file.
    pub path: PathBuf,
    /// `device-dax`, `block` or `file`.
    pub kind: String,
    /// Host namespace behind it, if known.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Namespace mode at attach time (ndctl name), if known.
    #[serde(default)]
    pub mode: Option<String>,
    /// Host device size at attach time (bytes).
    pub host_size: u64,
    /// Host alignment at attach time (None: none reported, 128 MiB used).
    #[serde(default)]
    pub host_align: Option<u64>,
    /// Whether the backend gave crash persistence (MAP_SYNC) at attach time.
    pub crash_persistent: bool,
    /// Fixed DIMM slot (NFIT handle and serial derive from it).
    pub slot: u32,
    /// Device id (`nv<slot>`); the backend is `mem<id>`.
    pub id: String,
    /// Alignment passed as the backend's `align=`.
    pub align: u64,
    /// Backend `size=` (pmem_layout::guest_nvdimm_size).
    pub backend_size: u64,
    /// Guest-visible pmem bytes.
    pub guest_size: u64,
    /// Label area size (128 KiB).
    pub label_size: u64,
    /// Label area offset in the backend.
    pub label_offset: u64,
}

/// Validate a VM name: it becomes a file name and a QEMU id.
pub fn validate_name(name: &str) -> Result<(), VmError> {
    let mut c = name.chars();
    let ok = name.len() <= 64
        && c.next().is_some_and(|f| f.is_ascii_alphabetic())
        && c.all(|x| x.is_ascii_alphanumeric() || matches!(x, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(VmError::BadName(name.chars().take(80).collect()))
    }
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// An exclusive lock on the state directory (released on drop), so the CLI
/// and a running `pmctl serve` never interleave read-modify-write cycles.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

impl Store {
    /// A store in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `STATE/NAME.json`.
    pub fn def_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// `STATE/NAME.pid` (pmvm `-pidfile`).
    pub fn pidfile(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pid"))
    }

    /// `STATE/NAME.qmp` (QMP socket).
    pub fn qmp_socket(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.qmp"))
    }

    /// `STATE/NAME.console` (serial output).
    pub fn console(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.console"))
    }

    fn ensure_dir(&self) -> Result<(), VmError> {
        fs::create_dir_all(&self.dir)
            .map_err(|e| VmError::io("cannot create state directory", &self.dir, e))
    }

    /// Take the directory lock (blocks while another pmctl holds it).
    pub fn lock(&self) -> Result<StoreLock, VmError> {
        self.ensure_dir()?;
        let p = self.dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| VmError::io("cannot open lock file", &p, e))?;
        // SAFETY: flock on a file descriptor we own; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(VmError::io(
                "cannot lock",
                &p,
                std::io::Error::last_os_error(),
            ));
        }
        Ok(StoreLock { _file: file })
    }

    /// Whether a definition exists.
    pub fn exists(&self, name: &str) -> bool {
        validate_name(name).is_ok() && self.def_path(name).is_file()
    }

    /// Load `name`.
    pub fn load(&self, name: &str) -> Result<VmDef, VmError> {
        validate_name(name)?;
        let p = self.def_path(name);
        let text = match fs::read(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(VmError::NotFound {
                    name: name.to_owned(),
                    dir: self.dir.clone(),
                });
            }
            Err(e) => return Err(VmError::io("cannot read", p, e)),
        };
        serde_json::from_slice(&text).map_err(|source| VmError::BadState { path: p, source })
    }

    /// Write `def` atomically: `.NAME.json.tmp`, fsync, rename over `NAME.json`, fsync the directory.
    pub fn save(&self, def: &VmDef) -> Result<(), VmError> {
        validate_name(&def.name)?;
        self.ensure_dir()?;
        let dst = self.def_path(&def.name);
        let tmp = self
            .dir
            .join(format!(".{}.json.tmp{}", def.name, std::process::id()));
        let mut text = serde_json::to_vec_pretty(def).map_err(|source| VmError::BadState {
            path: dst.clone(),
            source,
        })?;
        text.push(b'\n');
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            fs::rename(&tmp, &dst)?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            VmError::io("cannot write", &dst, e)
        })
    }

    /// All definitions, sorted by name (an absent directory is an empty list).
    pub fn list(&self) -> Result<Vec<VmDef>, VmError> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(VmError::io("cannot list", &self.dir, e)),
        };
        let mut out = Vec::new();
        for ent in rd.flatten() {
            let file = ent.file_name();
            let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".json")) else {
                continue;
            };
            if validate_name(name).is_ok() {
                out.push(self.load(name)?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Remove `name`'s definition and its run-time files.
    pub fn remove(&self, name: &str) -> Result<(), VmError> {
        validate_name(name)?;
        let p = self.def_path(name);
        fs::remove_file(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => VmError::NotFound {
                name: name.to_owned(),
                dir: self.dir.clone(),
            },
            _ => VmError::io("cannot remove", &p, e),
        })?;
        for f in [self.pidfile(name), self.qmp_socket(name)] {
            let _ = fs::remove_file(f);
        }
        Ok(())
    }
}
