//! Hot plug from the monitor: `object-add`/`object-del` open and close memory backends, and
//! `device_add` plugs an NVDIMM or pc-dimm through the device manager's one plug path (the
//! same as the command line's), after the checks QEMU makes at this level (ids, busy memdevs).

use std::sync::Arc;

use serde_json::{Value, json};
use vm_config::{BackendConfig, ConfigError, DeviceConfig, Props};

use super::state::State;
use crate::device_manager::{DeviceError, Plug};
use crate::devices::nvdimm::backend::{Backend, BackendError};

/// Why a hot-plug command was refused. The texts are QEMU's where QEMU has one.
#[derive(Debug, thiserror::Error)]
pub enum HotplugError {
    /// The properties do not describe a valid object or device.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The backend could not be opened or mapped.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The device manager refused the device (layout, slots, label area, KVM).
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// An object with this id exists.
    #[error("Duplicate ID '{0}' for object")]
    DuplicateObject(String),
    /// No object has this id.
    #[error("object '{0}' not found")]
    ObjectNotFound(String),
    /// A device still uses the object.
    #[error("object '{0}' is in use, can not be deleted")]
    ObjectInUse(String),
    /// A device with this id exists.
    #[error("Duplicate device ID '{0}'")]
    DuplicateDevice(String),
    /// `memdev=` names no object.
    #[error("Property '{driver}.memdev' can't find value '{memdev}'")]
    MemdevNotFound { driver: String, memdev: String },
    /// `memdev=` names an object another device uses.
    #[error("can't use already busy memdev: {0}")]
    BusyMemdev(String),
    /// An NVDIMM without `-machine nvdimm=on`.
    #[error("nvdimm is not enabled: missing 'nvdimm' in '-M'")]
    NvdimmDisabled,
    /// No VM runs (between a reset and the rebuilt VM).
    #[error("the VM is not running")]
    NotRunning,
    /// Unplug of this kind of device is not implemented.
    #[error("{0}")]
    UnplugUnsupported(&'static str),
    /// No device has this id.
    #[error("Device '{0}' not found")]
    DeviceNotFound(String),
}

type Result<T> = std::result::Result<T, HotplugError>;

/// `object-add`: the backend is opened and mapped now, so its errors surface here (as QEMU's).
pub fn object_add(st: &mut State, add: qmp::ObjectAdd) -> Result<Value> {
    let mut props: Props = Props(vec![
        ("qom-type".into(), add.qom_type.clone()),
        ("id".into(), add.id.clone()),
    ]);
    props.0.extend(add.props);
    let backend = BackendConfig::from_props(&add.qom_type, &props)?;
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
    let mut props = Props(vec![("driver".into(), add.driver.clone())]);
    if let Some(id) = &add.id {
        props.0.push(("id".into(), id.clone()));
    }
    props.0.extend(add.props);
    let dev = DeviceConfig::from_props(&add.driver, &props)?;
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
            driver: add.driver,
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
