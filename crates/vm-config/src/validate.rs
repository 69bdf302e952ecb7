//! Checks that need the whole configuration (QEMU's messages, then what to do).

use std::collections::HashSet;

use crate::objects::DeviceConfig;
use crate::{ConfigError, VmConfig};

/// Cross-object checks: machine options, backend references, duplicate ids.
pub fn validate(cfg: &VmConfig) -> Result<(), ConfigError> {
    let mut ids = HashSet::new();
    let mut used = HashSet::new();
    for dev in &cfg.devices {
        if let Some(id) = dev.id() {
            if !ids.insert(id) {
                return Err(ConfigError::new(format!("-device: Duplicate ID '{id}' for device")));
            }
        }
        let driver = match dev {
            DeviceConfig::Nvdimm(_) => "nvdimm",
            DeviceConfig::PcDimm(_) => "pc-dimm",
        };
        if matches!(dev, DeviceConfig::Nvdimm(_)) && !cfg.machine.nvdimm {
            return Err(ConfigError::new(
                "nvdimm is not enabled: missing 'nvdimm' in '-M'; add -machine pc,nvdimm=on",
            ));
        }
        let memdev = dev.memdev();
        if cfg.backend(memdev).is_none() {
            return Err(ConfigError::new(format!(
                "-device {driver}: Property '{driver}.memdev' can't find value '{memdev}': add -object memory-backend-file,id={memdev},..."
            )));
        }
        if !used.insert(memdev) {
            return Err(ConfigError::new(format!(
                "-device {driver}: can't use already busy memdev: {memdev} (each device needs its own -object)"
            )));
        }
    }
    Ok(())
}
