//! Hot plug from the monitor: `object-add`/`object-del` open and close memory backends, and
//! `device_add` plugs an NVDIMM or pc-dimm through the device manager's one plug path (the
//! same as the command line's), after the checks QEMU makes at this level (ids, busy memdevs).

use std::sync::Arc;

use serde_json::{Value, json};
use vm_config::{BackendConfig, DeviceConfig};

use super::state::State;
use crate::device_manager::Plug;
use crate::devices::nvdimm::backend::Backend;

pub use super::error::HotplugError;

type Result<T> = std::result::Result<T, HotplugError>;

/// `object-add`: the backend is opened and mapped now, so its errors surface here (as QEMU's).
pub fn object_add(st: &mut State, add: qmp::ObjectAdd) -> Result<Value> {
    let backend = BackendConfig::from_props(add.qom_type(), add.props())?;
    if st.cfg.backend(&backend.id).is_some() {
        return Err(HotplugError::DuplicateObject(backend.id));
    }
    let opened = Backend::open(&backend, st.cfg.require_persistence)?;
    st.pending.insert(backend.id.clone(), Arc::new(opened));
    st.cfg.objects.push(backend);
    Ok(json!({}))
}

/// `object-del`: only a backend no device uses.
pub fn object_del(st: &mut State, id: &str) -> Result<Value> {
    if st.cfg.backend(id).is_none() {
        return Err(HotplugError::ObjectNotFound(id.to_string()));
    }
    if st.cfg.devices.iter().any(|d| d.memdev() == id) {
        return Err(HotplugError::ObjectInUse(id.to_string()));
    }
    st.cfg.objects.retain(|o| o.id != id);
    st.pending.remove(id);
    Ok(json!({}))
}

/// `device_add nvdimm|pc-dimm`.
pub fn device_add(st: &mut State, add: qmp::DeviceAdd) -> Result<Value> {
    let dev = DeviceConfig::from_props(add.driver(), add.props())?;
    if matches!(dev, DeviceConfig::Nvdimm(_)) && !st.cfg.machine.nvdimm {
        return Err(HotplugError::NvdimmDisabled);
    }
    if let Some(id) = dev.id()
        && st.cfg.devices.iter().any(|d| d.id() == Some(id))
    {
        return Err(HotplugError::DuplicateDevice(id.to_string()));
    }
    let memdev = dev.memdev().to_string();
    let Some(backend_cfg) = st.cfg.backend(&memdev).cloned() else {
        return Err(HotplugError::MemdevNotFound {
            driver: add.driver().to_string(),
            memdev,
        });
    };
    let busy = || HotplugError::BusyMemdev(memdev.clone());
    if st.cfg.devices.iter().any(|d| d.memdev() == memdev) {
        return Err(busy());
    }
    let backend = st.pending.get(&memdev).cloned().ok_or_else(busy)?;
    let index = st.cfg.devices.len();
    st.devices()?.plug_memory_device(
        &dev,
        &backend_cfg,
        backend,
        index,
        Plug::Hot,
        st.cfg.force_label_area,
    )?;
    st.pending.remove(&memdev);
    st.cfg.devices.push(dev);
    Ok(json!({}))
}

/// `device_del`: memory devices cannot be unplugged yet (QEMU refuses NVDIMMs too).
pub fn device_del(st: &State, id: &str) -> Result<Value> {
    match st.cfg.devices.iter().find(|d| d.id() == Some(id)) {
        Some(DeviceConfig::Nvdimm(_)) => Err(HotplugError::UnplugUnsupported(
            "nvdimm device hot unplug is not supported yet.",
        )),
        Some(DeviceConfig::PcDimm(_)) => Err(HotplugError::UnplugUnsupported(
            "pc-dimm hot unplug is not supported by pmvm yet",
        )),
        None => Err(HotplugError::DeviceNotFound(id.to_string())),
    }
}
