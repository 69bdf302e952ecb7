//! `pmctl host ...`: the host's NVDIMM namespaces and regions, read from sysfs
//! (see [`sysfs`] for how kernel attributes map to ndctl's names), plus which
//! running VMMs use each device ([`inuse`]). [`lookup`] maps a path to the
//! namespace behind it for `pmctl size` and `pmctl probe`.

pub mod inuse;
pub mod lookup;
pub mod sysfs;

#[cfg(test)]
mod props;

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use pmem_layout::format_size_arg;
use serde::Serialize;

use crate::{EXIT_ERROR, EXIT_OK};

/// Default sysfs mount point.
pub const SYSFS: &str = "/sys";
/// Default procfs mount point.
pub const PROC: &str = "/proc";

/// `pmctl host` subcommands.
#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// List host NVDIMM namespaces (mode, device, size, align, NUMA node, region, users) from sysfs.
    Nvdimms(NvdimmsArgs),
}

/// Arguments of `host nvdimms`.
#[derive(Debug, Args)]
pub struct NvdimmsArgs {
    /// Print JSON: {"namespaces":[...],"regions":[...]}.
    #[arg(long)]
    pub json: bool,
    /// Read sysfs from this directory instead of /sys (for tests and offline inspection).
    #[arg(long, value_name = "DIR", default_value = SYSFS)]
    pub sysfs_root: PathBuf,
    /// Read processes from this directory instead of /proc ("in use by").
    #[arg(long, value_name = "DIR", default_value = PROC, hide = true)]
    pub proc_root: PathBuf,
}

/// A namespace with its users, as printed.
#[derive(Debug, Serialize)]
struct Entry<'a> {
    #[serde(flatten)]
    ns: &'a sysfs::Namespace,
    in_use_by: Vec<inuse::User>,
}

#[derive(Debug, Serialize)]
struct Listing<'a> {
    namespaces: Vec<Entry<'a>>,
    regions: &'a [sysfs::Region],
}

/// Run a `pmctl host` command, print errors; returns the exit status.
pub fn main(cmd: HostCommand) -> u8 {
    match cmd {
        HostCommand::Nvdimms(a) => match nvdimms(&a) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("pmctl: {e}");
                EXIT_ERROR
            }
        },
    }
}

fn opt_size(v: Option<u64>) -> String {
    v.map(format_size_arg).unwrap_or_else(|| "-".into())
}

fn nvdimms(a: &NvdimmsArgs) -> Result<u8, Box<dyn std::error::Error>> {
    let host = sysfs::discover(&a.sysfs_root)?;
    let procs = inuse::vmm_processes(&a.proc_root);
    let entries: Vec<Entry<'_>> = host
        .namespaces
        .iter()
        .map(|ns| Entry {
            ns,
            in_use_by: ns
                .device
                .as_deref()
                .map(|d| inuse::users_of(&procs, d))
                .unwrap_or_default(),
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if a.json {
        let l = Listing {
            namespaces: entries,
            regions: &host.regions,
        };
        serde_json::to_writer_pretty(&mut out, &l)?;
        writeln!(out)?;
        return Ok(EXIT_OK);
    }
    if host.namespaces.is_empty() && host.regions.is_empty() {
        writeln!(
            out,
            "no NVDIMM regions under {} (no NVDIMMs, or the nfit/libnvdimm modules are not loaded)",
            a.sysfs_root.join(sysfs::ND_DEVICES).display()
        )?;
        return Ok(EXIT_OK);
    }
    let rows: Vec<[String; 9]> = entries
        .iter()
        .map(|e| {
            let n = e.ns;
            let users: Vec<String> = e.in_use_by.iter().map(|u| u.to_string()).collect();
            [
                n.dev.clone(),
                n.mode.as_str().to_owned(),
                n.device
                    .as_deref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_else(|| n.state.into()),
                opt_size(n.size),
                opt_size(n.align),
                n.numa_node.to_string(),
                n.region.dev.clone(),
                n.region.persistence_domain.clone(),
                if users.is_empty() {
                    "-".into()
                } else {
                    users.join(",")
                },
            ]
        })
        .collect();
    let head = [
        "NAMESPACE",
        "MODE",
        "DEVICE",
        "SIZE",
        "ALIGN",
        "NUMA",
        "REGION",
        "PERSISTENCE",
        "IN USE BY",
    ];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |out: &mut dyn Write, cells: &[&str]| -> std::io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(&mut out, &head)?;
    for r in &rows {
        line(&mut out, &r.iter().map(String::as_str).collect::<Vec<_>>())?;
    }
    for r in &host.regions {
        writeln!(
            out,
            "{}: size {}, align {}, available {}, persistence_domain {}, iset_id {}, numa_node {}{}",
            r.dev,
            opt_size(r.size),
            opt_size(r.align),
            opt_size(r.available_size),
            r.persistence_domain,
            r.iset_id
                .map(|c| format!("{c:#x}"))
                .unwrap_or_else(|| "-".into()),
            r.numa_node,
            if r.enabled { "" } else { " (disabled)" }
        )?;
    }
    Ok(EXIT_OK)
}

/// Discover, for `size`/`probe`: the namespace behind `path` and its region's
/// persistence domain. Discovery problems only lose the extra information.
pub fn namespace_for(root: &Path, t: &lookup::Target) -> Option<sysfs::Namespace> {
    let host = sysfs::discover(root).ok()?;
    lookup::namespace_of(&host, t).cloned()
}
