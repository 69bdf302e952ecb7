//! Hot plug from the monitor: `object-add`/`object-del` open and close memory backends, and
//! `device_add` plugs an NVDIMM or pc-dimm through the device manager's one plug path (the
//! same as the command line's), after the checks QEMU makes at this level (ids, busy memdevs).

use std::sync::Arc;

use qmp::QmpError;
use serde_json::{Value, json};
use vm_config::{BackendConfig, DeviceConfig, Props};

use super::state::State;
use crate::device_manager::Plug;
use crate::devices::nvdimm::backend::Backend;

fn generic(msg: impl Into<String>) -> QmpError {
    QmpError::generic(msg.into())
}

/// `object-add`: the backend is opened and mapped now, so its errors surface here (as QEMU's).
pub fn object_add(st: &mut State, add: qmp::ObjectAdd) -> Result<Value, QmpError> {
    let mut props: Props = Props(vec![
        ("qom-type".into(), add.qom_type.clone()),
        ("id".into(), add.id.clone()),
    ]);
    props.0.extend(add.props);
    let backend =
        BackendConfig::from_props(&add.qom_type, &props).map_err(|e| generic(e.to_string()))?;
    if st.cfg.backend(&backend.id).is_some() {
        return Err(generic(format!("Duplicate ID '{}' for object", backend.id)));
    }
    let opened =
        Backend::open(&backend, st.cfg.require_persistence).map_err(|e| generic(e.to_string()))?;
    st.pending.insert(backend.id.clone(), Arc::new(opened));
    st.cfg.objects.push(backend);
    Ok(json!({}))
}

/// `object-del`: only a backend no device uses.
pub fn object_del(st: &mut State, id: &str) -> Result<Value, QmpError> {
    if st.cfg.backend(id).is_none() {
        return Err(generic(format!("object '{id}' not found")));
    }
    if st.cfg.devices.iter().any(|d| d.memdev() == id) {
        return Err(generic(format!(
            "object '{id}' is in use, can not be deleted"
        )));
    }
    st.cfg.objects.retain(|o| o.id != id);
    st.pending.remove(id);
    Ok(json!({}))
}

/// `device_add nvdimm|pc-dimm`.
pub fn device_add(st: &mut State, add: qmp::DeviceAdd) -> Result<Value, QmpError> {
    let mut props = Props(vec![("driver".into(), add.driver.clone())]);
    if let Some(id) = &add.id {
        props.0.push(("id".into(), id.clone()));
    }
    props.0.extend(add.props);
    let dev = DeviceConfig::from_props(&add.driver, &props).map_err(|e| generic(e.to_string()))?;
    if matches!(dev, DeviceConfig::Nvdimm(_)) && !st.cfg.machine.nvdimm {
        return Err(generic("nvdimm is not enabled: missing 'nvdimm' in '-M'"));
    }
    if let Some(id) = dev.id()
        && st.cfg.devices.iter().any(|d| d.id() == Some(id))
    {
        return Err(generic(format!("Duplicate device ID '{id}'")));
    }
    let memdev = dev.memdev().to_string();
    let Some(backend_cfg) = st.cfg.backend(&memdev).cloned() else {
        return Err(generic(format!(
            "Property '{}.memdev' can't find value '{memdev}'",
            add.driver
        )));
    };
    let busy = || generic(format!("can't use already busy memdev: {memdev}"));
    if st.cfg.devices.iter().any(|d| d.memdev() == memdev) {
        return Err(busy());
    }
    let backend = st.pending.get(&memdev).cloned().ok_or_else(busy)?;
    let index = st.cfg.devices.len();
    st.devices()?
        .plug_memory_device(
            &dev,
            &backend_cfg,
            backend,
            index,
            Plug::Hot,
            st.cfg.force_label_area,
        )
        .map_err(|e| generic(e.to_string()))?;
    st.pending.remove(&memdev);
    st.cfg.devices.push(dev);
    Ok(json!({}))
}

/// `device_del`: memory devices cannot be unplugged yet (QEMU refuses NVDIMMs too).
pub fn device_del(st: &State, id: &str) -> Result<Value, QmpError> {
    match st.cfg.devices.iter().find(|d| d.id() == Some(id)) {
        Some(DeviceConfig::Nvdimm(_)) => {
            Err(generic("nvdimm device hot unplug is not supported yet."))
        }
        Some(DeviceConfig::PcDimm(_)) => {
            Err(generic("pc-dimm hot unplug is not supported by pmvm yet"))
        }
        None => Err(QmpError::device_not_found(id)),
    }
}
