//! Reply and event payload types, following QEMU's QAPI schema (qapi/*.json) member names.
//!
//! The VMM fills these and returns them with `serde_json::to_value`; HMP reads them back to
//! format its text output.

use serde::{Deserialize, Serialize};

/// `VersionTriple`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionTriple {
    /// Major version.
    pub major: i64,
    /// Minor version.
    pub minor: i64,
    /// Micro version.
    pub micro: i64,
}

/// `VersionInfo`: reply of `query-version`, and the `version` member of the greeting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The QEMU version whose QMP behaviour this server follows.
    pub qemu: VersionTriple,
    /// Free-form package string; ours names pmvm.
    pub package: String,
}

impl Default for VersionInfo {
    /// QEMU 10.2.0 (the version whose behaviour pmvm follows), package "pmvm <version>".
    fn default() -> Self {
        VersionInfo {
            qemu: VersionTriple {
                major: 10,
                minor: 2,
                micro: 0,
            },
            package: format!("pmvm {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// `RunState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// Stopped by the debugger.
    Debug,
    /// Waiting for an incoming migration.
    Inmigrate,
    /// Internal error.
    InternalError,
    /// Stopped on an I/O error.
    IoError,
    /// Paused by `stop`.
    Paused,
    /// Paused after migration.
    Postmigrate,
    /// Not started yet (`-S`).
    Prelaunch,
    /// Finishing migration.
    FinishMigrate,
    /// Restoring a snapshot.
    RestoreVm,
    /// Running.
    Running,
    /// Saving a snapshot.
    SaveVm,
    /// Shut down (with `-no-shutdown`).
    Shutdown,
    /// Suspended (ACPI S3).
    Suspended,
    /// Stopped by a watchdog.
    Watchdog,
    /// The guest panicked.
    GuestPanicked,
    /// COLO.
    Colo,
}

impl RunState {
    /// The wire name ("running", "paused", ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Debug => "debug",
            RunState::Inmigrate => "inmigrate",
            RunState::InternalError => "internal-error",
            RunState::IoError => "io-error",
            RunState::Paused => "paused",
            RunState::Postmigrate => "postmigrate",
            RunState::Prelaunch => "prelaunch",
            RunState::FinishMigrate => "finish-migrate",
            RunState::RestoreVm => "restore-vm",
            RunState::Running => "running",
            RunState::SaveVm => "save-vm",
            RunState::Shutdown => "shutdown",
            RunState::Suspended => "suspended",
            RunState::Watchdog => "watchdog",
            RunState::GuestPanicked => "guest-panicked",
            RunState::Colo => "colo",
        }
    }
}

/// `StatusInfo`: reply of `query-status`.
///
/// QEMU 10 removed the deprecated `singlestep` member; set it only to imitate an older QEMU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    /// True if all vCPUs are runnable.
    pub running: bool,
    /// Removed in QEMU 10; omitted when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub singlestep: Option<bool>,
    /// The run state.
    pub status: RunState,
}

/// `NameInfo`: reply of `query-name` (`-name`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameInfo {
    /// The guest name, if one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `CommandInfo`: one element of the `query-commands` reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandInfo {
    /// Command name.
    pub name: String,
}

/// `PCDIMMDeviceInfo` (used for both `dimm` and `nvdimm`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PcdimmDeviceInfo {
    /// The device's `id`, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Guest-physical address where the device is mapped.
    pub addr: u64,
    /// Size the device provides to the guest (for an NVDIMM: without the label area).
    pub size: u64,
    /// Slot number.
    pub slot: i64,
    /// NUMA node.
    pub node: i64,
    /// QOM path of the backend, e.g. "/objects/mem1".
    pub memdev: String,
    /// True if added with `device_add`.
    pub hotplugged: bool,
    /// True if it could be added or removed at run time.
    pub hotpluggable: bool,
}

/// `MemoryDeviceInfo`: `{"type": "nvdimm", "data": {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "kebab-case")]
pub enum MemoryDeviceInfo {
    /// A `pc-dimm`.
    Dimm(PcdimmDeviceInfo),
    /// An `nvdimm`.
    Nvdimm(PcdimmDeviceInfo),
}

/// `MemoryInfo`: reply of `query-memory-size-summary`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryInfo {
    /// Boot memory (`-m`), in bytes.
    #[serde(rename = "base-memory")]
    pub base_memory: u64,
    /// Memory of plugged memory devices (DIMMs and NVDIMMs), in bytes; absent without `maxmem`.
    #[serde(
        rename = "plugged-memory",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub plugged_memory: Option<u64>,
}

/// `HostMemPolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostMemPolicy {
    /// No policy.
    #[default]
    Default,
    /// Prefer the given host nodes.
    Preferred,
    /// Only the given host nodes.
    Bind,
    /// Interleave across the given host nodes.
    Interleave,
}

impl HostMemPolicy {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            HostMemPolicy::Default => "default",
            HostMemPolicy::Preferred => "preferred",
            HostMemPolicy::Bind => "bind",
            HostMemPolicy::Interleave => "interleave",
        }
    }
}

/// `CpuInstanceProperties`: where a vCPU sits in the topology.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CpuInstanceProperties {
    /// NUMA node, if the machine has NUMA nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<u32>,
    /// Socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_id: Option<u32>,
    /// Die within the socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub die_id: Option<u32>,
    /// Core within the die.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_id: Option<u32>,
    /// Thread within the core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<u32>,
}

/// `CpuInfoFast`: one element of the `query-cpus-fast` reply. `thread-id` is the host thread
/// that runs the vCPU (what `taskset`/cgroup pinning needs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CpuInfoFast {
    /// vCPU index.
    pub cpu_index: u32,
    /// QOM path of the vCPU object.
    pub qom_path: String,
    /// Host thread id (Linux TID).
    pub thread_id: i64,
    /// Topology.
    pub props: CpuInstanceProperties,
    /// QEMU target, `x86_64`.
    pub target: String,
}

/// `Memdev`: one element of the `query-memdev` reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memdev {
    /// Backend id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// KSM merging enabled.
    pub merge: bool,
    /// Included in core dumps.
    pub dump: bool,
    /// Preallocated.
    pub prealloc: bool,
    /// Mapped shared (guest writes reach the file).
    pub share: bool,
    /// Swap space reserved (only reported by some QEMU builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserve: Option<bool>,
    /// Host NUMA nodes.
    #[serde(rename = "host-nodes")]
    pub host_nodes: Vec<u16>,
    /// NUMA policy.
    pub policy: HostMemPolicy,
}

/// `BlockInfo`: one element of the `query-block` reply (QEMU's schema; pmvm's drives are
/// fixed disks, never removable, always inserted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BlockInfo {
    /// Drive id (`virtio0`, or `id=`).
    pub device: String,
    /// Device type, `unknown` as in QEMU.
    #[serde(rename = "type")]
    pub kind: String,
    /// Removable media.
    pub removable: bool,
    /// Media locked.
    pub locked: bool,
    /// The medium.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inserted: Option<BlockDeviceInfo>,
    /// `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_status: Option<String>,
}

/// `BlockDeviceInfo`: the medium of a drive (QEMU's field names, some in snake_case).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDeviceInfo {
    /// Image file name.
    pub file: String,
    /// Read-only.
    pub ro: bool,
    /// Format driver, `raw`.
    pub drv: String,
    /// Encrypted.
    pub encrypted: bool,
    /// Backing chain depth (0: raw has none).
    pub backing_file_depth: u32,
    /// `off`.
    pub detect_zeroes: String,
    /// Throttling: none.
    pub bps: u64,
    pub bps_rd: u64,
    pub bps_wr: u64,
    pub iops: u64,
    pub iops_rd: u64,
    pub iops_wr: u64,
    /// The image.
    pub image: ImageInfo,
    /// Cache mode.
    pub cache: BlockdevCacheInfo,
    /// Write threshold (0: none).
    pub write_threshold: u64,
}

/// `ImageInfo` (the part pmvm knows).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ImageInfo {
    /// Image file name.
    pub filename: String,
    /// `raw`.
    pub format: String,
    /// Size the guest sees, bytes.
    pub virtual_size: u64,
}

/// `BlockdevCacheInfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BlockdevCacheInfo {
    /// Writes are acknowledged from the host page cache.
    pub writeback: bool,
    /// O_DIRECT.
    pub direct: bool,
    /// Guest flushes are ignored (`cache=unsafe`).
    pub no_flush: bool,
}
