//! Errors of the VMM. Each module has its own error type (boot set-up, ACPI, memory, backends,
//! devices, virtio-blk, hot plug) with the cause kept as a `#[source]`; [`Error`] gathers them
//! for the run loop, and [`Error::qmp_class`] is the one place that says which QMP error class
//! a failure answers a client with. Messages say what was wrong and what to change.

use qmp::{ErrorClass, QmpError};

pub use crate::acpi::AcpiError;
pub use crate::arch::x86_64::error::BootError;
pub use crate::device_manager::DeviceError;
pub use crate::devices::nvdimm::backend::BackendError;
pub use crate::devices::virtio::block::BlockError;
pub use crate::memory::MemoryError;
pub use crate::monitor::hotplug::HotplugError;

/// Everything that can stop pmvm from building or running a VM.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line or monitor input asks for something impossible.
    #[error(transparent)]
    Config(#[from] vm_config::ConfigError),
    /// Loading the kernel or writing the boot state.
    #[error(transparent)]
    Boot(#[from] BootError),
    /// Building or placing the ACPI tables.
    #[error(transparent)]
    Acpi(#[from] AcpiError),
    /// Guest RAM.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// An NVDIMM or pc-dimm backend.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A device or the resources it needs.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A `-drive` image.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// The seccomp sandbox could not be set up.
    #[error("-sandbox: {0}")]
    Sandbox(#[from] crate::seccomp::SandboxError),
    /// A NIC's backend (user network, tap).
    #[error(transparent)]
    Net(#[from] crate::devices::net::NetError),
    /// A monitor hot-plug command.
    #[error(transparent)]
    Hotplug(#[from] HotplugError),
    /// A `-qmp` or `-monitor` endpoint could not be set up.
    #[error("{option} {spec}: {source}")]
    Monitor {
        option: &'static str,
        spec: String,
        #[source]
        source: qmp::ServerError,
    },
    /// A KVM ioctl on the VM failed.
    #[error("KVM: {what}: {source}")]
    Kvm {
        what: &'static str,
        #[source]
        source: kvm_ioctls::Error,
    },
    /// /dev/kvm is missing or unusable.
    #[error(
        "cannot use /dev/kvm: {0}; is the kvm module loaded and do you have access to /dev/kvm?"
    )]
    KvmOpen(#[source] kvm_ioctls::Error),
    /// A host I/O error with context.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A vCPU stopped on a condition pmvm cannot handle.
    #[error("vCPU {cpu}: {what}")]
    Vcpu { cpu: u32, what: String },
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with what pmvm was doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// A failed VM ioctl, for `map_err`.
    pub fn kvm(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> Self {
        move |source| Error::Kvm { what, source }
    }

    /// The QMP error class a client gets for this error (QEMU's classes: almost everything is
    /// a `GenericError`; a missing device and a missing KVM capability have their own).
    pub fn qmp_class(&self) -> ErrorClass {
        match self {
            Error::Hotplug(HotplugError::DeviceNotFound(_)) => ErrorClass::DeviceNotFound,
            Error::KvmOpen(_) => ErrorClass::KvmMissingCap,
            _ => ErrorClass::GenericError,
        }
    }
}

impl From<Error> for QmpError {
    fn from(e: Error) -> QmpError {
        QmpError::new(e.qmp_class(), e.to_string())
    }
}

impl From<HotplugError> for QmpError {
    fn from(e: HotplugError) -> QmpError {
        Error::from(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qmp_classes_and_messages() {
        let e = Error::from(HotplugError::DeviceNotFound("nv9".into()));
        let q = QmpError::from(e);
        assert_eq!(q.class, ErrorClass::DeviceNotFound);
        assert_eq!(q.desc, "Device 'nv9' not found");
        let e = Error::from(HotplugError::DuplicateDevice("nv1".into()));
        assert_eq!(e.qmp_class(), ErrorClass::GenericError);
        assert_eq!(e.to_string(), "Duplicate device ID 'nv1'");
        // The cause stays reachable as a source.
        let e = Error::io(
            "cannot open x",
            std::io::Error::from_raw_os_error(libc::ENOENT),
        );
        assert!(std::error::Error::source(&e).is_some());
    }
}
