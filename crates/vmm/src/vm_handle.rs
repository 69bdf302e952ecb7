//! What the monitor holds of a running VM (built by `Vm::handle`). A file of its own so that the
//! monitor does not depend on the code that builds and runs VMs.

use std::sync::{Arc, Mutex};

use crate::device_manager::DeviceManager;
use crate::devices::EventSink;
use crate::devices::net::NetDev;
use crate::vcpu::VcpuControl;

/// What the monitor holds of a running VM.
#[derive(Clone)]
pub struct VmHandle {
    /// The VM's event channel (quit, reset).
    pub sink: EventSink,
    /// vCPU run state.
    pub control: Arc<VcpuControl>,
    /// Number of vCPUs.
    pub vcpus: usize,
    /// The device manager (hot plug, queries, the GED).
    pub devices: Arc<Mutex<DeviceManager>>,
    /// The NICs, in command-line order.
    pub nets: Arc<Vec<NetDev>>,
}
