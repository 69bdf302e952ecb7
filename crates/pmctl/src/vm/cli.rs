//! The `pmctl vm` command line and its text/JSON output.
//!
//! Exit status: 0 ok; 1 refused by a constraint (device already assigned or
//! in use, VM running, device changed, pmvm would refuse the layout) and, for
//! `vm status`, "not running"; 2 usage, not found, or I/O error.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use pmem_layout::format_size;
use serde::Serialize;

use super::error::{ErrorKind, VmError};
use super::ops::{CreateSpec, Manager, VmView};
use super::state::DEFAULT_STATE_DIR;
use crate::{EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS, host};

/// Options shared by `pmctl vm` and `pmctl serve`.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Directory of VM definitions, pidfiles, QMP sockets and consoles.
    #[arg(long, global = true, value_name = "DIR", env = "PMCTL_STATE_DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// The pmvm binary (default: env PMVM, next to pmctl, then PATH).
    #[arg(long, global = true, value_name = "PATH")]
    pub pmvm: Option<PathBuf>,
    /// Read sysfs from this directory instead of /sys.
    #[arg(long, global = true, value_name = "DIR", default_value = host::SYSFS, hide = true)]
    pub sysfs_root: PathBuf,
    /// Read processes from this directory instead of /proc.
    #[arg(long, global = true, value_name = "DIR", default_value = host::PROC, hide = true)]
    pub proc_root: PathBuf,
}

impl CommonArgs {
    /// The manager these options describe.
    pub fn manager(&self) -> Manager {
        let mut m = Manager::new(&self.state_dir);
        m.pmvm = self.pmvm.clone();
        m.sysfs_root = self.sysfs_root.clone();
        m.proc_root = self.proc_root.clone();
        m
    }
}

/// `pmctl vm`.
#[derive(Debug, Args)]
pub struct VmArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    cmd: VmCommand,
}

/// `pmctl vm` subcommands.
#[derive(Debug, Subcommand)]
enum VmCommand {
    /// Define a VM.
    Create {
        #[command(flatten)]
        spec: CreateSpec,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List VMs.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a VM, its NVDIMMs, their sizes, slots and guest addresses.
    Show {
        /// VM name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a stopped VM's definition.
    Delete {
        /// VM name.
        name: String,
    },
    /// Assign a host NVDIMM (/dev/daxX.Y, /dev/pmemX, or a sized file) to a VM; a running VM
    /// gets it at once (hotplug) if it was created with --hotplug-room.
    Attach {
        /// VM name.
        name: String,
        /// Host device or file.
        path: PathBuf,
        /// Only compute and print the guest sizing; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove an NVDIMM from a stopped VM (NVDIMMs cannot be unplugged, as in QEMU).
    Detach {
        /// VM name.
        name: String,
        /// Host device or file.
        path: PathBuf,
    },
    /// Print the exact pmvm command line (one argument per line).
    Args {
        /// VM name.
        name: String,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Start the VM (pmvm -daemonize; QMP socket, pidfile and console in the state directory).
    Start {
        /// VM name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop the VM: QMP system_powerdown, then quit after --timeout (at once with --force).
    Stop {
        /// VM name.
        name: String,
        /// Quit at once (SIGTERM if QMP does not answer).
        #[arg(long)]
        force: bool,
        /// Seconds to wait for the guest to power off.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Print the VM's serial console (the file pmvm writes), the last --bytes of it.
    Console {
        /// VM name.
        name: String,
        /// How much of the end to print.
        #[arg(long, default_value_t = 16384)]
        bytes: u64,
        /// Keep printing what the VM prints until it stops (Ctrl-C to leave).
        #[arg(long, short)]
        follow: bool,
    },
    /// Whether the VM runs (pidfile + QMP query-status); exit 0 running, 1 stopped.
    Status {
        /// VM name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Exit status for an error.
pub fn exit_code(e: &VmError) -> u8 {
    match e.kind() {
        ErrorKind::Conflict => EXIT_PROBLEMS,
        _ if matches!(e, VmError::Layout(_)) => EXIT_PROBLEMS,
        _ => EXIT_ERROR,
    }
}

/// Run `pmctl vm`, print errors; returns the exit status.
pub fn main(a: VmArgs) -> u8 {
    let mut m = a.common.manager();
    if let VmCommand::Stop { timeout, .. } = &a.cmd {
        m.stop_timeout = Duration::from_secs(*timeout);
    }
    match run(&m, a.cmd) {
        Ok(c) => c,
        Err(CliError::Vm(e)) => {
            eprintln!("pmctl: {e}");
            exit_code(&e)
        }
        Err(CliError::Out(e)) => {
            eprintln!("pmctl: cannot write output: {e}");
            EXIT_ERROR
        }
    }
}

enum CliError {
    Vm(VmError),
    Out(std::io::Error),
}

impl From<VmError> for CliError {
    fn from(e: VmError) -> Self {
        CliError::Vm(e)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Out(e)
    }
}

fn json(out: &mut dyn Write, v: &impl Serialize) -> Result<u8, CliError> {
    serde_json::to_writer_pretty(&mut *out, v).map_err(|e| CliError::Out(e.into()))?;
    writeln!(out)?;
    Ok(EXIT_OK)
}

fn hex(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:#x}"))
}

fn print_view(out: &mut dyn Write, v: &VmView) -> std::io::Result<()> {
    let state = match v.pid {
        Some(p) => format!("running (pid {p})"),
        None => "stopped".into(),
    };
    writeln!(out, "{}: {state}", v.name)?;
    writeln!(
        out,
        "  memory {}, cpus {}, slots {}, maxmem {}",
        format_size(v.memory),
        v.cpus,
        v.slots,
        format_size(v.maxmem)
    )?;
    match &v.kernel {
        Some(k) => writeln!(out, "  boot: kernel {}", k.display())?,
        None => writeln!(
            out,
            "  boot: firmware {}, from the disks (vda first)",
            v.bios.as_ref().map_or_else(
                || format!("{} (pmvm's default)", vm_config::DEFAULT_FIRMWARE),
                |b| b.display().to_string()
            )
        )?,
    }
    if let Some(i) = &v.initrd {
        writeln!(out, "  initrd {}", i.display())?;
    }
    if !v.append.is_empty() {
        writeln!(out, "  append {}", v.append)?;
    }
    for n in &v.nvdimms {
        let a = &n.assignment;
        writeln!(
            out,
            "  {} slot {}: {} ({}{}) host {} -> guest pmem {} at {}, label {} at offset {}{}",
            a.id,
            a.slot,
            a.path.display(),
            a.kind,
            a.mode
                .as_deref()
                .map(|m| format!(", {m}"))
                .unwrap_or_default(),
            format_size(a.host_size),
            format_size(a.guest_size),
            hex(n.gpa),
            format_size(a.label_size),
            a.label_offset,
            if a.crash_persistent {
                ""
            } else {
                " [not crash persistent]"
            }
        )?;
    }
    for (i, d) in v.disks.iter().enumerate() {
        // /dev/vda, /dev/vdb, ...: pmvm gives the drives in this order (at most 8).
        let letter = char::from(b'a' + (i as u8).min(25));
        let ro = if d.readonly { " (read-only)" } else { "" };
        writeln!(out, "  disk vd{letter}: {}{ro}", d.path.display())?;
    }
    if let Some(e) = &v.layout_error {
        writeln!(out, "  layout problem: {e}")?;
    }
    Ok(())
}

fn run(m: &Manager, cmd: VmCommand) -> Result<u8, CliError> {
    let mut out = std::io::stdout().lock();
    match cmd {
        VmCommand::Create { spec, json: j } => {
            let v = m.create(spec)?;
            if j {
                return json(&mut out, &v);
            }
            writeln!(
                out,
                "created VM {} ({}, {} vCPU, {} boot)",
                v.name,
                format_size(v.memory),
                v.cpus,
                v.boot
            )?;
        }
        VmCommand::List { json: j } => {
            let l = m.list()?;
            if j {
                return json(&mut out, &l);
            }
            writeln!(
                out,
                "{:<20} {:<20} {:>10} {:>4} {:>7}",
                "NAME", "STATE", "MEMORY", "CPUS", "NVDIMMS"
            )?;
            for v in &l {
                let st = v.pid.map_or("stopped".into(), |p| format!("running ({p})"));
                writeln!(
                    out,
                    "{:<20} {:<20} {:>10} {:>4} {:>7}",
                    v.name,
                    st,
                    format_size(v.memory),
                    v.cpus,
                    v.nvdimms.len()
                )?;
            }
        }
        VmCommand::Show { name, json: j } => {
            let v = m.show(&name)?;
            if j {
                return json(&mut out, &v);
            }
            print_view(&mut out, &v)?;
        }
        VmCommand::Delete { name } => {
            m.delete(&name)?;
            writeln!(out, "deleted VM {name}")?;
        }
        VmCommand::Attach {
            name,
            path,
            dry_run,
            json: j,
        } => {
            let r = m.attach(&name, &path, dry_run)?;
            for w in &r.device.warnings {
                eprintln!("pmctl: warning: {}: {w}", r.assignment.path.display());
            }
            if j {
                return json(&mut out, &r);
            }
            let a = &r.assignment;
            writeln!(
                out,
                "{} {} to {name} as {} (slot {}): guest pmem {} at {}, label area {} at offset {}, backend size {}{}",
                if dry_run { "would attach" } else { "attached" },
                a.path.display(),
                a.id,
                a.slot,
                format_size(a.guest_size),
                hex(r.gpa),
                format_size(a.label_size),
                a.label_offset,
                format_size(a.backend_size),
                match (r.live, dry_run) {
                    (true, false) => "; hot-added to the running VM",
                    (true, true) => "; would be hot-added to the running VM",
                    (false, _) => "",
                }
            )?;
        }
        VmCommand::Detach { name, path } => {
            let a = m.detach(&name, &path)?;
            writeln!(
                out,
                "detached {} from {name} (slot {} is free)",
                a.path.display(),
                a.slot
            )?;
        }
        VmCommand::Args { name, json: j } => {
            let args = m.args(&name)?;
            if j {
                return json(&mut out, &args);
            }
            for a in &args {
                writeln!(out, "{a}")?;
            }
        }
        VmCommand::Start { name, json: j } => {
            let r = m.start(&name)?;
            for w in &r.warnings {
                eprintln!("pmctl: warning: {w}");
            }
            if j {
                return json(&mut out, &r);
            }
            let pid = r.pid.map_or("unknown".into(), |p| p.to_string());
            writeln!(
                out,
                "started {name} (pid {pid}); console: {}",
                r.console.display()
            )?;
        }
        VmCommand::Stop { name, force, .. } => {
            let r = m.stop(&name, force)?;
            writeln!(out, "stopped {name} ({})", r.method)?;
        }
        VmCommand::Console {
            name,
            bytes,
            follow,
        } => {
            let mut v = m.console(&name, None, bytes)?;
            loop {
                out.write_all(v.text.as_bytes())?;
                out.flush()?;
                if !follow || (!v.running && v.text.is_empty()) {
                    return Ok(EXIT_OK);
                }
                std::thread::sleep(Duration::from_millis(250));
                v = m.console(&name, Some(v.size), super::console::MAX_CONSOLE_READ)?;
            }
        }
        VmCommand::Status { name, json: j } => {
            let r = m.status(&name)?;
            let code = if r.running { EXIT_OK } else { EXIT_PROBLEMS };
            if j {
                json(&mut out, &r)?;
                return Ok(code);
            }
            match (r.pid, &r.qmp_status, &r.qmp_error) {
                (Some(p), Some(s), _) => {
                    writeln!(out, "{name}: running (pid {p}, QMP status {s})")?
                }
                (Some(p), None, e) => writeln!(
                    out,
                    "{name}: running (pid {p}, QMP not answering: {})",
                    e.as_deref().unwrap_or("?")
                )?,
                (None, ..) => writeln!(out, "{name}: stopped")?,
            }
            return Ok(code);
        }
    }
    Ok(EXIT_OK)
}
