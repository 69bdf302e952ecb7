//! What the monitor keeps between commands: the configuration (with hot-plugged objects and
//! devices, so a reset rebuilds them), the running VM, backends waiting for a device, and the
//! run state the client asked for.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};

use qmp::ShutdownCause;
use vm_config::VmConfig;

use super::error::HotplugError;
use crate::device_manager::DeviceManager;
use crate::devices::nvdimm::backend::Backend;
use crate::vm_handle::VmHandle;

/// The monitor's state, behind its one lock.
pub struct State {
    /// The configuration including hot-plugged objects and devices (a reset rebuilds from it).
    pub cfg: VmConfig,
    /// The running VM.
    pub vm: Option<VmHandle>,
    /// Backends opened by `object-add`, waiting for a device.
    pub pending: HashMap<String, Arc<Backend>>,
    /// The vCPUs are stopped (`stop`, `-S`).
    pub paused: bool,
    /// Why the VM was asked to quit.
    pub quit_cause: ShutdownCause,
    /// `quit` was asked for: also honoured while no VM is attached (between a reset and the
    /// rebuilt VM), so it can never be lost.
    pub quit_requested: bool,
}

impl State {
    /// The running VM, or the error of commands that need one.
    pub fn vm(&self) -> Result<&VmHandle, HotplugError> {
        self.vm.as_ref().ok_or(HotplugError::NotRunning)
    }

    /// The running VM's device manager.
    pub fn devices(&self) -> Result<MutexGuard<'_, DeviceManager>, HotplugError> {
        Ok(self.vm()?.devices.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
