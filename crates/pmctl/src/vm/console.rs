//! `pmctl vm console`: what a VM printed on its serial console. pmvm writes the
//! console to `STATE/NAME.console` (`-serial file:`), so reading it needs no
//! connection to the VM and works after it stopped. Reads are bounded
//! (`max_bytes`, at most [`MAX_CONSOLE_READ`]) and start at an offset, so a
//! follower (the CLI's `--follow`, the web UI) fetches only what is new.

use std::io::{Read, Seek, SeekFrom};

use serde::Serialize;

use super::error::VmError;
use super::ops::Manager;

/// The most one call returns.
pub const MAX_CONSOLE_READ: u64 = 1 << 20;

/// A piece of a console file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsoleView {
    /// VM name.
    pub name: String,
    /// Whether the VM runs (it may print more).
    pub running: bool,
    /// File size now; pass it as `from` to get only what comes next.
    pub size: u64,
    /// Offset of the first byte of `text` in the file.
    pub offset: u64,
    /// The bytes (invalid UTF-8 replaced), from `offset` to `size` at most `max_bytes` long.
    pub text: String,
    /// Bytes left out before `offset` (the tail was asked for, or `from` was older).
    pub skipped: u64,
}

impl Manager {
    /// The console bytes of VM `name` from `from` (default: the last `max_bytes`), at most
    /// `max_bytes` (capped at [`MAX_CONSOLE_READ`]). A VM never started has an empty console.
    pub fn console(
        &self,
        name: &str,
        from: Option<u64>,
        max_bytes: u64,
    ) -> Result<ConsoleView, VmError> {
        self.store.load(name)?;
        let running = self.pid(name).is_some();
        let path = self.store.console(name);
        let max = max_bytes.clamp(1, MAX_CONSOLE_READ);
        let mut f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ConsoleView {
                    name: name.to_owned(),
                    running,
                    size: 0,
                    offset: 0,
                    text: String::new(),
                    skipped: 0,
                });
            }
            Err(e) => return Err(VmError::io("cannot open the console file", &path, e)),
        };
        let size = f
            .metadata()
            .map_err(|e| VmError::io("cannot stat the console file", &path, e))?
            .len();
        // A console that shrank (the VM was started again) restarts at 0.
        let start = match from {
            Some(o) if o <= size => o.max(size.saturating_sub(max)),
            _ => size.saturating_sub(max),
        };
        let skipped = match from {
            Some(o) if o <= size => start - o,
            _ => start,
        };
        f.seek(SeekFrom::Start(start))
            .map_err(|e| VmError::io("cannot read the console file", &path, e))?;
        let mut buf = Vec::new();
        f.take(size - start)
            .read_to_end(&mut buf)
            .map_err(|e| VmError::io("cannot read the console file", &path, e))?;
        Ok(ConsoleView {
            name: name.to_owned(),
            running,
            size: start + buf.len() as u64,
            offset: start,
            text: String::from_utf8_lossy(&buf).into_owned(),
            skipped,
        })
    }
}
