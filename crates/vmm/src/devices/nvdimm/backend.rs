//! Memory backends: a host file, device DAX or anonymous RAM, mapped once into pmvm. The whole
//! backend is mapped (pmem part + label area); only the pmem part becomes guest memory.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use pmem_probe::{BackendClass, MAP_SHARED_VALIDATE, MAP_SYNC, Probe};
use vm_config::{BackendConfig, BackendKind};

/// Why a backend could not be opened or mapped. Every message starts with the `-object` it is
/// about.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend's file is unusable as it is (missing, not writable, too small).
    #[error("-object {id}: mem-path={}: {what}", path.display())]
    Path {
        id: String,
        path: std::path::PathBuf,
        what: String,
    },
    /// A host call on the backend's file failed.
    #[error("-object {id}: mem-path={}: {what}: {source}", path.display())]
    PathIo {
        id: String,
        path: std::path::PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The persistence probe of the file failed.
    #[error("-object {id}: probing {}: {source}", path.display())]
    Probe {
        id: String,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The options do not fit the backend (align, size, persistence).
    #[error("-object {id}: {what}")]
    Invalid { id: String, what: String },
    /// Reserving or mapping the backend's address range failed.
    #[error("-object {id}: {what}: {source}")]
    Map {
        id: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, BackendError>;

/// A mapped memory backend.
pub struct Backend {
    pub id: String,
    /// Start of the backend mapping (aligned to the backend's alignment).
    ptr: *mut u8,
    len: usize,
    /// The whole reservation (alignment padding included), for munmap.
    reservation: (*mut libc::c_void, usize),
    pub shared: bool,
    pub readonly: bool,
    pub pmem: bool,
    /// MAP_SYNC is in effect: stores are persistent once flushed from the CPU cache.
    pub map_sync: bool,
    pub probe: Probe,
    discard_data: bool,
    _file: Option<File>,
}

// SAFETY: the mapping is process-wide memory; Backend only hands out copies through bounds-checked
// methods and the raw pointer is never dereferenced outside them.
unsafe impl Send for Backend {}
// SAFETY: see above; concurrent label accesses are serialised by the NVDIMM controller's lock.
unsafe impl Sync for Backend {}

fn open_file(cfg: &BackendConfig, path: &Path, readonly: bool) -> Result<File> {
    let bad = |what: &str| BackendError::Path {
        id: cfg.id.clone(),
        path: path.to_path_buf(),
        what: what.to_string(),
    };
    let io = |what: &'static str| {
        move |source| BackendError::PathIo {
            id: cfg.id.clone(),
            path: path.to_path_buf(),
            what,
            source,
        }
    };
    let exists = path.exists();
    let writable = !readonly;
    let mut opts = OpenOptions::new();
    opts.read(true).write(writable);
    if !exists {
        if readonly {
            return Err(bad("does not exist (readonly=on cannot create it)"));
        }
        opts.create(true);
    }
    let file = match opts.open(path) {
        Ok(f) => f,
        // share=off never writes the file: a read-only file can still back a private mapping.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && !cfg.share && exists => {
            OpenOptions::new()
                .read(true)
                .open(path)
                .map_err(io("cannot open"))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(bad(
                "is not writable; share=on needs write access (fix the permissions, or use readonly=on with unarmed=on)",
            ));
        }
        Err(e) => return Err(io("cannot open")(e)),
    };
    let meta = file.metadata().map_err(io("cannot stat"))?;
    if meta.file_type().is_file() {
        let len = meta.len();
        if len == 0 && !readonly {
            file.set_len(cfg.size)
                .map_err(io("cannot size the new file"))?;
        } else if len < cfg.size {
            // Growing a used backend would move its label area (the last label-size bytes) and
            // expose stale bytes as guest data, so refuse as QEMU >= 2.8 does.
            return Err(bad(&format!(
                "backing store size {len:#x} is too small for 'size' option {:#x}; use size={len} or grow the file deliberately (truncate -s)",
                cfg.size
            )));
        }
    }
    Ok(file)
}

impl Backend {
    /// Opens and maps a backend. `require_persistence` turns the pmem=on-without-MAP_SYNC
    /// warning into an error.
    pub fn open(cfg: &BackendConfig, require_persistence: bool) -> Result<Backend> {
        let invalid = |what: String| BackendError::Invalid {
            id: cfg.id.clone(),
            what,
        };
        let (file, probe, align, pmem, readonly, discard) = match &cfg.kind {
            BackendKind::Ram => (
                None,
                pmem_probe::probe_ram(),
                cfg.align(),
                false,
                false,
                false,
            ),
            BackendKind::File {
                mem_path,
                pmem,
                readonly,
                discard_data,
                ..
            } => {
                let file = open_file(cfg, mem_path, *readonly)?;
                let probe =
                    pmem_probe::probe_path(mem_path).map_err(|source| BackendError::Probe {
                        id: cfg.id.clone(),
                        path: mem_path.clone(),
                        source,
                    })?;
                let mut align = cfg.align();
                if let BackendClass::DeviceDax {
                    align: dev_align,
                    size,
                } = &probe.class
                {
                    if let Some(a) = dev_align.filter(|a| *a > align) {
                        return Err(invalid(format!(
                            "backing store align {a:#x} is larger than 'align' option {align:#x}; add align={}",
                            pmem_layout::format_size_arg(a)
                        )));
                    }
                    if let Some(s) = size.filter(|s| *s < cfg.size) {
                        return Err(invalid(format!(
                            "{} has {s} bytes, less than size={}",
                            mem_path.display(),
                            cfg.size
                        )));
                    }
                    align = align.max(dev_align.unwrap_or(0));
                }
                (Some(file), probe, align, *pmem, *readonly, *discard_data)
            }
        };
        let len = usize::try_from(cfg.size).map_err(|_| invalid("size too large".into()))?;
        let align = usize::try_from(align).unwrap_or(4096).max(4096);
        // Reserve len + align of address space, then map the backend at an aligned address
        // inside it (device DAX refuses unaligned mappings; the guest range must be aligned too).
        let resv_len = len
            .checked_add(align)
            .ok_or_else(|| invalid("size too large".into()))?;
        // SAFETY: an anonymous PROT_NONE reservation; no existing memory is affected.
        let resv = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                resv_len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if resv == libc::MAP_FAILED {
            return Err(BackendError::Map {
                id: cfg.id.clone(),
                what: "cannot reserve address space".into(),
                source: std::io::Error::last_os_error(),
            });
        }
        let aligned = ((resv as usize).div_ceil(align) * align) as *mut libc::c_void;
        let prot = if readonly {
            libc::PROT_READ
        } else {
            libc::PROT_READ | libc::PROT_WRITE
        };
        let populate = if cfg.prealloc { libc::MAP_POPULATE } else { 0 };
        let map = |flags: libc::c_int, fd: libc::c_int| {
            // SAFETY: MAP_FIXED inside our own reservation [resv, resv+resv_len), which covers
            // [aligned, aligned+len); nothing else lives there.
            unsafe {
                libc::mmap(
                    aligned,
                    len,
                    prot,
                    flags | libc::MAP_FIXED | libc::MAP_NORESERVE | populate,
                    fd,
                    0,
                )
            }
        };
        let mut map_sync = false;
        let ptr = match &file {
            None => {
                let share = if cfg.share {
                    libc::MAP_SHARED
                } else {
                    libc::MAP_PRIVATE
                };
                map(share | libc::MAP_ANONYMOUS, -1)
            }
            Some(f) if cfg.share => {
                let fd = f.as_raw_fd();
                let is_char = f
                    .metadata()
                    .map(|m| m.file_type().is_char_device())
                    .unwrap_or(false);
                if pmem && !is_char && !readonly {
                    let p = map(MAP_SHARED_VALIDATE | MAP_SYNC, fd);
                    if p != libc::MAP_FAILED {
                        map_sync = true;
                        p
                    } else {
                        let detail = format!(
                            "pmem=on but {} cannot be mapped with MAP_SYNC ({}): guest writes are NOT guaranteed to survive a host crash; use device DAX or a file on a filesystem mounted with -o dax",
                            probe.path.as_deref().unwrap_or(Path::new("?")).display(),
                            probe.explanation
                        );
                        if require_persistence {
                            // SAFETY: unmapping our own reservation.
                            unsafe { libc::munmap(resv, resv_len) };
                            return Err(invalid(format!(
                                "{detail} (refused because of -require-persistence)"
                            )));
                        }
                        let msg = format!("-object {}: {detail}", cfg.id);
                        tracing::warn!("{msg}");
                        eprintln!("pmvm: warning: {msg}");
                        map(libc::MAP_SHARED, fd)
                    }
                } else {
                    map(libc::MAP_SHARED, fd)
                }
            }
            Some(f) => map(libc::MAP_PRIVATE, f.as_raw_fd()),
        };
        if ptr == libc::MAP_FAILED {
            let e = std::io::Error::last_os_error();
            // SAFETY: unmapping our own reservation.
            unsafe { libc::munmap(resv, resv_len) };
            return Err(BackendError::Map {
                id: cfg.id.clone(),
                what: format!("cannot map the backend ({len} bytes, align {align:#x})"),
                source: e,
            });
        }
        if require_persistence
            && !(probe.crash_persistent
                && (map_sync || matches!(probe.class, BackendClass::DeviceDax { .. })))
        {
            // SAFETY: unmapping our own reservation.
            unsafe { libc::munmap(resv, resv_len) };
            return Err(invalid(format!(
                "-require-persistence: {}; use device DAX, or a DAX file with pmem=on,share=on",
                probe.explanation
            )));
        }
        Ok(Backend {
            id: cfg.id.clone(),
            ptr: ptr.cast(),
            len,
            reservation: (resv, resv_len),
            shared: cfg.share,
            readonly,
            pmem,
            map_sync,
            probe,
            discard_data: discard,
            _file: file,
        })
    }

    /// Host address of the mapping.
    pub fn host_addr(&self) -> u64 {
        self.ptr as u64
    }

    /// Backend size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the backend is empty (never: sizes are checked to be > 0).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn range(&self, offset: u64, len: usize) -> Option<usize> {
        let off = usize::try_from(offset).ok()?;
        (off.checked_add(len)? <= self.len).then_some(off)
    }

    /// Copies bytes out of the backend; None when out of range.
    pub fn read(&self, offset: u64, out: &mut [u8]) -> Option<()> {
        let off = self.range(offset, out.len())?;
        // SAFETY: [off, off+len) is inside the live mapping (checked by `range`).
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(off), out.as_mut_ptr(), out.len()) };
        Some(())
    }

    /// Copies bytes into the backend and makes them durable: msync for page-cache files, a
    /// cache-line write-back for MAP_SYNC/device DAX. None when out of range or read-only.
    pub fn write_durable(&self, offset: u64, data: &[u8]) -> Option<std::io::Result<()>> {
        if self.readonly {
            return None;
        }
        let off = self.range(offset, data.len())?;
        // SAFETY: [off, off+len) is inside the live, writable mapping (checked above).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(off), data.len()) };
        Some(self.flush(off, data.len()))
    }

    fn flush(&self, off: usize, len: usize) -> std::io::Result<()> {
        if !self.shared || len == 0 {
            return Ok(()); // private or anonymous memory: nothing to make durable
        }
        if self.map_sync || matches!(self.probe.class, BackendClass::DeviceDax { .. }) {
            flush_cache_lines(self.ptr as usize + off, len);
            return Ok(());
        }
        if self.probe.class == BackendClass::Ram {
            return Ok(());
        }
        let page = 4096usize;
        let start = (off / page) * page;
        let end = (off + len).div_ceil(page) * page;
        // SAFETY: [start, end) lies within the page-aligned mapping (`range` checked off+len).
        let rc = unsafe {
            libc::msync(
                self.ptr.add(start).cast(),
                end.min(self.len) - start,
                libc::MS_SYNC,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

/// Writes back every cache line of [addr, addr+len) with CLWB when available, else CLFLUSHOPT or
/// CLFLUSH, then fences.
fn flush_cache_lines(addr: usize, len: usize) {
    let start = addr & !63;
    let end = addr + len;
    // CPUID.(7,0):EBX[24] = CLWB.
    let clwb = std::arch::x86_64::__cpuid_count(7, 0).ebx & (1 << 24) != 0;
    let mut p = start;
    while p < end {
        // SAFETY: p points into a mapping we own; cache write-back instructions do not change
        // memory contents.
        unsafe {
            if clwb {
                std::arch::asm!("clwb [{0}]", in(reg) p, options(nostack, preserves_flags));
            } else {
                std::arch::asm!("clflush [{0}]", in(reg) p, options(nostack, preserves_flags));
            }
        }
        p += 64;
    }
    // SAFETY: sfence has no preconditions.
    unsafe { std::arch::asm!("sfence", options(nostack, preserves_flags)) };
}

impl Backend {
    /// Writes every dirty page of a shared file backend back to the file (msync MS_SYNC of
    /// the whole mapping) and returns the time it took; `Ok(None)` when there is nothing a
    /// host crash could lose (RAM, tmpfs, device DAX, private or read-only mappings).
    /// Called when the backend goes away, so that "the guest powered off" (or `quit`, or
    /// SIGTERM) also means "its NVDIMM data is on stable storage". QEMU leaves it to the
    /// kernel's writeback, up to ~30 s later.
    pub fn write_back(&self) -> std::io::Result<Option<std::time::Duration>> {
        let file_backed = matches!(
            self.probe.class,
            BackendClass::PageCache { .. } | BackendClass::DaxFile | BackendClass::Missing { .. }
        );
        if !self.shared || self.readonly || !file_backed {
            return Ok(None);
        }
        let t0 = std::time::Instant::now();
        // SAFETY: [ptr, ptr+len) is this backend's live, page-aligned shared mapping.
        let rc = unsafe { libc::msync(self.ptr.cast(), self.len, libc::MS_SYNC) };
        if rc == 0 {
            Ok(Some(t0.elapsed()))
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if self.discard_data && self.shared && !self.readonly {
            // SAFETY: the range is our live mapping; MADV_REMOVE punches the backing file.
            unsafe { libc::madvise(self.ptr.cast(), self.len, libc::MADV_REMOVE) };
        } else {
            let what = self.probe.path.as_ref().map(|p| p.display().to_string());
            let what = what.unwrap_or_else(|| self.id.clone());
            match self.write_back() {
                Ok(Some(t)) => tracing::debug!("{}: {what} written back in {t:?}", self.id),
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    "{}: cannot write {what} back to storage ({e}): guest data written since the last flush may be lost if the host crashes now",
                    self.id
                ),
            }
        }
        // SAFETY: unmapping the reservation this Backend created and still owns.
        unsafe { libc::munmap(self.reservation.0, self.reservation.1) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_config::{BackendConfig, BackendKind};

    /// Dirty bytes (Shared_Dirty + Private_Dirty, KiB) of the mapping that starts at `addr`.
    fn dirty_kib(addr: usize) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        let mut kib = 0;
        for line in smaps.lines() {
            let first = line.split_whitespace().next().unwrap_or("");
            if let Some((a, b)) = first.split_once('-')
                && let (Ok(start), Ok(_)) =
                    (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                inside = start == addr;
                continue;
            }
            if inside && (line.starts_with("Shared_Dirty:") || line.starts_with("Private_Dirty:")) {
                kib += line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        kib
    }

    /// A directory on a file system with real write-back (not tmpfs, where msync keeps pages dirty).
    fn disk_dir() -> std::path::PathBuf {
        let tmp = std::env::temp_dir();
        match pmem_probe::probe_path(&tmp).map(|p| p.class) {
            Ok(BackendClass::Volatile { .. }) => {
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            }
            _ => tmp,
        }
    }

    #[test]
    fn write_back_cleans_every_dirty_page_of_a_shared_file() {
        let path = disk_dir().join(format!("pmvm-writeback-{}.img", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let cfg = BackendConfig {
            id: "mem1".into(),
            size: 4 << 20,
            share: true,
            prealloc: false,
            kind: BackendKind::File {
                mem_path: path.clone(),
                align: None,
                pmem: false,
                readonly: false,
                discard_data: false,
            },
        };
        let b = Backend::open(&cfg, false).expect("open");
        // Dirty the pages the way the guest does, through the mapping:
        // SAFETY: the mapping is live and 4 MiB long.
        unsafe { std::ptr::write_bytes(b.ptr, 0x5a, 4 << 20) };
        assert!(
            dirty_kib(b.host_addr() as usize) >= 4096,
            "guest writes left pages dirty"
        );
        assert!(b.write_back().expect("msync").is_some());
        assert_eq!(
            dirty_kib(b.host_addr() as usize),
            0,
            "write_back left dirty pages"
        );
        drop(b);
        let data = std::fs::read(&path).unwrap();
        assert!(data.iter().all(|&x| x == 0x5a));
        let _ = std::fs::remove_file(&path);
    }
}
