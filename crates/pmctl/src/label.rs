//! `pmctl label ...`: the namespace label storage area of a backend file.
//!
//! QEMU and pmvm keep the label area in the LAST `label-size` bytes of the
//! NVDIMM backend; the guest's data lives in front of it. All format logic is
//! in the `nvlabel` crate; this module only does file I/O and presentation.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use nvlabel::guid::ClaimClass;
use nvlabel::{AreaState, CheckOptions, InterleaveSetInfo, JsonStyle, LabelVersion, Severity};
use pmem_layout::Suffix;

use crate::{EXIT_OK, EXIT_PROBLEMS};

/// `pmctl label` subcommands.
#[derive(Debug, Subcommand)]
pub enum LabelCommand {
    /// Show the label area: index blocks and active labels (or ndctl read-labels JSON).
    Show(ShowArgs),
    /// Write empty index blocks like `ndctl init-labels` (refuses to overwrite anything).
    Init(InitArgs),
    /// Check index blocks and labels; exit 1 when an error is found.
    Check(CheckArgs),
}

/// Which file and where its label area is.
#[derive(Debug, Args)]
pub struct AreaArgs {
    /// NVDIMM backend file (memory-backend-file mem-path); the label area is its last --label-size bytes.
    pub file: PathBuf,
    /// Label area size, as given to `-device nvdimm,label-size=` (QEMU size syntax, minimum 128K).
    #[arg(long, default_value = "128K", value_parser = parse_label_size)]
    pub label_size: u64,
}

/// Arguments of `label show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    area: AreaArgs,
    /// Print `ndctl read-labels -j` JSON (an array with one DIMM).
    #[arg(long)]
    json: bool,
    /// Print `ndctl read-labels -u` JSON (hex strings, human sizes); implies --json.
    #[arg(long, short = 'u')]
    human: bool,
    /// Device name to put in the JSON "dev" field.
    #[arg(long, default_value = "nmem0")]
    dev: String,
}

/// Arguments of `label init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    area: AreaArgs,
    /// Label format: 1.1 (128-byte labels, ndctl's default) or 1.2 (256-byte labels, what Linux writes itself).
    #[arg(long = "version", value_name = "1.1|1.2", default_value = "1.1")]
    label_version: LabelVersion,
    /// Overwrite an existing index (destroys all namespaces) or non-label data.
    #[arg(long, short = 'f')]
    force: bool,
}

/// Arguments of `label check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    area: AreaArgs,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// NVDIMM serial number (as in the NFIT) to verify label interleave-set cookies against.
    #[arg(long, value_parser = parse_u32, conflicts_with = "slot")]
    serial: Option<u32>,
    /// QEMU/pmvm NVDIMM slot: same as --serial 0x123456+SLOT.
    #[arg(long)]
    slot: Option<u32>,
}

/// Failures of label commands (all exit with status 2).
#[derive(Debug, thiserror::Error)]
pub enum LabelCmdError {
    /// I/O on the backend file failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// File shorter than the label area.
    #[error(
        "{path} is {len} bytes, smaller than --label-size {label}; check the file and the label-size the VM uses"
    )]
    FileTooSmall {
        /// File.
        path: PathBuf,
        /// File length.
        len: u64,
        /// Label size.
        label: u64,
    },
    /// `init` without --force on an initialised area.
    #[error(
        "refusing to initialise {path}: its label area already holds a valid v{version} namespace index with {active} active label(s); re-run with --force to destroy all namespaces"
    )]
    AlreadyInitialised {
        /// File.
        path: PathBuf,
        /// Version found.
        version: LabelVersion,
        /// Active labels.
        active: usize,
    },
    /// `init` without --force over non-label data.
    #[error(
        "refusing to initialise {path}: its last {label} bytes hold data that is not labels (likely guest data written while the NVDIMM had no label-size); labels would overwrite it. Re-run with --force only if that data is disposable"
    )]
    ForeignData {
        /// File.
        path: PathBuf,
        /// Label size.
        label: u64,
    },
    /// The label library refused.
    #[error(transparent)]
    Label(#[from] nvlabel::WriteError),
    /// JSON rendering failed.
    #[error("cannot render JSON: {0}")]
    Json(String),
}

fn parse_label_size(s: &str) -> Result<u64, String> {
    let v = pmem_layout::parse_size(s, Suffix::B).map_err(|e| e.to_string())?;
    pmem_layout::check_label_size_property(v).map_err(|e| e.to_string())?;
    Ok(v)
}

fn parse_u32(s: &str) -> Result<u32, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("{s:?} is not a 32-bit number (decimal or 0x hex)"))
}

/// Run one `pmctl label` command; returns the exit status.
pub fn run(cmd: LabelCommand) -> Result<u8, LabelCmdError> {
    match cmd {
        LabelCommand::Show(a) => show(&a),
        LabelCommand::Init(a) => init(&a),
        LabelCommand::Check(a) => check(&a),
    }
}

/// Label area of a file: its bytes and where they start.
struct Area {
    bytes: Vec<u8>,
    offset: u64,
    file_len: u64,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LabelCmdError + use<> {
    let path = path.to_owned();
    move |source| LabelCmdError::Io { op, path, source }
}

fn open_area(file: &mut File, args: &AreaArgs) -> Result<Area, LabelCmdError> {
    let path = &args.file;
    let file_len = file.metadata().map_err(io_err("stat", path))?.len();
    if file_len < args.label_size {
        return Err(LabelCmdError::FileTooSmall {
            path: path.clone(),
            len: file_len,
            label: args.label_size,
        });
    }
    let offset = file_len - args.label_size;
    let len = usize::try_from(args.label_size).map_err(|_| LabelCmdError::FileTooSmall {
        path: path.clone(),
        len: file_len,
        label: args.label_size,
    })?;
    let mut bytes = vec![0u8; len];
    file.seek(SeekFrom::Start(offset))
        .map_err(io_err("seek in", path))?;
    file.read_exact(&mut bytes).map_err(io_err("read", path))?;
    Ok(Area {
        bytes,
        offset,
        file_len,
    })
}

fn read_area(args: &AreaArgs) -> Result<Area, LabelCmdError> {
    let mut f = File::open(&args.file).map_err(io_err("open", &args.file))?;
    open_area(&mut f, args)
}

fn show(a: &ShowArgs) -> Result<u8, LabelCmdError> {
    let area = read_area(&a.area)?;
    if a.json || a.human {
        let style = if a.human {
            JsonStyle::Human
        } else {
            JsonStyle::Plain
        };
        let j = nvlabel::read_labels_json(&area.bytes, &a.dev, style)
            .map_err(|e| LabelCmdError::Json(e.to_string()))?;
        // ndctl prints one DIMM as a bare object only when stdout is a terminal.
        let terminal = std::io::stdout().is_terminal();
        println!("{}", nvlabel::to_ndctl_string(&[j], terminal));
        return Ok(EXIT_OK);
    }
    println!(
        "{}: label area of {} bytes at offset {:#x} (file {} bytes)",
        a.area.file.display(),
        area.bytes.len(),
        area.offset,
        area.file_len
    );
    match nvlabel::parse(&area.bytes) {
        Ok(p) => {
            let h = &p.current_index.header;
            println!(
                "format v{}: {} slots of {} bytes, index block {} current (seq {}), {} label(s), {} slot(s) available",
                p.version,
                h.nslot,
                p.geometry.label_size,
                p.current,
                h.seq,
                p.labels.len(),
                p.available_slots()
            );
            if !p.labels.is_empty() {
                println!(
                    "{:>5}  {:<36}  {:<8}  {:>18}  {:>18}  {:>18}  name",
                    "slot", "uuid", "mode", "dpa", "rawsize", "isetcookie"
                );
            }
            for l in &p.labels {
                let mode = match (p.version, ClaimClass::from_guid(&l.label.abstraction_guid)) {
                    (LabelVersion::V1_1, _)
                        if l.label.flags & nvlabel::label::NSLABEL_FLAG_BTT != 0 =>
                    {
                        "sector"
                    }
                    (LabelVersion::V1_1, _) | (_, ClaimClass::None) => "raw",
                    (_, ClaimClass::Btt | ClaimClass::Btt2) => "sector",
                    (_, ClaimClass::Pfn) => "fsdax",
                    (_, ClaimClass::Dax) => "devdax",
                    (_, ClaimClass::Unknown) => "unknown",
                };
                println!(
                    "{:>5}  {:<36}  {:<8}  {:>#18x}  {:>#18x}  {:>#18x}  {}",
                    l.slot,
                    nvlabel::format_uuid(&l.label.uuid),
                    mode,
                    l.label.dpa,
                    l.label.rawsize,
                    l.label.isetcookie,
                    l.label.name_str()
                );
            }
            if !p.rejected.is_empty() {
                println!(
                    "{} in-use slot(s) hold labels Linux ignores; run `pmctl label check`",
                    p.rejected.len()
                );
            }
        }
        Err(_) => match nvlabel::classify(&area.bytes) {
            AreaState::Blank => {
                println!("blank (all zero): no labels; a guest sees one label-less namespace")
            }
            _ => println!(
                "no valid namespace index: not a label area (or damaged); run `pmctl label check`"
            ),
        },
    }
    Ok(EXIT_OK)
}

fn init(a: &InitArgs) -> Result<u8, LabelCmdError> {
    let path = &a.area.file;
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err("open", path))?;
    let mut area = open_area(&mut f, &a.area)?;
    match nvlabel::classify(&area.bytes) {
        AreaState::Labels {
            version, active, ..
        } if !a.force => {
            return Err(LabelCmdError::AlreadyInitialised {
                path: path.clone(),
                version,
                active,
            });
        }
        AreaState::Foreign if !a.force => {
            return Err(LabelCmdError::ForeignData {
                path: path.clone(),
                label: a.area.label_size,
            });
        }
        _ => {}
    }
    let nslot = nvlabel::init(&mut area.bytes, a.label_version)?;
    // init only rewrites the two index blocks; write back just those bytes.
    let geo = nvlabel::geometry(area.bytes.len() as u64, a.label_version.label_size() as u64)
        .ok_or(nvlabel::WriteError::TooSmall {
            size: area.bytes.len(),
            version: a.label_version,
        })?;
    let end = usize::try_from(geo.label_offset)
        .unwrap_or(area.bytes.len())
        .min(area.bytes.len());
    f.seek(SeekFrom::Start(area.offset))
        .map_err(io_err("seek in", path))?;
    f.write_all(&area.bytes[..end])
        .map_err(io_err("write", path))?;
    f.sync_all().map_err(io_err("sync", path))?;
    println!(
        "{}: initialised v{} label area: {} slots, {} available",
        path.display(),
        a.label_version,
        nslot,
        nslot.saturating_sub(1)
    );
    Ok(EXIT_OK)
}

fn check(a: &CheckArgs) -> Result<u8, LabelCmdError> {
    let area = read_area(&a.area)?;
    let serial = a.serial.or(a
        .slot
        .map(|s| nvlabel::cookie::QEMU_SERIAL_BASE.wrapping_add(s)));
    // The DPA space is the pmem part in front of the label area (QEMU aligns it
    // down to the backend alignment; 4 KiB is the smallest, so this is an upper bound).
    let dimm_size = pmem_layout::nvdimm_split(area.file_len, a.area.label_size, 4096)
        .map(|s| s.pmem_size)
        .unwrap_or(area.offset);
    let opts = CheckOptions {
        dimm_size: Some(dimm_size),
        interleave_set: serial.map(InterleaveSetInfo::qemu),
    };
    let report = nvlabel::check(&area.bytes, &opts);
    if a.json {
        let text = serde_json::to_string_pretty(&report.to_json())
            .map_err(|e| LabelCmdError::Json(e.to_string()))?;
        println!("{text}");
    } else {
        for p in &report.problems {
            let sev = match p.severity() {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            println!("{}: {sev}: {p} [{}]", a.area.file.display(), p.code());
        }
        if report.is_ok() {
            println!(
                "{}: label area OK: v{}, {} active label(s){}",
                a.area.file.display(),
                report
                    .version
                    .map_or_else(|| "?".to_string(), |v| v.to_string()),
                report.active_labels,
                if report.warnings() > 0 {
                    format!(", {} warning(s)", report.warnings())
                } else {
                    String::new()
                }
            );
        } else {
            println!(
                "{}: {} error(s), {} warning(s)",
                a.area.file.display(),
                report.errors(),
                report.warnings()
            );
        }
    }
    Ok(if report.is_ok() {
        EXIT_OK
    } else {
        EXIT_PROBLEMS
    })
}
