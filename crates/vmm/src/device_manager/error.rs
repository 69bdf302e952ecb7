//! What can go wrong when the device manager adds a device or plugs a memory device.

use crate::bus::BusError;
use crate::devices::nvdimm::backend::BackendError;
use crate::devices::nvdimm::label_safety::LabelAreaError;

/// Why a device could not be added, or a memory device plugged.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The layout refuses the device (slots, maxmem, alignment, ids): pmem-layout's message.
    #[error(transparent)]
    Plan(#[from] vm_config::ConfigError),
    /// The device's backend could not be opened or mapped.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The label area holds foreign data.
    #[error(transparent)]
    LabelArea(#[from] LabelAreaError),
    /// An NVDIMM without `-machine nvdimm=on`.
    #[error("nvdimm is not enabled: missing 'nvdimm' in '-M'")]
    NvdimmDisabled,
    /// A `-device` names a backend that does not exist.
    #[error("memdev '{0}' not found")]
    MissingMemdev(String),
    /// Every KVM memory slot is taken.
    #[error(
        "no free KVM memory slot: the host allows {max} and every one is in use; use fewer memory devices"
    )]
    NoMemorySlot { max: u32 },
    /// Every virtio-mmio window is taken.
    #[error("{device}: no free virtio-mmio window ({max} devices at most)")]
    NoWindow { device: String, max: u64 },
    /// Every interrupt line of the virtio pool is taken.
    #[error("{device}: no free interrupt line ({max} virtio devices at most)")]
    NoIrqLine { device: String, max: usize },
    /// The device's address range is taken.
    #[error("{device}: cannot claim its address range: {source}")]
    Claim {
        device: String,
        #[source]
        source: BusError,
    },
    /// KVM refused to map a memory device.
    #[error("{id}: KVM refused memory slot {slot}: {source}")]
    Map {
        id: String,
        slot: u32,
        #[source]
        source: kvm_ioctls::Error,
    },
    /// No host memory for a ROM image.
    #[error("{id}: cannot allocate {len} bytes of host memory for the ROM: {cause}")]
    RomMemory {
        id: String,
        len: usize,
        cause: String,
    },
    /// An interrupt line could not be connected.
    #[error("interrupt line {gsi}: {source}")]
    Irq {
        gsi: u32,
        #[source]
        source: std::io::Error,
    },
}
