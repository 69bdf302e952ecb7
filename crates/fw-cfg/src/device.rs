//! The fw_cfg device: items, the file directory, the selector/data ports and DMA.
//!
//! Behaviour follows QEMU's `hw/nvram/fw_cfg.c` as documented in `docs/specs/fw_cfg.rst`
//! (our own code, written from those descriptions):
//!
//! - selecting a key rewinds the item to offset 0; the write-channel bit (0x4000) of the
//!   selector is ignored; a key without an item reads as zeros;
//! - a data-port read returns the next byte of the selected item, or 0 past its end (the
//!   offset then stays put); data-port writes are ignored (QEMU removed them in 2.4);
//! - the DMA address register is two big-endian 32-bit halves (high at +4, low at +8; the
//!   low write starts the transfer) or one big-endian 64-bit write at +4; it is cleared
//!   when a transfer starts, so firmware that writes only the low half (SeaBIOS does) gets
//!   a 32-bit address; reading it returns the signature "QEMU CFG";
//! - a transfer reads the 16-byte `FWCfgDmaAccess` {be32 control, be32 length, be64
//!   address}, optionally selects `control >> 16`, then reads (copies the item to guest
//!   memory, zero-filling past its end), skips, or writes (copies guest memory into a
//!   writable item; it must fit in what is left of the item) and finally stores the
//!   control word back: 0 on success, [`dma_ctl::ERROR`] otherwise. Unknown control bits
//!   are ignored; with none of read/write/skip set, the length is treated as 0.

use std::collections::{BTreeMap, BTreeSet};

use crate::GuestMem;
use crate::keys;

/// First I/O port of the x86 fw_cfg window (selector; data is at +1, DMA at +4..+12).
pub const PORT_BASE: u16 = 0x510;
/// Ports from [`PORT_BASE`] that belong to the device (0x510..=0x51b).
pub const PORT_COUNT: u16 = 12;
/// "QEMU CFG": what reads of the DMA address register return (big-endian).
pub const DMA_SIGNATURE: u64 = 0x5145_4d55_2043_4647;
/// Longest file name, without the terminating NUL (the directory holds 56 bytes).
pub const MAX_NAME_LEN: usize = 55;
/// Most files the directory holds (keys `0x20..0x20 + MAX_FILES`, below the write bit).
pub const MAX_FILES: usize = 1024;

/// Offsets of the registers from [`PORT_BASE`].
pub mod port_offset {
    /// 16-bit little-endian write: select a key.
    pub const SELECTOR: u64 = 0;
    /// 8-bit read: the next byte of the selected item.
    pub const DATA: u64 = 1;
    /// Big-endian high half of the DMA address (or the whole 64-bit address).
    pub const DMA_HIGH: u64 = 4;
    /// Big-endian low half of the DMA address; writing it starts the transfer.
    pub const DMA_LOW: u64 = 8;
}

/// Bits of the DMA control word.
pub mod dma_ctl {
    pub const ERROR: u32 = 0x01;
    pub const READ: u32 = 0x02;
    pub const SKIP: u32 = 0x04;
    pub const SELECT: u32 = 0x08;
    pub const WRITE: u32 = 0x10;
}

/// Size of `FWCfgDmaAccess` in guest memory.
const DMA_ACCESS_LEN: usize = 16;
/// Zero-fill chunk for reads past the end of an item.
const ZERO_CHUNK: usize = 4096;
/// Size of one directory entry.
const DIR_ENTRY_LEN: usize = 64;

/// Why the host could not add or change an item (host configuration errors; the guest
/// cannot cause any of these).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FwCfgError {
    #[error("fw_cfg file name is empty")]
    NameEmpty,
    #[error("fw_cfg file name {name:?} is {len} bytes; at most {MAX_NAME_LEN} fit")]
    NameTooLong { name: String, len: usize },
    #[error("fw_cfg file name {0:?} contains a NUL byte")]
    NameHasNul(String),
    #[error("fw_cfg file {0:?} already exists")]
    DuplicateFile(String),
    #[error("fw_cfg file {0:?} does not exist")]
    NoSuchFile(String),
    #[error("fw_cfg directory is full ({MAX_FILES} files)")]
    TooManyFiles,
    #[error("fw_cfg item of {len} bytes is larger than 4 GiB - 1")]
    ItemTooLarge { len: usize },
    #[error("fw_cfg key {0:#06x} is reserved (signature, ID, directory, files or write bit)")]
    ReservedKey(u16),
    #[error("fw_cfg key {0:#06x} already has an item")]
    DuplicateKey(u16),
}

#[derive(Debug, Clone)]
struct Item {
    data: Vec<u8>,
    writable: bool,
}

/// The fw_cfg device over guest memory `M` (see the module docs for the protocol).
#[derive(Debug)]
pub struct FwCfg<M> {
    mem: M,
    /// Well-known and arch-local items, by key.
    fixed: BTreeMap<u16, Item>,
    /// Files sorted by name; file `i` has key `FILE_FIRST + i`.
    files: Vec<(String, Item)>,
    /// The encoded directory (key `FILE_DIR`).
    dir: Vec<u8>,
    /// Selected key (write-channel bit removed).
    selected: u16,
    /// Offset in the selected item.
    offset: u32,
    /// Latched DMA address.
    dma_addr: u64,
    dma_enabled: bool,
    /// Files the guest wrote since the last [`FwCfg::take_written_files`].
    written: BTreeSet<String>,
}

impl<M: GuestMem> FwCfg<M> {
    /// A device with the signature, the ID (traditional + DMA) and an empty directory.
    pub fn new(mem: M) -> Self {
        let mut s = Self {
            mem,
            fixed: BTreeMap::new(),
            files: Vec::new(),
            dir: Vec::new(),
            selected: keys::SIGNATURE,
            offset: 0,
            dma_addr: 0,
            dma_enabled: true,
            written: BTreeSet::new(),
        };
        s.put_fixed(keys::SIGNATURE, b"QEMU".to_vec());
        s.set_dma_enabled(true);
        s.rebuild_dir();
        s
    }

    /// Turns the DMA interface on or off (the ID item follows; with DMA off the DMA
    /// registers read as zeros and ignore writes).
    pub fn set_dma_enabled(&mut self, enabled: bool) {
        self.dma_enabled = enabled;
        let mut id = keys::ID_TRADITIONAL;
        if enabled {
            id |= keys::ID_DMA;
        }
        self.put_fixed(keys::ID, id.to_le_bytes().to_vec());
    }

    /// Whether the DMA interface is on.
    pub fn dma_enabled(&self) -> bool {
        self.dma_enabled
    }

    fn put_fixed(&mut self, key: u16, data: Vec<u8>) {
        self.fixed.insert(
            key,
            Item {
                data,
                writable: false,
            },
        );
    }

    /// Adds a read-only item at a well-known (`0x02..0x19`, except the directory) or
    /// arch-local (`0x8000..0x8020`) key.
    pub fn add_bytes(&mut self, key: u16, bytes: impl Into<Vec<u8>>) -> Result<(), FwCfgError> {
        let data = bytes.into();
        let index = key & !keys::ARCH_LOCAL;
        let reserved = key & keys::WRITE_CHANNEL != 0
            || index >= keys::FILE_FIRST
            || (key & keys::ARCH_LOCAL == 0
                && matches!(key, keys::SIGNATURE | keys::ID | keys::FILE_DIR));
        if reserved {
            return Err(FwCfgError::ReservedKey(key));
        }
        check_len(data.len())?;
        if self.fixed.contains_key(&key) {
            return Err(FwCfgError::DuplicateKey(key));
        }
        self.put_fixed(key, data);
        Ok(())
    }

    /// [`FwCfg::add_bytes`] of a little-endian u16.
    pub fn add_u16(&mut self, key: u16, v: u16) -> Result<(), FwCfgError> {
        self.add_bytes(key, v.to_le_bytes().to_vec())
    }

    /// [`FwCfg::add_bytes`] of a little-endian u32.
    pub fn add_u32(&mut self, key: u16, v: u32) -> Result<(), FwCfgError> {
        self.add_bytes(key, v.to_le_bytes().to_vec())
    }

    /// [`FwCfg::add_bytes`] of a little-endian u64.
    pub fn add_u64(&mut self, key: u16, v: u64) -> Result<(), FwCfgError> {
        self.add_bytes(key, v.to_le_bytes().to_vec())
    }

    /// Adds a read-only file. Files are kept sorted by name (byte order, like `strcmp`),
    /// as QEMU does for current machine types, so keys of later names shift when an
    /// earlier name is added: look keys up with [`FwCfg::file_key`] once all are added.
    pub fn add_file(&mut self, name: &str, bytes: impl Into<Vec<u8>>) -> Result<(), FwCfgError> {
        self.insert_file(name, bytes.into(), false)
    }

    /// Adds a file the guest may overwrite through DMA writes (e.g. `etc/ramfb`); see
    /// [`FwCfg::take_written_files`].
    pub fn add_file_writable(
        &mut self,
        name: &str,
        bytes: impl Into<Vec<u8>>,
    ) -> Result<(), FwCfgError> {
        self.insert_file(name, bytes.into(), true)
    }

    fn insert_file(&mut self, name: &str, data: Vec<u8>, writable: bool) -> Result<(), FwCfgError> {
        check_name(name)?;
        check_len(data.len())?;
        let at = match self.files.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(_) => return Err(FwCfgError::DuplicateFile(name.to_owned())),
            Err(at) => at,
        };
        if self.files.len() >= MAX_FILES {
            return Err(FwCfgError::TooManyFiles);
        }
        self.files
            .insert(at, (name.to_owned(), Item { data, writable }));
        self.rebuild_dir();
        Ok(())
    }

    /// Replaces the contents of an existing file (its size in the directory follows).
    pub fn modify_file(&mut self, name: &str, bytes: impl Into<Vec<u8>>) -> Result<(), FwCfgError> {
        let data = bytes.into();
        check_len(data.len())?;
        let i = self
            .file_index(name)
            .ok_or_else(|| FwCfgError::NoSuchFile(name.to_owned()))?;
        self.files[i].1.data = data;
        self.rebuild_dir();
        Ok(())
    }

    fn file_index(&self, name: &str) -> Option<usize> {
        self.files
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
    }

    /// The selector key of a file.
    pub fn file_key(&self, name: &str) -> Option<u16> {
        // MAX_FILES keeps the index well below 0x4000 - 0x20, so the conversion succeeds.
        self.file_index(name)
            .and_then(|i| u16::try_from(i).ok())
            .map(|i| keys::FILE_FIRST + i)
    }

    /// The current contents of a file (including what the guest wrote).
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.file_index(name)
            .map(|i| self.files[i].1.data.as_slice())
    }

    /// The item a key selects, if any.
    pub fn item(&self, key: u16) -> Option<&[u8]> {
        let key = key & !keys::WRITE_CHANNEL;
        if key == keys::FILE_DIR {
            return Some(&self.dir);
        }
        self.lookup(key).map(|it| it.data.as_slice())
    }

    /// The encoded file directory.
    pub fn directory(&self) -> &[u8] {
        &self.dir
    }

    /// Names of the files the guest wrote (successfully) since the last call, sorted.
    pub fn take_written_files(&mut self) -> Vec<String> {
        std::mem::take(&mut self.written).into_iter().collect()
    }

    /// The guest memory handle.
    pub fn mem(&self) -> &M {
        &self.mem
    }

    /// Device reset: selects the signature and forgets a half-written DMA address.
    pub fn reset(&mut self) {
        self.select(keys::SIGNATURE);
        self.dma_addr = 0;
    }

    fn rebuild_dir(&mut self) {
        let mut dir = Vec::with_capacity(4 + DIR_ENTRY_LEN * self.files.len());
        dir.extend_from_slice(&(self.files.len() as u32).to_be_bytes());
        for (i, (name, item)) in self.files.iter().enumerate() {
            dir.extend_from_slice(&(item.data.len() as u32).to_be_bytes());
            dir.extend_from_slice(&(keys::FILE_FIRST + i as u16).to_be_bytes());
            dir.extend_from_slice(&[0, 0]);
            let mut n = [0u8; MAX_NAME_LEN + 1];
            n[..name.len()].copy_from_slice(name.as_bytes());
            dir.extend_from_slice(&n);
        }
        self.dir = dir;
    }

    fn lookup(&self, key: u16) -> Option<&Item> {
        if key & keys::ARCH_LOCAL == 0 && key >= keys::FILE_FIRST {
            self.files
                .get(usize::from(key - keys::FILE_FIRST))
                .map(|(_, it)| it)
        } else {
            self.fixed.get(&key)
        }
    }

    /// The selected item's bytes (the directory included), if any.
    fn current(&self) -> Option<&[u8]> {
        if self.selected == keys::FILE_DIR {
            Some(&self.dir)
        } else {
            self.lookup(self.selected).map(|it| it.data.as_slice())
        }
    }

    /// Selects `key` and rewinds to its first byte.
    pub fn select(&mut self, key: u16) {
        self.selected = key & !keys::WRITE_CHANNEL;
        self.offset = 0;
    }

    /// The next byte of the selected item; 0 once past its end (or with no item).
    pub fn read_data(&mut self) -> u8 {
        let off = self.offset as usize;
        match self.current().and_then(|d| d.get(off)).copied() {
            Some(b) => {
                self.offset += 1;
                b
            }
            None => 0,
        }
    }

    /// A guest read of `data.len()` bytes at `offset` from [`PORT_BASE`]. Only 1-byte
    /// data reads (at +0 or +1) and DMA-register reads (the signature) return something;
    /// everything else reads as zeros.
    pub fn pio_read(&mut self, offset: u64, data: &mut [u8]) {
        match (offset, data.len()) {
            (port_offset::SELECTOR | port_offset::DATA, 1) => data[0] = self.read_data(),
            (4..=11, _) if self.dma_enabled => {
                let sig = DMA_SIGNATURE.to_be_bytes();
                for (i, b) in data.iter_mut().enumerate() {
                    let idx = (offset - port_offset::DMA_HIGH) as usize + i;
                    *b = sig.get(idx).copied().unwrap_or(0);
                }
            }
            _ => data.fill(0),
        }
    }

    /// A guest write of `data` at `offset` from [`PORT_BASE`]: a 16-bit selector write at
    /// +0, or a DMA address write (see the module docs). Anything else is ignored.
    pub fn pio_write(&mut self, offset: u64, data: &[u8]) {
        match (offset, data) {
            (port_offset::SELECTOR, &[lo, hi]) => self.select(u16::from_le_bytes([lo, hi])),
            (port_offset::DMA_HIGH, &[a, b, c, d]) if self.dma_enabled => {
                self.dma_addr = u64::from(u32::from_be_bytes([a, b, c, d])) << 32;
            }
            (port_offset::DMA_LOW, &[a, b, c, d]) if self.dma_enabled => {
                let addr = self.dma_addr | u64::from(u32::from_be_bytes([a, b, c, d]));
                self.dma(addr);
            }
            (port_offset::DMA_HIGH, d) if d.len() == 8 && self.dma_enabled => {
                let mut b = [0u8; 8];
                b.copy_from_slice(d);
                self.dma(u64::from_be_bytes(b));
            }
            _ => {}
        }
    }

    /// Runs the DMA transfer described by the `FWCfgDmaAccess` at guest address `access`,
    /// stores the resulting control word there and returns it (0 or [`dma_ctl::ERROR`]).
    pub fn dma(&mut self, access: u64) -> u32 {
        self.dma_addr = 0;
        let mut hdr = [0u8; DMA_ACCESS_LEN];
        if self.mem.read(access, &mut hdr).is_err() {
            // Best effort: the header itself may be unreachable.
            let _ = self.mem.write(access, &dma_ctl::ERROR.to_be_bytes());
            return dma_ctl::ERROR;
        }
        let control = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        let length = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
        let mut b = [0u8; 8];
        b.copy_from_slice(&hdr[8..16]);
        let address = u64::from_be_bytes(b);

        if control & dma_ctl::SELECT != 0 {
            self.select((control >> 16) as u16);
        }
        let status = if control & dma_ctl::READ != 0 {
            self.dma_read(address, length)
        } else if control & dma_ctl::WRITE != 0 {
            self.dma_write(address, length)
        } else if control & dma_ctl::SKIP != 0 {
            self.dma_skip(length);
            Ok(())
        } else {
            Ok(())
        };
        let status = if status.is_ok() { 0 } else { dma_ctl::ERROR };
        let _ = self.mem.write(access, &status.to_be_bytes());
        status
    }

    /// Bytes of the selected item from the current offset on, at most `len`.
    fn available(&self, len: u32) -> u32 {
        let have = self.current().map_or(0, |d| d.len() as u64);
        let left = have.saturating_sub(u64::from(self.offset));
        left.min(u64::from(len)) as u32
    }

    fn dma_read(&mut self, address: u64, length: u32) -> Result<(), ()> {
        let n = self.available(length);
        let end = address.checked_add(u64::from(length)).ok_or(())?;
        if n > 0 {
            let off = self.offset as usize;
            let data = self.current().ok_or(())?;
            let chunk = data.get(off..off + n as usize).ok_or(())?;
            self.mem.write(address, chunk).map_err(|_| ())?;
            self.offset += n;
        }
        // Past the end of the item: zeros, in bounded chunks.
        let zeros = [0u8; ZERO_CHUNK];
        let mut at = address + u64::from(n);
        while at < end {
            let len = (end - at).min(ZERO_CHUNK as u64) as usize;
            self.mem.write(at, &zeros[..len]).map_err(|_| ())?;
            at += len as u64;
        }
        Ok(())
    }

    fn dma_write(&mut self, address: u64, length: u32) -> Result<(), ()> {
        if length == 0 {
            return Ok(());
        }
        address.checked_add(u64::from(length)).ok_or(())?;
        // The whole write must land inside a writable item.
        if self.available(length) != length {
            return Err(());
        }
        let key = self.selected;
        // Only files can be writable.
        if key & keys::ARCH_LOCAL != 0 || key < keys::FILE_FIRST {
            return Err(());
        }
        let (name, item) = self
            .files
            .get_mut(usize::from(key - keys::FILE_FIRST))
            .ok_or(())?;
        if !item.writable {
            return Err(());
        }
        // Read into a scratch buffer first so a failed read leaves the item untouched; its
        // size is bounded by the item, which the host sized.
        let mut buf = vec![0u8; length as usize];
        self.mem.read(address, &mut buf).map_err(|_| ())?;
        let off = self.offset as usize;
        item.data[off..off + buf.len()].copy_from_slice(&buf);
        let name = name.clone();
        self.offset += length;
        self.written.insert(name);
        Ok(())
    }

    fn dma_skip(&mut self, length: u32) {
        let n = self.available(length);
        self.offset += n;
    }
}

fn check_name(name: &str) -> Result<(), FwCfgError> {
    if name.is_empty() {
        return Err(FwCfgError::NameEmpty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(FwCfgError::NameTooLong {
            name: name.to_owned(),
            len: name.len(),
        });
    }
    if name.as_bytes().contains(&0) {
        return Err(FwCfgError::NameHasNul(name.to_owned()));
    }
    Ok(())
}

fn check_len(len: usize) -> Result<(), FwCfgError> {
    if u32::try_from(len).is_err() {
        return Err(FwCfgError::ItemTooLarge { len });
    }
    Ok(())
}
