//! Checks that need the whole configuration (QEMU's messages, then what to do).

use std::collections::HashSet;

use crate::objects::DeviceConfig;
use crate::{ConfigError, VmConfig};

/// Interrupt lines for virtio devices (the vmm's `irqs::VIRTIO_POOL`).
pub const VIRTIO_DEVICES: usize = 12;

/// `-append`: the kernel splits its command line on spaces outside double quotes; an odd number
/// of quotes makes it swallow the rest of the line into one parameter.
fn check_append(append: &str) -> Result<(), ConfigError> {
    if append.matches('"').count() % 2 == 1 {
        return Err(ConfigError::new(format!(
            "-append: unbalanced double quote in '{append}'; the kernel would misparse everything after it"
        )));
    }
    if let Some(c) = append.chars().find(|c| c.is_control()) {
        return Err(ConfigError::new(format!(
            "-append: control character {:?} is not allowed",
            c
        )));
    }
    if append.len() >= 65536 {
        return Err(ConfigError::new(format!(
            "-append: {} bytes is too long (at most 65535)",
            append.len()
        )));
    }
    Ok(())
}

/// `-kernel`/`-initrd` must be readable regular files (checked before KVM is touched).
fn check_file(option: &str, path: &std::path::Path) -> Result<(), ConfigError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => std::fs::File::open(path)
            .map(|_| ())
            .map_err(|e| ConfigError::new(format!("{option} '{}': {e}", path.display()))),
        Ok(_) => Err(ConfigError::new(format!(
            "{option} '{}': not a regular file",
            path.display()
        ))),
        Err(e) => Err(ConfigError::new(format!(
            "{option} '{}': {e}",
            path.display()
        ))),
    }
}

/// Cross-object checks: machine options, backend references, duplicate ids, files.
pub fn validate(cfg: &VmConfig) -> Result<(), ConfigError> {
    check_append(&cfg.append)?;
    // Disks and NICs share the virtio interrupt lines (IOAPIC 16-23 and ISA 10, 11, 14, 15).
    if cfg.drives.len() + cfg.nics.len() > VIRTIO_DEVICES {
        return Err(ConfigError::new(format!(
            "{} drives and {} NICs: pmvm gives at most {VIRTIO_DEVICES} virtio devices (one interrupt line each)",
            cfg.drives.len(),
            cfg.nics.len()
        )));
    }
    let mut ids = HashSet::new();
    let mut used = HashSet::new();
    for dev in &cfg.devices {
        if let Some(id) = dev.id()
            && !ids.insert(id)
        {
            return Err(ConfigError::new(format!(
                "-device: Duplicate ID '{id}' for device"
            )));
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
    match &cfg.source {
        crate::BootSource::Kernel(k) => check_file("-kernel", k)?,
        crate::BootSource::Firmware(f) => crate::boot::check_firmware(f)?,
    }
    if let Some(initrd) = &cfg.initrd {
        check_file("-initrd", initrd)?;
    }
    Ok(())
}
