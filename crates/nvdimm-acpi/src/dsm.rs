//! The host side of the `_DSM` mailbox: parse a (hostile) request, dispatch, build the reply.
//!
//! Semantics follow QEMU (`qemu-nvdimm.md` §4.5, §5.1–5.4) with pmvm's bigger mailbox:
//! labels move up to [`MAX_XFER`] bytes per call and FIT chunks are [`FIT_CHUNK`] bytes.

use crate::label::{DsmTarget, LabelArea};
use crate::mailbox::{
    DIMM_LABEL_FUNCS, FIT_CHUNK, MAILBOX_SIZE, MAX_XFER, OFF_FARG, OFF_FUNC, OFF_HDLE, OFF_REVS,
    PRIVATE_FUNCS, PRIVATE_HANDLE, ROOT_HANDLE, status,
};

/// Number of per-function call counters: functions 0..=6, index 7 counts any other function.
pub const FUNC_COUNTERS: usize = 8;

/// Counters kept by the dispatcher (for logs, `info` commands and tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DsmStats {
    /// Calls per function number (index 7 = any function > 6), all handles.
    pub calls: [u64; FUNC_COUNTERS],
    /// Requests too short to hold the 12-byte header.
    pub truncated: u64,
    /// Replies with a non-zero status (bitmaps of function 0 are not statuses).
    pub errors: u64,
    /// Label bytes returned by function 5.
    pub label_bytes_read: u64,
    /// Label bytes stored by function 6.
    pub label_bytes_written: u64,
    /// FIT bytes returned by the private Read-FIT function.
    pub fit_bytes_read: u64,
    /// Read-FIT calls answered with "FIT changed" (0x100).
    pub fit_restarts: u64,
}

/// The `_DSM` dispatcher of one VM. Holds the "FIT changed" flag and counters.
#[derive(Debug, Clone)]
pub struct DsmDispatcher {
    fit_dirty: bool,
    max_xfer: u32,
    stats: DsmStats,
}

impl Default for DsmDispatcher {
    fn default() -> Self {
        DsmDispatcher {
            fit_dirty: false,
            max_xfer: MAX_XFER,
            stats: DsmStats::default(),
        }
    }
}

/// A decoded request header.
struct Request<'a> {
    handle: u32,
    revision: u32,
    function: u32,
    /// Whatever bytes of FARG are present in the copy (may be empty or short).
    arg: &'a [u8],
}

fn le32(b: &[u8], off: usize) -> Option<u32> {
    let bytes = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// `[RLEN = 8][status]`.
fn status_reply(code: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(8);
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&code.to_le_bytes());
    out
}

/// `[RLEN = 8 + payload.len()][status 0][payload]`; the payload is bounded by the callers
/// (at most MAX_XFER or FIT_CHUNK bytes) so RLEN never exceeds MAILBOX_SIZE.
fn data_reply(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    let rlen = u32::try_from(8 + payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&rlen.to_le_bytes());
    out.extend_from_slice(&status::SUCCESS.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

impl DsmDispatcher {
    /// A dispatcher with a clean FIT flag and zero counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// A dispatcher that advertises (and enforces) a smaller label transfer size than
    /// [`MAX_XFER`], clamped to `1..=MAX_XFER`. The guest's ACPICA allocates each `_DSM`
    /// argument and result in one contiguous kernel buffer; 16 KiB keeps those allocations at
    /// or below order 3 should large ones ever fail in a fragmented guest.
    pub fn with_max_xfer(max_xfer: u32) -> Self {
        DsmDispatcher {
            max_xfer: max_xfer.clamp(1, MAX_XFER),
            ..Self::default()
        }
    }

    /// The label transfer size advertised by function 4.
    pub fn max_xfer(&self) -> u32 {
        self.max_xfer
    }

    /// Call after the FIT was rebuilt (hotplug): a Read-FIT in progress (offset != 0) gets
    /// status 0x100 and the guest's `_FIT` restarts from offset 0.
    pub fn fit_changed(&mut self) {
        self.fit_dirty = true;
    }

    /// Counters so far.
    pub fn stats(&self) -> &DsmStats {
        &self.stats
    }

    /// Handles one doorbell. `mailbox` is a private copy of the mailbox (normally
    /// [`MAILBOX_SIZE`] bytes; any length is accepted, missing bytes make the request invalid).
    /// Returns the bytes to write at mailbox offset 0: `[RLEN][ODAT...]`, RLEN == returned
    /// length, 8 <= length <= [`MAILBOX_SIZE`].
    pub fn handle(&mut self, mailbox: &[u8], target: &mut dyn DsmTarget) -> Vec<u8> {
        let reply = self.dispatch(mailbox, target);
        debug_assert!(reply.len() >= 8 && reply.len() <= MAILBOX_SIZE);
        reply
    }

    fn dispatch(&mut self, mailbox: &[u8], target: &mut dyn DsmTarget) -> Vec<u8> {
        let (Some(handle), Some(revision), Some(function)) = (
            le32(mailbox, OFF_HDLE),
            le32(mailbox, OFF_REVS),
            le32(mailbox, OFF_FUNC),
        ) else {
            self.stats.truncated += 1;
            return self.fail(status::INVALID_INPUT);
        };
        let arg = mailbox.get(OFF_FARG..).unwrap_or(&[]);
        let req = Request {
            handle,
            revision,
            function,
            arg,
        };
        let idx = usize::try_from(function)
            .unwrap_or(usize::MAX)
            .min(FUNC_COUNTERS - 1);
        self.stats.calls[idx] += 1;

        if req.revision != 1 {
            return self.fail(status::NOT_SUPPORTED);
        }
        match req.handle {
            PRIVATE_HANDLE => self.private(&req, target),
            ROOT_HANDLE => match req.function {
                0 => bitmap_reply(0),
                _ => self.fail(status::NOT_SUPPORTED),
            },
            h => self.dimm(h, &req, target),
        }
    }

    fn fail(&mut self, code: u32) -> Vec<u8> {
        self.stats.errors += 1;
        status_reply(code)
    }

    /// Private root functions: 0 = query (bitmap 0x3), 1 = Read FIT.
    fn private(&mut self, req: &Request<'_>, target: &mut dyn DsmTarget) -> Vec<u8> {
        match req.function {
            0 => bitmap_reply(PRIVATE_FUNCS),
            1 => self.read_fit(req, target),
            _ => self.fail(status::NOT_SUPPORTED),
        }
    }

    fn read_fit(&mut self, req: &Request<'_>, target: &mut dyn DsmTarget) -> Vec<u8> {
        let Some(offset) = le32(req.arg, 0) else {
            return self.fail(status::INVALID_INPUT);
        };
        let fit = target.fit();
        let Ok(offset) = usize::try_from(offset) else {
            return self.fail(status::INVALID_INPUT);
        };
        if offset > fit.len() {
            return self.fail(status::INVALID_INPUT);
        }
        if offset == 0 {
            self.fit_dirty = false;
        } else if self.fit_dirty {
            self.stats.fit_restarts += 1;
            return status_reply(status::FIT_CHANGED);
        }
        let end = offset + (fit.len() - offset).min(FIT_CHUNK);
        let chunk = &fit[offset..end];
        self.stats.fit_bytes_read += chunk.len() as u64;
        data_reply(chunk)
    }

    fn dimm(&mut self, handle: u32, req: &Request<'_>, target: &mut dyn DsmTarget) -> Vec<u8> {
        let Some(dimm) = target.dimm(handle) else {
            // Empty slot: function 0 says "nothing supported", anything else is status 2.
            return match req.function {
                0 => bitmap_reply(0),
                _ => self.fail(status::NO_SUCH_DEVICE),
            };
        };
        let Some(labels) = dimm.labels else {
            return match req.function {
                0 => bitmap_reply(0),
                _ => self.fail(status::NOT_SUPPORTED),
            };
        };
        match req.function {
            0 => bitmap_reply(DIMM_LABEL_FUNCS),
            4 => {
                let mut payload = [0u8; 8];
                payload[..4].copy_from_slice(&labels.label_size().to_le_bytes());
                payload[4..].copy_from_slice(&self.max_xfer.to_le_bytes());
                data_reply(&payload)
            }
            5 => self.read_label(req, labels),
            6 => self.write_label(req, labels),
            _ => self.fail(status::NOT_SUPPORTED),
        }
    }

    /// Validates `[u32 offset][u32 length]` against the label area; returns (offset, length).
    fn label_range(&self, req: &Request<'_>, labels: &dyn LabelArea) -> Option<(u32, u32)> {
        let offset = le32(req.arg, 0)?;
        let length = le32(req.arg, 4)?;
        let end = offset.checked_add(length)?;
        (end <= labels.label_size() && length <= self.max_xfer).then_some((offset, length))
    }

    fn read_label(&mut self, req: &Request<'_>, labels: &mut dyn LabelArea) -> Vec<u8> {
        let Some((offset, length)) = self.label_range(req, labels) else {
            return self.fail(status::INVALID_INPUT);
        };
        // length <= MAX_XFER (128 KiB), so this allocation is bounded.
        let mut out = vec![0u8; 8 + length as usize];
        let rlen = 8 + length;
        out[..4].copy_from_slice(&rlen.to_le_bytes());
        if labels.read(offset, &mut out[8..]).is_err() {
            return self.fail(status::HW_ERROR);
        }
        self.stats.label_bytes_read += u64::from(length);
        out
    }

    fn write_label(&mut self, req: &Request<'_>, labels: &mut dyn LabelArea) -> Vec<u8> {
        let Some((offset, length)) = self.label_range(req, labels) else {
            return self.fail(status::INVALID_INPUT);
        };
        // The data must actually be in the request (a truncated copy is invalid input).
        let Some(data) = req.arg.get(8..8 + length as usize) else {
            return self.fail(status::INVALID_INPUT);
        };
        if labels.read_only() {
            return self.fail(status::NOT_SUPPORTED);
        }
        if labels.write(offset, data).is_err() {
            return self.fail(status::HW_ERROR);
        }
        self.stats.label_bytes_written += u64::from(length);
        status_reply(status::SUCCESS)
    }
}

/// Function-0 reply: `[RLEN = 8][bitmap]`.
fn bitmap_reply(bitmap: u32) -> Vec<u8> {
    status_reply(bitmap)
}
