//! A host path as an NVDIMM backend: what it is (the same lookup as `pmctl
//! size`), its exact guest sizing (pmem_layout::guest_nvdimm_size) and whether
//! it gives crash persistence (pmem_probe, the probe pmvm runs).

use std::path::Path;

use pmem_layout::{GuestSizing, guest_nvdimm_size};
use serde::Serialize;

use super::error::VmError;
use crate::size::{self, Device};

/// Warning for fsdax block devices.
pub const BLOCK_WARNING: &str = "fsdax block device: guest writes go through the host page cache; \
     a file on a DAX-mounted filesystem or a devdax namespace (/dev/daxX.Y) is the persistent choice";

/// What attaching `path` would give the guest.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceReport {
    /// The device as looked up.
    pub device: Device,
    /// The exact guest sizing.
    pub sizing: SizingView,
    /// Whether the backend can give crash persistence (device DAX, or MAP_SYNC on a DAX file).
    pub crash_persistent: bool,
    /// The probe's explanation.
    pub persistence: String,
    /// Things the user should know before using it.
    pub warnings: Vec<String>,
}

/// The sizing numbers, as shown to users.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SizingView {
    /// Alignment passed as the backend's `align=`.
    pub align: u64,
    /// Backend `size=`.
    pub backend_size: u64,
    /// Guest-visible pmem bytes.
    pub guest_size: u64,
    /// Label area bytes (128 KiB).
    pub label_size: u64,
    /// Label area offset inside the backend.
    pub label_offset: u64,
    /// Host bytes never mapped.
    pub unused_tail: u64,
}

impl From<&GuestSizing> for SizingView {
    fn from(g: &GuestSizing) -> SizingView {
        SizingView {
            align: g.align,
            backend_size: g.backend_size,
            guest_size: g.pmem_size,
            label_size: g.label_size,
            label_offset: g.label_offset,
            unused_tail: g.unused_tail,
        }
    }
}

fn device_error(path: &Path, reason: impl Into<String>) -> VmError {
    VmError::Device {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Look `path` up and size it. Errors: missing path (a sized file is
/// required), not a DAX/pmem device, too small (pmem_layout's message).
pub fn inspect(sysfs_root: &Path, path: &Path) -> Result<(DeviceReport, GuestSizing), VmError> {
    if path.as_os_str().is_empty() {
        return Err(VmError::Invalid(
            "no device path given: use /dev/daxX.Y, /dev/pmemX or a file".into(),
        ));
    }
    if !path.exists() {
        return Err(device_error(
            path,
            "does not exist; a sized file is required: create one on a DAX-mounted filesystem \
             (e.g. truncate -s 4G FILE) or give a devdax device /dev/daxX.Y",
        ));
    }
    let Some(text) = path.to_str() else {
        return Err(device_error(path, "path is not valid UTF-8; rename it"));
    };
    let device = size::resolve(sysfs_root, text).map_err(|e| device_error(path, e.to_string()))?;
    let sizing = guest_nvdimm_size(device.size, device.align)
        .map_err(|e| device_error(path, e.to_string()))?;
    let (crash_persistent, persistence) = match pmem_probe::probe_path(&device.path) {
        Ok(p) => (p.crash_persistent, p.explanation),
        Err(e) => (false, format!("cannot probe: {e}")),
    };
    let mut warnings = Vec::new();
    if device.kind == "block" {
        warnings.push(BLOCK_WARNING.to_owned());
    }
    if !crash_persistent {
        warnings.push(format!(
            "persistence not guaranteed after a host crash: {persistence}"
        ));
    }
    warnings.extend(sizing.warnings.iter().cloned());
    let report = DeviceReport {
        sizing: SizingView::from(&sizing),
        device,
        crash_persistent,
        persistence,
        warnings,
    };
    Ok((report, sizing))
}
