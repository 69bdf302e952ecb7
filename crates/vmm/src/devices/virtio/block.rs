//! virtio-blk (virtio 1.2 section 5.2) over a raw image file.
//!
//! Requests: IN, OUT, FLUSH, GET_ID, DISCARD, WRITE_ZEROES; anything else gets
//! VIRTIO_BLK_S_UNSUPP. Every descriptor chain is hostile: its readable part must hold the
//! 16-byte header, its writable part ends with the status byte, sector and length are checked
//! against the capacity with checked arithmetic, and data moves with positional I/O
//! (pread/pwrite) straight between the image and guest memory, one memory-region slice at a
//! time, so neither a 4 GiB descriptor nor an address outside guest memory can make pmvm
//! allocate, panic or touch the file outside the image.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;

use virtio_queue::{Queue, QueueT};
use vm_config::{DriveCache, DriveConfig};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use super::VirtioDevice;
use virtio_bindings::virtio_blk::*;
use virtio_bindings::virtio_ids::VIRTIO_ID_BLOCK;

/// Why a `-drive` image could not be opened. Messages start with the drive's option.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The image file cannot be opened.
    #[error("{drive}: cannot open the image: {source}{hint}")]
    Open {
        drive: String,
        #[source]
        source: std::io::Error,
        hint: &'static str,
    },
    /// Another process holds a lock on the image.
    #[error(
        "{drive}: the image is in use by another process (it holds a lock on it); stop that VM or use a copy{hint}"
    )]
    Locked { drive: String, hint: &'static str },
    /// The image has another format's header.
    #[error(
        "{drive}: the image is in {format} format; pmvm reads raw images only (convert with: qemu-img convert -O raw {} IMAGE.raw)",
        file.display()
    )]
    Format {
        drive: String,
        format: String,
        file: std::path::PathBuf,
    },
    /// `cache=none|directsync` on a file system without O_DIRECT.
    #[error(
        "{drive}: cache={cache} needs O_DIRECT, which the file system of the image refuses ({source}; tmpfs does); use cache=writeback or move the image"
    )]
    Direct {
        drive: String,
        cache: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Reading the image's size or header failed.
    #[error("{drive}{op}: {source}")]
    Io {
        drive: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, BlockError>;

/// Queue size: Linux then sends up to 128 requests in flight.
pub const QUEUE_SIZE: u16 = 256;
/// Segments per request announced in `seg_max` (without it Linux sends one segment each).
pub const SEG_MAX: u32 = 254;
const SECTOR: u64 = 512;
/// Alignment of memory, offset and length that O_DIRECT gets (4 KiB covers 512-byte and
/// 4 KiB logical blocks).
const DIRECT_ALIGN: usize = 4096;
/// Largest piece of a request moved at once.
const BOUNCE: usize = 256 << 10;

/// Largest discard / write-zeroes segment announced (sectors: 2 GiB), one segment per request.
const MAX_ZERO_SECTORS: u32 = 1 << 22;
/// Discard granularity announced (sectors: 4 KiB, the hole-punching unit of most file systems).
const DISCARD_ALIGN: u32 = 8;
/// Length of the GET_ID answer.
const ID_LEN: usize = VIRTIO_BLK_ID_BYTES as usize;

use vm_config::detect_image_format as detect_format;

/// A guest-memory scatter list: the readable or writable half of a descriptor chain.
#[derive(Default)]
struct Segments(Vec<(GuestAddress, u64)>);

impl Segments {
    fn len(&self) -> u64 {
        self.0.iter().map(|s| s.1).sum()
    }

    /// Calls `f(address, length)` for the pieces of `[offset, offset+len)`.
    fn pieces(
        &self,
        mut offset: u64,
        mut len: u64,
        mut f: impl FnMut(GuestAddress, usize) -> bool,
    ) -> bool {
        for &(addr, seg_len) in &self.0 {
            if len == 0 {
                break;
            }
            if offset >= seg_len {
                offset -= seg_len;
                continue;
            }
            let n = (seg_len - offset).min(len);
            let Some(a) = addr.0.checked_add(offset) else {
                return false;
            };
            // n <= seg_len, a descriptor length (u32), so it fits usize.
            if !f(GuestAddress(a), n as usize) {
                return false;
            }
            len -= n;
            offset = 0;
        }
        len == 0
    }

    fn read(&self, mem: &GuestMemoryMmap, offset: u64, buf: &mut [u8]) -> bool {
        let mut done = 0;
        self.pieces(offset, buf.len() as u64, |a, n| {
            let ok = mem.read_slice(&mut buf[done..done + n], a).is_ok();
            done += n;
            ok
        })
    }

    fn write(&self, mem: &GuestMemoryMmap, offset: u64, buf: &[u8]) -> bool {
        let mut done = 0;
        self.pieces(offset, buf.len() as u64, |a, n| {
            let ok = mem.write_slice(&buf[done..done + n], a).is_ok();
            done += n;
            ok
        })
    }
}

/// A virtio-blk device over a raw image.
pub struct Block {
    file: File,
    /// Capacity in 512-byte sectors.
    capacity: u64,
    readonly: bool,
    cache: DriveCache,
    id: [u8; ID_LEN],
    /// The format was probed, not given: refuse guest writes that would make sector 0 look like
    /// another image format (what QEMU calls restricting writes to block 0).
    guard_sector0: bool,
    /// `discard=unmap`: guest discards punch holes (otherwise DISCARD is not offered).
    discard: bool,
    /// `cache=none|directsync`: the image opened again with O_DIRECT, used for every piece of
    /// guest memory and image range aligned to [`DIRECT_ALIGN`]; other pieces use `file`.
    direct: Option<File>,
    bounce: Vec<u8>,
    queue_sizes: [u16; 1],
}

impl Block {
    /// Opens the image of `-drive`, locks it and probes its format. Returns the device and the
    /// warnings to print (probed format, IDE given as virtio).
    /// `position` is the drive's place among the VM's drives (the guest's vda, vdb, ...).
    pub fn open(cfg: &DriveConfig, position: usize) -> Result<(Block, Vec<String>)> {
        let what = format!("-drive file={}", cfg.file.display());
        let mut flags = libc::O_CLOEXEC;
        if cfg.cache.write_through() {
            flags |= libc::O_DSYNC;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(!cfg.readonly)
            .custom_flags(flags)
            .open(&cfg.file)
            .map_err(|e| {
                let hint = match e.kind() {
                    std::io::ErrorKind::PermissionDenied if !cfg.readonly => {
                        "; add readonly=on to use it read-only"
                    }
                    std::io::ErrorKind::NotFound => {
                        "; create it with: qemu-img create -f raw FILE SIZE"
                    }
                    _ => "",
                };
                BlockError::Open {
                    drive: what.clone(),
                    source: e,
                    hint,
                }
            })?;
        let lock = if cfg.readonly {
            libc::LOCK_SH
        } else {
            libc::LOCK_EX
        };
        // SAFETY: flock on a descriptor we own; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), lock | libc::LOCK_NB) } != 0 {
            return Err(BlockError::Locked {
                drive: what,
                hint: if cfg.readonly {
                    ""
                } else {
                    ", or add readonly=on if both only read it"
                },
            });
        }
        let size = file
            .seek(SeekFrom::End(0))
            .map_err(|source| BlockError::Io {
                drive: what.clone(),
                op: ": size",
                source,
            })?;
        let mut warnings = Vec::new();
        if size % SECTOR != 0 {
            warnings.push(format!(
                "pmvm: warning: {what}: the image is {size} bytes, not a multiple of 512; \
                 the guest sees {} bytes",
                size / SECTOR * SECTOR
            ));
        }
        if !cfg.format_given {
            let mut head = vec![0u8; 512];
            file.seek(SeekFrom::Start(0))
                .map_err(|source| BlockError::Io {
                    drive: what.clone(),
                    op: "",
                    source,
                })?;
            let n = file.read(&mut head).map_err(|source| BlockError::Io {
                drive: what.clone(),
                op: ": read",
                source,
            })?;
            if let Some(f) = detect_format(&head[..n]) {
                return Err(BlockError::Format {
                    drive: what,
                    format: f.to_string(),
                    file: cfg.file.clone(),
                });
            }
            warnings.push(format!(
                "pmvm: warning: {what}: no format= given; the image is used as raw and guest \
                 writes to sector 0 that look like another image format are refused (add format=raw)"
            ));
        }
        if cfg.if_ide {
            warnings.push(format!(
                "pmvm: {what}: given to the guest as virtio disk /dev/vd{} (pmvm has no IDE \
                 controller; the guest kernel needs virtio_mmio and virtio_blk)",
                char::from(b'a' + (position as u8).min(25))
            ));
        }
        let mut block = Block::from_file(file, size, cfg);
        if cfg.cache.direct() {
            let direct = OpenOptions::new()
                .read(true)
                .write(!cfg.readonly)
                .custom_flags(flags | libc::O_DIRECT)
                .open(&cfg.file)
                .map_err(|source| BlockError::Direct {
                    drive: what.clone(),
                    cache: cfg.cache.as_str(),
                    source,
                })?;
            block.direct = Some(direct);
        }
        Ok((block, warnings))
    }

    /// A device over an open image of `size` bytes, configured by `cfg` (its file is not
    /// opened again). A probed format (no `format=`) guards sector 0.
    pub fn from_file(file: File, size: u64, cfg: &DriveConfig) -> Block {
        let mut id = [0u8; ID_LEN];
        let n = cfg.id.len().min(ID_LEN);
        id[..n].copy_from_slice(&cfg.id.as_bytes()[..n]);
        Block {
            file,
            capacity: size / SECTOR,
            readonly: cfg.readonly,
            cache: cfg.cache,
            id,
            guard_sector0: !cfg.format_given,
            discard: cfg.discard && !cfg.readonly,
            direct: None,
            bounce: Vec::new(),
            queue_sizes: [QUEUE_SIZE],
        }
    }

    /// One line for the start-up log.
    pub fn describe(&self, cfg: &DriveConfig) -> String {
        format!(
            "drive {}: {} ({} bytes, {}, cache={})",
            cfg.id,
            cfg.file.display(),
            self.capacity * SECTOR,
            if self.readonly {
                "read-only"
            } else {
                "read-write"
            },
            self.cache.as_str()
        )
    }

    /// Checks `[sector, sector + len)` against the capacity; returns the byte offset.
    fn range(&self, sector: u64, len: u64) -> Option<u64> {
        let off = sector.checked_mul(SECTOR)?;
        let end = off.checked_add(len)?;
        (len.is_multiple_of(SECTOR) && end <= self.capacity * SECTOR).then_some(off)
    }

    /// Moves image bytes `[off, off + len)` to (`to_guest`) or from the guest buffers of `data`
    /// from byte `skip` on, with pread/pwrite straight into guest memory (no copy in pmvm).
    /// The caller checked the image range; a guest address outside memory fails the request.
    fn transfer(
        &self,
        mem: &GuestMemoryMmap,
        data: &Segments,
        skip: u64,
        off: u64,
        len: u64,
        to_guest: bool,
    ) -> bool {
        let buffered = self.file.as_raw_fd();
        let direct = self.direct.as_ref().map(|f| f.as_raw_fd());
        let mut pos = off;
        data.pieces(skip, len, |addr, n| {
            for slice in mem.get_slices(addr, n) {
                let Ok(slice) = slice else { return false };
                let (guard, count) = (slice.ptr_guard_mut(), slice.len());
                let base = guard.as_ptr();
                let mut done = 0usize;
                while done < count {
                    let at = pos as libc::off_t;
                    // O_DIRECT where memory, length and offset allow it; the page cache for
                    // the rest (the kernel keeps both coherent; FLUSH syncs both).
                    let aligned = (base as usize + done).is_multiple_of(DIRECT_ALIGN)
                        && (count - done).is_multiple_of(DIRECT_ALIGN)
                        && pos.is_multiple_of(DIRECT_ALIGN as u64);
                    let fd = match direct {
                        Some(d) if aligned => d,
                        _ => buffered,
                    };
                    // SAFETY: [base, base + count) is guest memory mapped for as long as the
                    // DMA snapshot `mem` lives (all of this call); pread/pwrite touch it as raw
                    // bytes, no Rust reference is made to it (the guest may change it meanwhile,
                    // as with any DMA).
                    let rc = unsafe {
                        let p = base.add(done).cast::<libc::c_void>();
                        if to_guest {
                            libc::pread(fd, p, count - done, at)
                        } else {
                            libc::pwrite(fd, p.cast_const(), count - done, at)
                        }
                    };
                    if rc < 0
                        && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
                    {
                        continue;
                    }
                    if rc <= 0 {
                        // An error, or end of file inside the checked range (the image shrank).
                        return false;
                    }
                    done += rc as usize;
                    pos += rc as u64;
                }
            }
            true
        })
    }

    fn read_into(&mut self, mem: &GuestMemoryMmap, data: &Segments, off: u64, len: u64) -> bool {
        self.transfer(mem, data, 0, off, len, true)
    }

    fn write_from(
        &mut self,
        mem: &GuestMemoryMmap,
        data: &Segments,
        skip: u64,
        off: u64,
        len: u64,
    ) -> bool {
        if self.guard_sector0 && off == 0 && len > 0 {
            let mut head = [0u8; 512];
            let n = len.min(512) as usize;
            if !data.read(mem, skip, &mut head[..n]) {
                return false;
            }
            if detect_format(&head[..n]).is_some() {
                tracing::warn!(
                    "virtio-blk: refused a guest write that would make sector 0 an image header"
                );
                return false;
            }
        }
        self.transfer(mem, data, skip, off, len, false)
    }

    /// Executes one request; returns (status, bytes written into the chain before the status).
    fn execute(
        &mut self,
        mem: &GuestMemoryMmap,
        readable: &Segments,
        writable: &Segments,
    ) -> (u32, u64) {
        let mut hdr = [0u8; 16];
        if readable.len() < 16 || !readable.read(mem, 0, &mut hdr) {
            return (VIRTIO_BLK_S_IOERR, 0);
        }
        let kind = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        let sector = u64::from_le_bytes([
            hdr[8], hdr[9], hdr[10], hdr[11], hdr[12], hdr[13], hdr[14], hdr[15],
        ]);
        match kind {
            VIRTIO_BLK_T_IN => {
                let len = writable.len();
                match self.range(sector, len) {
                    Some(off) if self.read_into(mem, writable, off, len) => (VIRTIO_BLK_S_OK, len),
                    _ => (VIRTIO_BLK_S_IOERR, 0),
                }
            }
            VIRTIO_BLK_T_OUT => {
                let len = readable.len() - 16;
                match self.range(sector, len) {
                    Some(off) if !self.readonly && self.write_from(mem, readable, 16, off, len) => {
                        (VIRTIO_BLK_S_OK, 0)
                    }
                    _ => (VIRTIO_BLK_S_IOERR, 0),
                }
            }
            VIRTIO_BLK_T_FLUSH => {
                if self.cache == DriveCache::Unsafe
                    || self.readonly
                    || self.file.sync_data().is_ok()
                {
                    (VIRTIO_BLK_S_OK, 0)
                } else {
                    (VIRTIO_BLK_S_IOERR, 0)
                }
            }
            VIRTIO_BLK_T_GET_ID => {
                let n = writable.len().min(ID_LEN as u64);
                if writable.write(mem, 0, &self.id[..n as usize]) {
                    (VIRTIO_BLK_S_OK, n)
                } else {
                    (VIRTIO_BLK_S_IOERR, 0)
                }
            }
            VIRTIO_BLK_T_DISCARD if self.discard => (self.zero_ranges(mem, readable, true), 0),
            VIRTIO_BLK_T_WRITE_ZEROES if !self.readonly => {
                (self.zero_ranges(mem, readable, false), 0)
            }
            _ => (VIRTIO_BLK_S_UNSUPP, 0),
        }
    }

    /// DISCARD / WRITE_ZEROES: the payload after the header is an array of 16-byte
    /// `{sector: le64, num_sectors: le32, flags: le32}` segments (flag bit 0: unmap).
    fn zero_ranges(&mut self, mem: &GuestMemoryMmap, readable: &Segments, discard: bool) -> u32 {
        let payload = readable.len() - 16;
        if payload != 16 {
            // We announce one segment per request (none, several or a torn one: unsupported).
            return VIRTIO_BLK_S_UNSUPP;
        }
        let mut seg = [0u8; 16];
        if !readable.read(mem, 16, &mut seg) {
            return VIRTIO_BLK_S_IOERR;
        }
        let sector = u64::from_le_bytes(seg[0..8].try_into().unwrap_or([0; 8]));
        let count = u32::from_le_bytes(seg[8..12].try_into().unwrap_or([0; 4]));
        let flags = u32::from_le_bytes(seg[12..16].try_into().unwrap_or([0; 4]));
        let unmap = flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP != 0;
        // Unknown flags, or unmap on a discard, are not supported (virtio 1.2 5.2.6.2).
        if flags & !VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP != 0 || (discard && unmap) {
            return VIRTIO_BLK_S_UNSUPP;
        }
        if count > MAX_ZERO_SECTORS {
            return VIRTIO_BLK_S_IOERR;
        }
        let len = u64::from(count) * SECTOR;
        let Some(off) = self.range(sector, len) else {
            return VIRTIO_BLK_S_IOERR;
        };
        if len == 0 {
            return VIRTIO_BLK_S_OK;
        }
        let fd = self.file.as_raw_fd();
        let fallocate = |mode: i32| {
            // SAFETY: fallocate on a descriptor we own, within the image (checked above).
            unsafe {
                libc::fallocate(fd, mode | libc::FALLOC_FL_KEEP_SIZE, off as i64, len as i64) == 0
            }
        };
        if discard {
            // Advisory: a file system that cannot punch holes keeps the data, which is allowed.
            fallocate(libc::FALLOC_FL_PUNCH_HOLE);
            return VIRTIO_BLK_S_OK;
        }
        if (unmap && self.discard && fallocate(libc::FALLOC_FL_PUNCH_HOLE))
            || fallocate(libc::FALLOC_FL_ZERO_RANGE)
        {
            return VIRTIO_BLK_S_OK;
        }
        // No fallocate support (a block device, an old file system): write the zeros.
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(BOUNCE as u64) as usize;
            self.bounce.clear();
            self.bounce.resize(n, 0);
            if self.file.write_all_at(&self.bounce, off + done).is_err() {
                return VIRTIO_BLK_S_IOERR;
            }
            done += n as u64;
        }
        VIRTIO_BLK_S_OK
    }

    /// Handles one descriptor chain; returns the number of bytes written into it.
    fn handle_chain(
        &mut self,
        mem: &GuestMemoryMmap,
        descs: impl Iterator<Item = (GuestAddress, u32, bool)>,
    ) -> u32 {
        let (mut readable, mut writable) = (Segments::default(), Segments::default());
        for (addr, len, write) in descs {
            if len == 0 {
                continue;
            }
            if write {
                writable.0.push((addr, u64::from(len)));
            } else {
                readable.0.push((addr, u64::from(len)));
            }
        }
        // The status byte is the last writable byte; without one the driver cannot be answered.
        let Some(last) = writable.0.last_mut() else {
            return 0;
        };
        let Some(status_addr) = last.0.0.checked_add(last.1 - 1) else {
            return 0;
        };
        last.1 -= 1;
        if last.1 == 0 {
            writable.0.pop();
        }
        let (status, written) = self.execute(mem, &readable, &writable);
        // The status codes (VIRTIO_BLK_S_*) are one byte.
        if mem
            .write_obj(status as u8, GuestAddress(status_addr))
            .is_err()
        {
            return 0;
        }
        // The chain is at most 2^32 bytes (virtio-queue stops iterating beyond that).
        u32::try_from(written + 1).unwrap_or(u32::MAX)
    }
}

impl VirtioDevice for Block {
    fn device_id(&self) -> u32 {
        VIRTIO_ID_BLOCK
    }

    fn features(&self) -> u64 {
        let mut f = (1 << VIRTIO_BLK_F_SEG_MAX) | (1 << VIRTIO_BLK_F_FLUSH);
        if self.readonly {
            f |= 1 << VIRTIO_BLK_F_RO;
        } else {
            f |= 1 << VIRTIO_BLK_F_WRITE_ZEROES;
        }
        if self.discard {
            f |= 1 << VIRTIO_BLK_F_DISCARD;
        }
        f
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &self.queue_sizes
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        // struct virtio_blk_config: capacity (le64) at 0, size_max at 8, seg_max at 12, ...,
        // max_discard_sectors 36, max_discard_seg 40, discard_sector_alignment 44,
        // max_write_zeroes_sectors 48, max_write_zeroes_seg 52, write_zeroes_may_unmap 56.
        let mut cfg = [0u8; 60];
        cfg[0..8].copy_from_slice(&self.capacity.to_le_bytes());
        cfg[12..16].copy_from_slice(&SEG_MAX.to_le_bytes());
        if self.discard {
            cfg[36..40].copy_from_slice(&MAX_ZERO_SECTORS.to_le_bytes());
            cfg[40..44].copy_from_slice(&1u32.to_le_bytes());
            cfg[44..48].copy_from_slice(&DISCARD_ALIGN.to_le_bytes());
        }
        if !self.readonly {
            cfg[48..52].copy_from_slice(&MAX_ZERO_SECTORS.to_le_bytes());
            cfg[52..56].copy_from_slice(&1u32.to_le_bytes());
            cfg[56] = u8::from(self.discard);
        }
        for (i, b) in data.iter_mut().enumerate() {
            *b = usize::try_from(offset)
                .ok()
                .and_then(|o| o.checked_add(i))
                .and_then(|o| cfg.get(o).copied())
                .unwrap_or(0);
        }
    }

    fn process_queue(&mut self, _index: usize, queue: &mut Queue, mem: &GuestMemoryMmap) -> bool {
        let mut used = false;
        while let Some(chain) = queue.pop_descriptor_chain(mem) {
            let head = chain.head_index();
            let len = self.handle_chain(mem, chain.map(|d| (d.addr(), d.len(), d.is_write_only())));
            if queue.add_used(mem, head, len).is_err() {
                break;
            }
            used = true;
        }
        // Without EVENT_IDX this honours VIRTQ_AVAIL_F_NO_INTERRUPT.
        used && queue.needs_notification(mem).unwrap_or(true)
    }
}

#[cfg(test)]
#[path = "block_tests.rs"]
mod tests;
