//! The guest layout of memory devices, computed once from the configuration with pmem-layout
//! (the same code pmctl uses for sizing), for cold plug and hotplug alike.

use pmem_layout::{DeviceKind, DeviceMemory, MemoryDeviceRequest, NvdimmSplit, nvdimm_split_named};

use crate::objects::{BackendConfig, DeviceConfig};
use crate::{ConfigError, MemoryConfig, VmConfig};

/// Where one memory device sits and how its backend is split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevicePlan {
    /// The device id (`id=`), or a generated `#devN` for anonymous devices.
    pub id: String,
    /// Whether the id was given by the user.
    pub named: bool,
    pub memdev: String,
    pub slot: u32,
    /// Guest-physical base of the guest-visible range.
    pub gpa: u64,
    /// Guest-visible bytes (pmem part for an NVDIMM, the whole backend for a DIMM).
    pub size: u64,
    /// NVDIMM split (None for pc-dimm).
    pub nvdimm: Option<NvdimmSplit>,
    pub node: u32,
    pub unarmed: bool,
}

/// Creates the device-memory allocator for `-m`.
pub fn device_memory(mem: &MemoryConfig) -> Result<DeviceMemory, ConfigError> {
    // Devices start on 128 MiB memory-block boundaries (see DeviceMemory::with_start_alignment).
    // Slots count memory devices (pc-dimm + nvdimm), as QEMU counts them: the seed's advice to
    // also count the boot RAM would refuse command lines QEMU accepts.
    DeviceMemory::new(mem.size, mem.slots, mem.maxmem)
        .map(|dm| {
            dm.with_start_alignment(pmem_layout::X86_MEMORY_BLOCK)
                .with_slot_rule(pmem_layout::SlotRule::Qemu)
        })
        .map_err(|e| ConfigError::new(format!("-m: {e}")))
}

/// Places one device (cold or hot plug); `index` names anonymous devices.
pub fn plan_device(
    dm: &mut DeviceMemory,
    dev: &DeviceConfig,
    backend: &BackendConfig,
    index: usize,
) -> Result<DevicePlan, ConfigError> {
    let (named, id) = match dev.id() {
        Some(id) => (true, id.to_string()),
        None => (false, format!("#dev{index}")),
    };
    let align = backend.align();
    let (kind, size, split, node, unarmed, slot, addr, driver) = match dev {
        DeviceConfig::Nvdimm(n) => {
            let split = nvdimm_split_named(&backend.id, backend.size, n.label_size, align)
                .map_err(|e| ConfigError::new(format!("-device nvdimm,id={id}: {e}")))?;
            let readonly = matches!(
                backend.kind,
                crate::BackendKind::File { readonly: true, .. }
            );
            if readonly && !n.unarmed {
                return Err(ConfigError::new(format!(
                    "-device nvdimm,id={id}: 'unarmed' property must be 'on' since memdev {} is read-only; add unarmed=on",
                    backend.id
                )));
            }
            (
                DeviceKind::Nvdimm,
                split.pmem_size,
                Some(split),
                n.node,
                n.unarmed,
                n.slot,
                n.addr,
                "nvdimm",
            )
        }
        DeviceConfig::PcDimm(d) => (
            DeviceKind::PcDimm,
            backend.size,
            None,
            d.node,
            false,
            d.slot,
            d.addr,
            "pc-dimm",
        ),
    };
    let req = MemoryDeviceRequest {
        id: id.clone(),
        kind,
        size,
        align,
        slot,
        addr,
    };
    let placed = dm
        .plug(&req)
        .map_err(|e| ConfigError::new(format!("-device {driver},id={id}: {e}")))?;
    Ok(DevicePlan {
        id,
        named,
        memdev: backend.id.clone(),
        slot: placed.slot,
        gpa: placed.gpa,
        size: placed.size,
        nvdimm: split,
        node,
        unarmed,
    })
}

/// Places every cold-plugged device in command-line order (stable: the same command line always
/// gives the same slots, addresses and hence NFIT identities).
pub fn plan_devices(cfg: &VmConfig) -> Result<(DeviceMemory, Vec<DevicePlan>), ConfigError> {
    let mut dm = device_memory(&cfg.memory)?;
    let mut plans = Vec::with_capacity(cfg.devices.len());
    for (i, dev) in cfg.devices.iter().enumerate() {
        let backend = cfg.backend(dev.memdev()).ok_or_else(|| {
            ConfigError::new(format!("-device: memdev '{}' not found", dev.memdev()))
        })?;
        plans.push(plan_device(&mut dm, dev, backend, i)?);
    }
    Ok((dm, plans))
}

#[cfg(test)]
mod tests;
