//! `pmctl size DEVICE_OR_FILE`: the exact guest NVDIMM for a host device and
//! the pmvm/QEMU arguments that give it.
//!
//! Inputs: the device's usable size and alignment (ndctl `size`/`align`, read
//! from sysfs), a regular file's length (alignment from the namespace its
//! filesystem is on, else 2 MiB), or a namespace name. The arithmetic is
//! `pmem_layout::guest_nvdimm_size` (oVirt's formula, shared with pmvm) and
//! the arguments come from `pmem_layout::nvdimm_cli_args`, so the manager and
//! the VMM can never disagree about where the label area is.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use pmem_layout::{
    GuestSizing, MIB, NvdimmArgsSpec, Suffix, format_size, guest_nvdimm_size, nvdimm_cli_args,
};
use serde::Serialize;

use crate::host::lookup::{self, Target};
use crate::host::{self, sysfs};
use crate::{EXIT_ERROR, EXIT_OK};

/// Alignment assumed for a file on a DAX filesystem when no namespace says otherwise
/// (ndctl's default fsdax/devdax alignment).
pub const DAX_FILE_DEFAULT_ALIGN: u64 = 2 * MIB;

/// Arguments of `pmctl size`.
#[derive(Debug, Args)]
pub struct SizeArgs {
    /// /dev/daxX.Y, /dev/pmemX[.Y][s], a backend file, or a namespace name (namespace0.0).
    pub target: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Device id for -device nvdimm,id= (the backend gets mem<ID>).
    #[arg(long, default_value = "nvdimm0")]
    pub id: String,
    /// Fixed slot (keeps the NFIT handle and serial stable across restarts).
    #[arg(long)]
    pub slot: Option<u32>,
    /// Guest NUMA node (-device nvdimm,node=).
    #[arg(long)]
    pub node: Option<u32>,
    /// Override the alignment (QEMU size syntax, e.g. 2M, 1G).
    #[arg(long, value_parser = parse_align)]
    pub align: Option<u64>,
    /// Read sysfs from this directory instead of /sys.
    #[arg(long, value_name = "DIR", default_value = host::SYSFS)]
    pub sysfs_root: PathBuf,
}

fn parse_align(s: &str) -> Result<u64, String> {
    let v = pmem_layout::parse_size(s, Suffix::B).map_err(|e| e.to_string())?;
    if v == 0 || !v.is_power_of_two() {
        return Err(format!(
            "--align {s}: must be a power of two such as 2M or 1G"
        ));
    }
    Ok(v)
}

/// Failures of `pmctl size` (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum SizeError {
    /// Path problems.
    #[error(transparent)]
    Lookup(#[from] lookup::LookupError),
    /// Sysfs does not say how big the device is.
    #[error("cannot read the size of {0} from sysfs; is it a pmem/dax device (ndctl list -N)?")]
    UnknownSize(String),
    /// No such namespace.
    #[error("no namespace {0} with a size under {1}; see pmctl host nvdimms")]
    NoNamespace(String, PathBuf),
    /// Namespace without a device node (disabled).
    #[error("{0} is disabled (no device node); enable it with ndctl enable-namespace {0}")]
    Disabled(String),
    /// Sizing refused (too small, bad alignment, bad id).
    #[error("{target}: {source}")]
    Sizing {
        /// What was being sized.
        target: String,
        /// Cause.
        source: pmem_layout::SizingError,
    },
    /// Output.
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
    /// JSON.
    #[error("cannot render JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// What is being sized: a host device or file as `pmctl size` and `pmctl vm attach` see it.
#[derive(Debug, Clone, Serialize)]
pub struct Device {
    /// Canonical path (symlinks resolved when possible).
    pub path: PathBuf,
    /// `device-dax`, `block`, `file`.
    pub kind: &'static str,
    /// The host namespace (`namespace0.0`) behind it, if known.
    pub namespace: Option<String>,
    /// That namespace's mode (ndctl name).
    pub mode: Option<&'static str>,
    /// Usable size in bytes.
    pub size: u64,
    /// The alignment used (None: the 128 MiB default of the sizing formula).
    pub align: Option<u64>,
    /// Where the alignment came from (`device`, `namespace`, `default`, `option`).
    pub align_source: &'static str,
    /// The region's persistence domain, if known.
    pub persistence_domain: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    device: &'a Device,
    backend_size: u64,
    pmem_size: u64,
    label_offset: u64,
    label_size: u64,
    gap: u64,
    unused_tail: u64,
    warnings: &'a [String],
    crash_persistent: Option<bool>,
    persistence: Option<String>,
    object: String,
    device_arg: String,
    args: [String; 4],
}

/// Run `pmctl size`, print errors; returns the exit status.
pub fn main(a: SizeArgs) -> u8 {
    match run(&a) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pmctl: {e}");
            EXIT_ERROR
        }
    }
}

fn namespace_device(ns: &sysfs::Namespace, size: Option<u64>) -> Result<Device, SizeError> {
    let path = ns
        .device
        .clone()
        .ok_or_else(|| SizeError::Disabled(ns.dev.clone()))?;
    let size = size
        .or(ns.size)
        .ok_or_else(|| SizeError::UnknownSize(ns.dev.clone()))?;
    Ok(Device {
        kind: if ns.mode == sysfs::Mode::Devdax {
            "device-dax"
        } else {
            "block"
        },
        path,
        namespace: Some(ns.dev.clone()),
        mode: Some(ns.mode.as_str()),
        size,
        align: ns.align,
        align_source: if ns.align.is_some() {
            "namespace"
        } else {
            "default"
        },
        persistence_domain: Some(ns.region.persistence_domain.clone()),
    })
}

/// Resolve a `pmctl size` target (path or namespace name) to the device and
/// its size/alignment, reading sysfs under `root`.
pub fn resolve(root: &Path, target: &str) -> Result<Device, SizeError> {
    if sysfs::dev_numbers(target, "namespace").is_some() && !Path::new(target).exists() {
        let host = sysfs::discover(root)
            .map_err(|_| SizeError::NoNamespace(target.to_owned(), root.to_owned()))?;
        let ns = lookup::namespace_by_name(&host, target)
            .ok_or_else(|| SizeError::NoNamespace(target.to_owned(), root.to_owned()))?;
        return namespace_device(ns, None);
    }
    let given = PathBuf::from(target);
    let t = lookup::classify(root, &given)?;
    let path = std::fs::canonicalize(&given).unwrap_or(given);
    let ns = host::namespace_for(root, &t);
    let pd = ns.as_ref().map(|n| n.region.persistence_domain.clone());
    let nsname = ns.as_ref().map(|n| n.dev.clone());
    let mode = ns.as_ref().map(|n| n.mode.as_str());
    Ok(match &t {
        Target::DaxChar { name, sysdir } => {
            let size = sysfs::attr_u64(sysdir, "size")
                .or(ns.as_ref().and_then(|n| n.size))
                .ok_or_else(|| SizeError::UnknownSize(name.clone()))?;
            let (align, src) = match sysfs::attr_u64(sysdir, "align").filter(|&x| x > 0) {
                Some(x) => (Some(x), "device"),
                None => (ns.as_ref().and_then(|n| n.align), "namespace"),
            };
            Device {
                path,
                kind: "device-dax",
                namespace: nsname,
                mode,
                size,
                align,
                align_source: src,
                persistence_domain: pd,
            }
        }
        Target::Block(b) => {
            // A whole namespace disk: ndctl's size; a partition: its own size.
            let size = match (&ns, &b.partition) {
                (Some(n), None) => n.size.or(b.size),
                _ => b.size,
            }
            .ok_or_else(|| SizeError::UnknownSize(b.disk.clone()))?;
            let align = ns.as_ref().and_then(|n| n.align);
            let src = if align.is_some() {
                "namespace"
            } else {
                "default"
            };
            Device {
                path,
                kind: "block",
                namespace: nsname,
                mode,
                size,
                align,
                align_source: src,
                persistence_domain: pd,
            }
        }
        Target::File { len, .. } => {
            let (align, src) = match ns.as_ref().and_then(|n| n.align) {
                Some(x) => (Some(x), "namespace"),
                None => (Some(DAX_FILE_DEFAULT_ALIGN), "default"),
            };
            Device {
                path,
                kind: "file",
                namespace: nsname,
                mode,
                size: *len,
                align,
                align_source: src,
                persistence_domain: pd,
            }
        }
    })
}

fn run(a: &SizeArgs) -> Result<u8, SizeError> {
    let mut dev = resolve(&a.sysfs_root, &a.target)?;
    if let Some(x) = a.align {
        dev.align = Some(x);
        dev.align_source = "option";
    }
    let shown = dev.path.display().to_string();
    let sizing: GuestSizing =
        guest_nvdimm_size(dev.size, dev.align).map_err(|source| SizeError::Sizing {
            target: shown.clone(),
            source,
        })?;
    // pmem=on only where MAP_SYNC can work (device DAX, DAX files): on other
    // backends QEMU warns that persistence is not guaranteed.
    // A namespace given by name may have no node here (e.g. --sysfs-root fixtures).
    let probe = if dev.path.exists() {
        pmem_probe::probe_path(&dev.path).ok()
    } else {
        None
    };
    let persistent = probe.as_ref().map(|p| p.crash_persistent);
    let mut spec = NvdimmArgsSpec::new(&a.id, &shown);
    spec.pmem = persistent.unwrap_or(dev.kind == "device-dax");
    spec.slot = a.slot;
    spec.node = a.node;
    let args = nvdimm_cli_args(&spec, &sizing).map_err(|source| SizeError::Sizing {
        target: shown.clone(),
        source,
    })?;
    let report = Report {
        device: &dev,
        backend_size: sizing.backend_size,
        pmem_size: sizing.pmem_size,
        label_offset: sizing.label_offset,
        label_size: sizing.label_size,
        gap: sizing.gap,
        unused_tail: sizing.unused_tail,
        warnings: &sizing.warnings,
        crash_persistent: persistent,
        persistence: probe.map(|p| p.explanation),
        args: [
            "-object".into(),
            args.object.clone(),
            "-device".into(),
            args.device.clone(),
        ],
        object: args.object,
        device_arg: args.device,
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        return Ok(EXIT_OK);
    }
    print_text(&mut out, &report, &sizing)?;
    Ok(EXIT_OK)
}

fn bytes(v: u64) -> String {
    format!("{} ({v} bytes)", format_size(v))
}

fn print_text(out: &mut dyn Write, r: &Report<'_>, g: &GuestSizing) -> std::io::Result<()> {
    let d = r.device;
    let what = match (d.kind, &d.namespace, d.mode) {
        (k, Some(ns), Some(m)) => format!("{k}, {ns} ({m})"),
        (k, _, _) => k.to_owned(),
    };
    writeln!(out, "{}: {what}", d.path.display())?;
    writeln!(out, "  host size     {}", bytes(d.size))?;
    writeln!(
        out,
        "  align         {} ({})",
        format_size(g.align),
        d.align_source
    )?;
    writeln!(
        out,
        "  backend size  {}  (memory-backend-file size=)",
        bytes(g.backend_size)
    )?;
    writeln!(
        out,
        "  guest pmem    {}  ({} x 128 MiB blocks)",
        bytes(g.pmem_size),
        g.pmem_size / (128 * MIB)
    )?;
    writeln!(
        out,
        "  label area    {} at offset {}",
        format_size(g.label_size),
        g.label_offset
    )?;
    writeln!(
        out,
        "  unused        {} between pmem and label, {} of the device never mapped",
        format_size(g.gap),
        format_size(g.unused_tail)
    )?;
    if let Some(pd) = &d.persistence_domain {
        writeln!(out, "  region persistence_domain {pd}")?;
    }
    if let Some(p) = &r.persistence {
        writeln!(out, "  persistence   {p}")?;
    }
    for w in r.warnings {
        writeln!(out, "  warning: {w}")?;
    }
    writeln!(out, "pmvm arguments:")?;
    writeln!(out, "  -object {}", r.object)?;
    writeln!(out, "  -device {}", r.device_arg)?;
    Ok(())
}
