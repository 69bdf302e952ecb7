//! Why a monitor command that changes the VM (hot plug) was refused.

use vm_config::ConfigError;

use crate::device_manager::DeviceError;
use crate::devices::nvdimm::backend::BackendError;

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
