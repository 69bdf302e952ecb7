//! Errors of setting up a guest to boot: loading the kernel, initrd and command line, writing
//! the boot structures, and the vCPU state KVM is given.

use std::path::PathBuf;

/// Why a guest could not be set up to boot. Messages name the option and the file.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// A kernel or initrd file cannot be opened.
    #[error("cannot open {what} '{}': {source}", path.display())]
    Open {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The command line does not fit or holds a character Linux cannot take.
    #[error("-append '{cmdline}': {source}")]
    Cmdline {
        cmdline: String,
        #[source]
        source: linux_loader::cmdline::Error,
    },
    /// The kernel file is no kernel this loader knows.
    #[error("-kernel '{}' is neither an ELF vmlinux nor a bzImage this loader accepts: {source}", path.display())]
    NotAKernel {
        path: PathBuf,
        #[source]
        source: linux_loader::loader::Error,
    },
    /// A bzImage without the header the 64-bit boot protocol needs.
    #[error("bzImage without a setup header")]
    NoSetupHeader,
    /// A bzImage older than boot protocol 2.12.
    #[error("-kernel '{}': boot protocol {version:#x} without a 64-bit entry point (need >= 2.12)", path.display())]
    OldProtocol { path: PathBuf, version: u16 },
    /// The ELF loader failed.
    #[error("cannot load -kernel '{}': {source}", path.display())]
    Load {
        path: PathBuf,
        #[source]
        source: linux_loader::loader::Error,
    },
    /// The initrd's size cannot be read.
    #[error("-initrd '{}': {source}", path.display())]
    InitrdMetadata {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The initrd does not fit below the given address.
    #[error("-initrd '{}' ({size} bytes) does not fit in guest RAM below {top:#x}; give the guest more memory with -m", path.display())]
    InitrdTooLarge { path: PathBuf, size: u64, top: u64 },
    /// Reading the initrd into guest memory failed.
    #[error("cannot read -initrd '{}' into guest memory: {source}", path.display())]
    InitrdRead {
        path: PathBuf,
        #[source]
        source: vm_memory::GuestMemoryError,
    },
    /// A boot structure could not be written into guest memory.
    #[error("boot set-up: cannot write {what}: {source}")]
    Write {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The firmware image cannot be read, or has a size the BIOS region cannot take.
    #[error("-bios '{}': {why}", path.display())]
    Firmware { path: PathBuf, why: String },
    /// An fw_cfg item for the firmware could not be added.
    #[error("boot set-up: fw_cfg item {item}: {why}")]
    FwCfg { item: String, why: String },
    /// More memory-map entries than the zero page holds.
    #[error("boot set-up: too many E820 entries for the zero page")]
    TooManyE820,
    /// The MSR list could not be built.
    #[error("boot set-up: cannot build the MSR list: {0}")]
    MsrList(String),
    /// KVM refused a boot MSR.
    #[error("boot set-up: KVM refused boot MSR {0:#x}")]
    MsrRefused(u32),
    /// A vCPU ioctl failed.
    #[error("KVM: {what}: {source}")]
    Kvm {
        what: &'static str,
        #[source]
        source: kvm_ioctls::Error,
    },
}

impl BootError {
    /// A failed write of `what` into guest memory.
    pub fn write(what: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        BootError::Write {
            what,
            source: Box::new(e),
        }
    }

    /// A failed vCPU ioctl.
    pub fn kvm(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> Self {
        move |source| BootError::Kvm { what, source }
    }
}

/// Result of boot set-up.
pub type Result<T> = std::result::Result<T, BootError>;
