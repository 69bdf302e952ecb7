//! `pmctl probe PATH`: what persistence a backend gives (pmem_probe, the same
//! probe pmvm runs at start-up), plus the namespace and the region's
//! persistence domain when the path is on a host NVDIMM.
//!
//! Exit status: 0 the backend can give crash persistence (device DAX, or a
//! file on a DAX filesystem where MAP_SYNC works), 1 it cannot (page cache,
//! tmpfs, missing file), 2 error. Scripts can require persistence with
//! `pmctl probe "$path" || exit`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use crate::host::{self, lookup};
use crate::{EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS};

/// Arguments of `pmctl probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Backend: /dev/daxX.Y, a file (existing or to be created), a block device.
    pub path: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Read sysfs from this directory instead of /sys (namespace lookup only).
    #[arg(long, value_name = "DIR", default_value = host::SYSFS)]
    pub sysfs_root: PathBuf,
}

#[derive(Debug, Serialize)]
struct Report {
    #[serde(flatten)]
    probe: pmem_probe::Probe,
    /// The host namespace the backend is (or whose filesystem holds it).
    namespace: Option<String>,
    /// Its mode (ndctl name).
    mode: Option<&'static str>,
    /// The region's persistence domain (`cpu_cache`, `memory_controller`, `unknown`).
    persistence_domain: Option<String>,
}

/// Exit status for a probe answer.
pub fn exit_status(p: &pmem_probe::Probe) -> u8 {
    if p.crash_persistent {
        EXIT_OK
    } else {
        EXIT_PROBLEMS
    }
}

/// Run `pmctl probe`, print errors; returns the exit status.
pub fn main(a: ProbeArgs) -> u8 {
    match run(&a) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pmctl: {}: {e}", a.path.display());
            EXIT_ERROR
        }
    }
}

fn run(a: &ProbeArgs) -> Result<u8, Box<dyn std::error::Error>> {
    let probe = pmem_probe::probe_path(&a.path)?;
    let ns = lookup::classify(&a.sysfs_root, &a.path)
        .ok()
        .and_then(|t| host::namespace_for(&a.sysfs_root, &t));
    let code = exit_status(&probe);
    let r = Report {
        probe,
        namespace: ns.as_ref().map(|n| n.dev.clone()),
        mode: ns.as_ref().map(|n| n.mode.as_str()),
        persistence_domain: ns.as_ref().map(|n| n.region.persistence_domain.clone()),
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &r)?;
        writeln!(out)?;
        return Ok(code);
    }
    let kind = serde_json::to_value(&r.probe.class)?
        .get("kind")
        .and_then(|k| k.as_str().map(str::to_owned))
        .unwrap_or_default();
    writeln!(out, "{}: {kind}", a.path.display())?;
    writeln!(
        out,
        "  crash persistent: {}",
        if r.probe.crash_persistent {
            "yes"
        } else {
            "no"
        }
    )?;
    writeln!(out, "  {}", r.probe.explanation)?;
    if let (Some(ns), Some(m)) = (&r.namespace, r.mode) {
        let pd = r.persistence_domain.as_deref().unwrap_or("unknown");
        writeln!(out, "  on {ns} ({m}), region persistence_domain {pd}")?;
    }
    Ok(code)
}
