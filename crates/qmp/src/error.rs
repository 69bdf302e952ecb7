//! Error types: what a command returns to a QMP client, and what setting up a server can fail with.

use std::fmt;

/// QMP error classes (QEMU's `QapiErrorClass`). Almost everything is `GenericError`; clients
/// should match on the class, never on the description.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Any error without a more specific class.
    GenericError,
    /// Unknown command, or a command not allowed in the current state.
    CommandNotFound,
    /// A device exists but has no active function (QEMU: block jobs, balloon).
    DeviceNotActive,
    /// The named device or object does not exist.
    DeviceNotFound,
    /// KVM lacks a capability the command needs.
    KvmMissingCap,
}

impl ErrorClass {
    /// The class name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::GenericError => "GenericError",
            ErrorClass::CommandNotFound => "CommandNotFound",
            ErrorClass::DeviceNotActive => "DeviceNotActive",
            ErrorClass::DeviceNotFound => "DeviceNotFound",
            ErrorClass::KvmMissingCap => "KVMMissingCap",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error reply: `{"error": {"class": ..., "desc": ...}}`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{desc}")]
pub struct QmpError {
    /// The error class.
    pub class: ErrorClass,
    /// Human-readable description (shown by HMP as "Error: <desc>").
    pub desc: String,
}

impl QmpError {
    /// An error of class `class`.
    pub fn new(class: ErrorClass, desc: impl Into<String>) -> Self {
        QmpError {
            class,
            desc: desc.into(),
        }
    }

    /// A `GenericError`.
    pub fn generic(desc: impl Into<String>) -> Self {
        Self::new(ErrorClass::GenericError, desc)
    }

    /// A `CommandNotFound` error.
    pub fn command_not_found(desc: impl Into<String>) -> Self {
        Self::new(ErrorClass::CommandNotFound, desc)
    }

    /// QEMU's `DeviceNotFound` reply for `id`: "Device 'id' not found".
    pub fn device_not_found(id: &str) -> Self {
        Self::new(
            ErrorClass::DeviceNotFound,
            format!("Device '{id}' not found"),
        )
    }
}

/// Failure to set up or run a monitor endpoint.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The `-qmp`/`-monitor` argument could not be understood.
    #[error("invalid monitor chardev '{spec}': {reason}")]
    BadSpec {
        /// The argument as given.
        spec: String,
        /// What is wrong with it and what is accepted.
        reason: String,
    },
    /// Binding, listening on or connecting to the endpoint failed.
    #[error("cannot {action} {endpoint}: {source}")]
    Io {
        /// "listen on" / "connect to" / "accept on".
        action: &'static str,
        /// The endpoint, e.g. "unix:/run/vm.qmp".
        endpoint: String,
        /// The OS error.
        source: std::io::Error,
    },
}
