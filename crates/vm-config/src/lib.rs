//! pmvm's configuration: QEMU's command-line syntax parsed into typed structures.
//!
//! The same types serve the command line and QMP's `object-add`/`device_add` (through
//! [`BackendConfig::from_props`] and [`DeviceConfig::from_props`]), so a hot-added NVDIMM is
//! checked by exactly the code that checks a cold-plugged one.

#![forbid(unsafe_code)]

mod args;
mod boot;
#[cfg(test)]
mod boot_tests;
mod drive;
mod keyval;
mod net;
mod objects;
mod plan;

pub use args::{HELP, parse_args};
pub use boot::{
    BootConfig, BootSource, DEFAULT_FIRMWARE, DebugconConfig, MAX_FIRMWARE_SIZE, boot_drive_order,
    cdrom_without_mbr,
};
pub use drive::{DriveCache, DriveConfig, MAX_DRIVES, detect_image_format};
pub use keyval::{Props, bool_value, parse as parse_keyval, parse_bool, split_opts};
pub use net::{
    DEFAULT_MAC, GUEST_ADDR, GuestFwd, HostFwd, NetBackendConfig, NicConfig, format_mac,
};
pub use objects::{BackendConfig, BackendKind, DeviceConfig, NvdimmConfig, PcDimmConfig};
pub use plan::{DevicePlan, device_memory, plan_device, plan_devices};

use std::path::PathBuf;

/// A configuration error: one line, naming the option and value, saying what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// Builds an error from its message.
    pub fn new(msg: impl Into<String>) -> Self {
        ConfigError(msg.into())
    }
}

/// `-machine nvdimm-persistence=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersistenceDomain {
    /// `cpu`: CPU caches are flushed on power loss.
    Cpu,
    /// `mem-ctrl`: the memory controller is flushed on power loss.
    MemCtrl,
}

/// `-machine`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineConfig {
    /// Machine type; only `pc` is provided.
    pub kind: String,
    /// `nvdimm=on`.
    pub nvdimm: bool,
    /// `nvdimm-persistence=`.
    pub nvdimm_persistence: Option<PersistenceDomain>,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            kind: "pc".into(),
            nvdimm: false,
            nvdimm_persistence: None,
        }
    }
}

/// `-m size=..,slots=..,maxmem=..`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryConfig {
    /// Initial RAM in bytes.
    pub size: u64,
    /// Memory-device slots (DIMMs and NVDIMMs).
    pub slots: u32,
    /// Maximum memory (RAM + all memory devices), bytes; equals `size` without hotplug space.
    pub maxmem: u64,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        // QEMU's default RAM size.
        MemoryConfig {
            size: 128 << 20,
            slots: 0,
            maxmem: 128 << 20,
        }
    }
}

/// Where the serial console goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SerialConfig {
    /// The terminal (raw mode when it is a tty).
    Stdio,
    /// Output appended to a file; no input.
    File(PathBuf),
    /// No serial port.
    None,
    /// QEMU's `vc`: the VNC server's text console (Ctrl-Alt-3, and console 1 while the guest
    /// has no framebuffer); the default with `-vnc` and neither `-nographic` nor `-serial`.
    Vc,
}

/// A monitor/QMP endpoint as given on the command line (`unix:PATH,server,wait=off`,
/// `tcp:HOST:PORT,server`, `stdio`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChardevSpec(pub String);

/// The whole VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmConfig {
    pub name: Option<String>,
    pub machine: MachineConfig,
    pub memory: MemoryConfig,
    pub cpus: u32,
    /// `-kernel` (direct boot) or firmware (`-bios`, or the default without `-kernel`).
    pub source: BootSource,
    /// `-boot` (firmware boot only).
    pub boot: BootConfig,
    /// `-debugcon`: the firmware's debug port.
    pub debugcon: Option<DebugconConfig>,
    pub initrd: Option<PathBuf>,
    pub append: String,
    pub serial: SerialConfig,
    pub no_reboot: bool,
    pub no_shutdown: bool,
    pub start_paused: bool,
    pub pidfile: Option<PathBuf>,
    pub daemonize: bool,
    /// `-sandbox on|off`: a seccomp filter per thread kind (on by default, as in Firecracker).
    pub sandbox: bool,
    pub objects: Vec<BackendConfig>,
    pub devices: Vec<DeviceConfig>,
    /// `-drive`s, sorted by index.
    pub drives: Vec<DriveConfig>,
    /// NICs (`-net nic` + `-net user|tap`, `-nic`, `-netdev` + `-device`), each with its backend.
    pub nics: Vec<NicConfig>,
    /// What QEMU would also warn about in the network options (a hub without a NIC).
    pub net_warnings: Vec<String>,
    pub qmp: Vec<ChardevSpec>,
    pub monitor: Vec<ChardevSpec>,
    /// `-vnc SPEC`, as given (the VMM parses it with `rfb::parse_vnc_spec`); `None` without
    /// `-vnc` or with `-vnc none`.
    pub vnc: Option<String>,
    /// pmvm extension `-require-persistence`: refuse `pmem=on` backends that cannot give
    /// crash persistence (QEMU only warns).
    pub require_persistence: bool,
    /// pmvm extension `-force-label-area`: start even when a label area holds foreign data.
    pub force_label_area: bool,
}

impl VmConfig {
    /// The backend a device refers to.
    pub fn backend(&self, id: &str) -> Option<&BackendConfig> {
        self.objects.iter().find(|b| b.id == id)
    }
}

/// What `parse_args` asks the binary to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Run this VM.
    Run(Box<VmConfig>),
    /// Print help.
    Help,
    /// Print the version.
    Version,
}

mod validate;

/// Parses a size property with QEMU's suffixes; `mib_default` makes a bare number MiB (`-m 512`).
pub(crate) fn size_prop(
    option: &str,
    key: &str,
    v: &str,
    mib_default: bool,
) -> Result<u64, ConfigError> {
    let unit = if mib_default {
        pmem_layout::Suffix::M
    } else {
        pmem_layout::Suffix::B
    };
    pmem_layout::parse_size(v, unit)
        .map_err(|e| ConfigError::new(format!("{option}: {key}={v}: {e}")))
}

/// Fuzz entry: arbitrary bytes as a command line (NUL-separated arguments) and as QMP-style
/// property lists must parse or fail with an error, never panic.
pub fn fuzz_cli_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let argv: Vec<String> = text.split('\0').map(str::to_string).collect();
    let _ = parse_args(&argv);
    for line in text.split('\n') {
        for implied in ["qom-type", "driver", "size"] {
            if let Ok(p) = parse_keyval("-fuzz", line, Some(implied)) {
                let kind = p.get(implied).unwrap_or_default().to_string();
                let _ = BackendConfig::from_props(&kind, &p);
                let _ = DeviceConfig::from_props(&kind, &p);
            }
        }
    }
}

#[cfg(test)]
mod fuzz_tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn random_command_lines_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            super::fuzz_cli_parse(&data);
        }

        #[test]
        fn option_shaped_lines_never_panic(words in proptest::collection::vec(
            prop_oneof![
                Just("-m".to_string()), Just("-object".to_string()), Just("-device".to_string()),
                Just("-machine".to_string()), Just("-smp".to_string()), Just("-kernel".to_string()),
                Just("-net".to_string()), Just("-nic".to_string()), Just("-netdev".to_string()),
                "[a-z=,0-9.KMGx-]{0,24}".prop_map(|s| s),
            ], 0..12)) {
            super::fuzz_cli_parse(words.join("\0").as_bytes());
        }
    }
}
