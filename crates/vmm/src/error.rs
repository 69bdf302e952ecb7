//! Errors of the VMM. Messages say what was wrong and what to change.

/// Everything that can stop pmvm from building or running a VM.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot be realised (bad file, sizes, combination of options).
    #[error("{0}")]
    Config(String),
    /// A KVM ioctl failed.
    #[error("KVM: {0}")]
    Kvm(#[source] kvm_ioctls::Error),
    /// /dev/kvm is missing or unusable.
    #[error(
        "cannot use /dev/kvm: {0}; is the kvm module loaded and do you have access to /dev/kvm?"
    )]
    KvmOpen(#[source] kvm_ioctls::Error),
    /// Guest memory could not be created.
    #[error("guest memory: {0}")]
    Memory(String),
    /// Writing the boot structures failed.
    #[error("boot set-up: {0}")]
    BootSetup(String),
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
}
