//! Errors of the VM manager. Each says what was refused and what to do; each
//! maps to an HTTP status ([`VmError::status`]) and a CLI exit code.

use std::path::PathBuf;

use thiserror::Error;

/// Everything `pmctl vm ...` and the REST API can refuse or fail at.
#[derive(Debug, Error)]
pub enum VmError {
    /// Invalid VM name (also keeps names safe as file names).
    #[error(
        "invalid VM name '{0}': use 1-64 letters, digits, '-', '_' or '.', starting with a letter"
    )]
    BadName(String),
    /// A value given by the user is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// No definition with this name.
    #[error("no VM named '{name}' in {dir}; see pmctl vm list")]
    NotFound {
        /// VM name.
        name: String,
        /// State directory.
        dir: PathBuf,
    },
    /// `create` with a name that exists.
    #[error("VM '{0}' already exists; delete it first (pmctl vm delete {0}) or pick another name")]
    Exists(String),
    /// The path cannot be used as an NVDIMM backend.
    #[error("{path}: {reason}")]
    Device {
        /// The path given.
        path: PathBuf,
        /// Why (sizing, lookup, missing file).
        reason: String,
    },
    /// A host device can back one VM only.
    #[error(
        "{path} is already assigned to VM '{vm}'; a host device backs one VM only \
         (detach it there first: pmctl vm detach {vm} {path})"
    )]
    AlreadyAssigned {
        /// The device.
        path: PathBuf,
        /// The VM it is assigned to.
        vm: String,
    },
    /// Another process (a VMM not managed here) has the device open.
    #[error("{path} is in use by {users}; stop that process or pick another device")]
    InUse {
        /// The device.
        path: PathBuf,
        /// `pid (program)` list.
        users: String,
    },
    /// The operation needs a stopped VM.
    #[error(
        "VM '{name}' is running (pid {pid}): {what} only while it is stopped \
         (pmctl vm stop {name})"
    )]
    Running {
        /// VM name.
        name: String,
        /// Its pmvm pid.
        pid: u32,
        /// What was refused ("attach NVDIMMs").
        what: &'static str,
    },
    /// `start` of a running VM.
    #[error("VM '{name}' is already running (pid {pid})")]
    AlreadyRunning {
        /// VM name.
        name: String,
        /// Its pmvm pid.
        pid: u32,
    },
    /// `stop` of a stopped VM.
    #[error("VM '{0}' is not running")]
    NotRunning(String),
    /// `detach` of a path that is not attached.
    #[error("{path} is not attached to VM '{name}'; see pmctl vm show {name}")]
    NotAttached {
        /// VM name.
        name: String,
        /// The path.
        path: PathBuf,
    },
    /// The host device changed since it was attached: starting would move the label area.
    #[error(
        "VM '{name}': {path} changed since it was attached: {what}. Starting would move the \
         guest's label area and data (data loss). Restore the namespace to its old size and \
         align, or detach and re-attach it (the guest then sees a new device)"
    )]
    Changed {
        /// VM name.
        name: String,
        /// The device.
        path: PathBuf,
        /// What changed ("size was 4 GiB, now 2 GiB").
        what: String,
    },
    /// pmvm's own configuration code refuses the generated command line.
    #[error("pmvm would refuse this VM: {0}")]
    Layout(String),
    /// No pmvm binary found.
    #[error(
        "cannot find the pmvm binary: give --pmvm PATH, set PMVM, put pmvm next to pmctl or in PATH"
    )]
    NoPmvm,
    /// pmvm failed to start.
    #[error("pmvm failed to start VM '{name}' ({status}): {stderr}")]
    StartFailed {
        /// VM name.
        name: String,
        /// Exit status.
        status: String,
        /// What pmvm printed.
        stderr: String,
    },
    /// QMP conversation failed.
    #[error("VM '{name}': QMP: {reason}")]
    Qmp {
        /// VM name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The VM did not exit.
    #[error("VM '{name}' (pid {pid}) did not exit: {hint}")]
    StopFailed {
        /// VM name.
        name: String,
        /// pid.
        pid: u32,
        /// What to do.
        hint: String,
    },
    /// State directory or file I/O.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A state file is not valid JSON.
    #[error("state file {path} is damaged ({source}); fix or remove it")]
    BadState {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
}

/// What kind of failure, for HTTP status codes and exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input (HTTP 400).
    BadRequest,
    /// No such VM or assignment (HTTP 404).
    NotFound,
    /// Conflicts with the current state (HTTP 409).
    Conflict,
    /// Host-side failure (HTTP 500).
    Internal,
}

impl VmError {
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        use VmError::*;
        match self {
            BadName(_) | Invalid(_) | Device { .. } | Layout(_) => ErrorKind::BadRequest,
            NotFound { .. } | NotAttached { .. } => ErrorKind::NotFound,
            Exists(_)
            | AlreadyAssigned { .. }
            | InUse { .. }
            | Running { .. }
            | AlreadyRunning { .. }
            | NotRunning(_)
            | Changed { .. } => ErrorKind::Conflict,
            NoPmvm
            | StartFailed { .. }
            | Qmp { .. }
            | StopFailed { .. }
            | Io { .. }
            | BadState { .. } => ErrorKind::Internal,
        }
    }

    /// HTTP status for the REST API.
    pub fn status(&self) -> u16 {
        match self.kind() {
            ErrorKind::BadRequest => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Internal => 500,
        }
    }

    /// Shorthand for I/O errors.
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> VmError {
        VmError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}
