//! `-object memory-backend-*` and `-device nvdimm|pc-dimm`, from properties.

use std::path::PathBuf;

use crate::keyval::Props;
use crate::{ConfigError, size_prop};

/// The backend's flavour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// `memory-backend-file`.
    File {
        /// `mem-path`: a regular file, a file on a DAX filesystem or a device-DAX node.
        mem_path: PathBuf,
        /// `align=`: mapping and guest alignment (device DAX needs its own, e.g. 2M).
        align: Option<u64>,
        /// `pmem=on`: the file is persistent memory; map it with MAP_SYNC and flush label writes.
        pmem: bool,
        /// `readonly=on`.
        readonly: bool,
        /// `discard-data=on`: drop the contents when the backend goes away.
        discard_data: bool,
    },
    /// `memory-backend-ram`: anonymous memory, lost at exit.
    Ram,
}

/// A memory backend (`-object memory-backend-file|memory-backend-ram`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendConfig {
    pub id: String,
    pub size: u64,
    /// `share=on`: guest writes reach the file (MAP_SHARED); off: private copy-on-write.
    pub share: bool,
    pub prealloc: bool,
    pub kind: BackendKind,
}

const FILE_KEYS: &[&str] = &[
    "qom-type",
    "id",
    "mem-path",
    "size",
    "share",
    "align",
    "pmem",
    "readonly",
    "prealloc",
    "discard-data",
    "merge",
    "dump",
];
const RAM_KEYS: &[&str] = &[
    "qom-type", "id", "size", "share", "prealloc", "merge", "dump",
];

fn require<'a>(
    option: &str,
    props: &'a Props,
    key: &str,
    hint: &str,
) -> Result<&'a str, ConfigError> {
    props
        .get(key)
        .ok_or_else(|| ConfigError::new(format!("{option}: parameter '{key}' is missing ({hint})")))
}

fn valid_id(option: &str, id: &str) -> Result<(), ConfigError> {
    let ok = id.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(format!(
            "{option}: id '{id}' is not valid: use letters, digits, '-', '.', '_', starting with a letter"
        )))
    }
}

impl BackendConfig {
    /// Builds a backend from `-object`/`object-add` properties; `qom_type` is the type name.
    pub fn from_props(qom_type: &str, props: &Props) -> Result<Self, ConfigError> {
        let option = "-object";
        let (keys, file) = match qom_type {
            "memory-backend-file" => (FILE_KEYS, true),
            "memory-backend-ram" => (RAM_KEYS, false),
            other => {
                return Err(ConfigError::new(format!(
                    "{option}: object type '{other}' is not supported by pmvm (supported: memory-backend-file, memory-backend-ram)"
                )));
            }
        };
        if let Some(k) = props.unknown(keys) {
            return Err(ConfigError::new(format!(
                "{option} {qom_type}: property '{k}' not found"
            )));
        }
        let id = require(
            option,
            props,
            "id",
            "give the backend an id=NAME for -device ...,memdev=NAME",
        )?;
        valid_id(option, id)?;
        let size = size_prop(
            option,
            "size",
            require(option, props, "size", "e.g. size=4G")?,
            false,
        )?;
        if size == 0 {
            return Err(ConfigError::new(format!(
                "{option} {id}: size must be greater than 0"
            )));
        }
        let share = props.flag(option, "share")?.unwrap_or(false);
        let prealloc = props.flag(option, "prealloc")?.unwrap_or(false);
        let kind = if file {
            let mem_path = require(option, props, "mem-path", "the backing file or /dev/daxX.Y")?;
            if mem_path.is_empty() {
                return Err(ConfigError::new(format!(
                    "{option} {id}: mem-path is empty"
                )));
            }
            let align = props
                .get("align")
                .map(|v| size_prop(option, "align", v, false))
                .transpose()?;
            if let Some(a) = align
                && (!a.is_power_of_two() || a < 4096)
            {
                return Err(ConfigError::new(format!(
                    "{option} {id}: alignment {a:#x} must be a power of two and a multiple of the page size 0x1000"
                )));
            }
            BackendKind::File {
                mem_path: PathBuf::from(mem_path),
                align,
                pmem: props.flag(option, "pmem")?.unwrap_or(false),
                readonly: props.flag(option, "readonly")?.unwrap_or(false),
                discard_data: props.flag(option, "discard-data")?.unwrap_or(false),
            }
        } else {
            BackendKind::Ram
        };
        Ok(BackendConfig {
            id: id.to_string(),
            size,
            share,
            prealloc,
            kind,
        })
    }

    /// The backend's alignment: `align=`, else 2 MiB for RAM (QEMU's on x86_64 Linux), else the
    /// 4 KiB page.
    pub fn align(&self) -> u64 {
        match &self.kind {
            BackendKind::File { align: Some(a), .. } => *a,
            BackendKind::File { .. } => 4096,
            BackendKind::Ram => 2 << 20,
        }
    }
}

/// `-device nvdimm`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NvdimmConfig {
    pub id: Option<String>,
    pub memdev: String,
    /// `label-size=`: bytes at the end of the backend holding namespace labels (0 = none).
    pub label_size: u64,
    /// `unarmed=on`: the guest must treat the device as read-only.
    pub unarmed: bool,
    pub slot: Option<u32>,
    pub node: u32,
    pub addr: Option<u64>,
    pub uuid: Option<String>,
}

/// `-device pc-dimm`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcDimmConfig {
    pub id: Option<String>,
    pub memdev: String,
    pub slot: Option<u32>,
    pub node: u32,
    pub addr: Option<u64>,
}

/// A memory device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceConfig {
    Nvdimm(NvdimmConfig),
    PcDimm(PcDimmConfig),
}

const NVDIMM_KEYS: &[&str] = &[
    "driver",
    "id",
    "memdev",
    "label-size",
    "unarmed",
    "slot",
    "node",
    "addr",
    "uuid",
];
const DIMM_KEYS: &[&str] = &["driver", "id", "memdev", "slot", "node", "addr"];

fn num_prop(option: &str, key: &str, v: &str) -> Result<u64, ConfigError> {
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse::<u64>(),
    };
    parsed.map_err(|_| {
        ConfigError::new(format!(
            "{option}: parameter '{key}' expects a number, got '{v}'"
        ))
    })
}

fn u32_prop(option: &str, key: &str, v: &str) -> Result<u32, ConfigError> {
    let n = num_prop(option, key, v)?;
    u32::try_from(n).map_err(|_| {
        ConfigError::new(format!(
            "{option}: parameter '{key}' value {v} is too large"
        ))
    })
}

impl DeviceConfig {
    /// Builds a device from `-device`/`device_add` properties; `driver` is the device type.
    pub fn from_props(driver: &str, props: &Props) -> Result<Self, ConfigError> {
        let option = "-device";
        let keys = match driver {
            "nvdimm" => NVDIMM_KEYS,
            "pc-dimm" => DIMM_KEYS,
            other => {
                return Err(ConfigError::new(format!(
                    "{option}: device '{other}' is not supported by pmvm (supported: nvdimm, pc-dimm)"
                )));
            }
        };
        if let Some(k) = props.unknown(keys) {
            return Err(ConfigError::new(format!(
                "{option} {driver}: property '{k}' not found"
            )));
        }
        let id = props.get("id").map(str::to_string);
        if let Some(id) = &id {
            valid_id(option, id)?;
        }
        let memdev = require(
            option,
            props,
            "memdev",
            "name the backend: memdev=<-object id>",
        )?
        .to_string();
        let slot = props
            .get("slot")
            .map(|v| u32_prop(option, "slot", v))
            .transpose()?;
        let node = props
            .get("node")
            .map(|v| u32_prop(option, "node", v))
            .transpose()?
            .unwrap_or(0);
        let addr = props
            .get("addr")
            .map(|v| num_prop(option, "addr", v))
            .transpose()?;
        if driver == "pc-dimm" {
            return Ok(DeviceConfig::PcDimm(PcDimmConfig {
                id,
                memdev,
                slot,
                node,
                addr,
            }));
        }
        let label_size = props
            .get("label-size")
            .map(|v| size_prop(option, "label-size", v, false))
            .transpose()?;
        if let Some(l) = label_size
            && l < 128 << 10
        {
            return Err(ConfigError::new(format!(
                "Property 'nvdimm.label-size' ({l:#x}) is required at least 0x20000: use label-size=128K or more"
            )));
        }
        Ok(DeviceConfig::Nvdimm(NvdimmConfig {
            id,
            memdev,
            label_size: label_size.unwrap_or(0),
            unarmed: props.flag(option, "unarmed")?.unwrap_or(false),
            slot,
            node,
            addr,
            uuid: props.get("uuid").map(str::to_string),
        }))
    }

    /// The device id, if any.
    pub fn id(&self) -> Option<&str> {
        match self {
            DeviceConfig::Nvdimm(d) => d.id.as_deref(),
            DeviceConfig::PcDimm(d) => d.id.as_deref(),
        }
    }

    /// The backend id.
    pub fn memdev(&self) -> &str {
        match self {
            DeviceConfig::Nvdimm(d) => &d.memdev,
            DeviceConfig::PcDimm(d) => &d.memdev,
        }
    }
}
