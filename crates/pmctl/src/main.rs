//! `pmctl`: pmvm management tool (host NVDIMM discovery, guest sizing, label
//! tools, VM definitions with NVDIMM assignments, REST API and web UI).
//!
//! Exit codes, for scripts: 0 success; 1 the command ran but found problems
//! (e.g. `label check`); 2 usage error or I/O error. Each command group lives
//! in its own library module with a clap `Subcommand` enum and a `run` function.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pmctl::{EXIT_ERROR, host, label, probe, serve, size, vm};

/// pmvm management tool.
#[derive(Debug, Parser)]
#[command(
    name = "pmctl",
    version,
    about = "pmvm management: NVDIMM backends, guest sizing, namespace labels, VMs",
    after_help = "Exit status: 0 ok, 1 problems found (check commands), 2 usage or I/O error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect, initialise and check the namespace label area of an NVDIMM backend file.
    #[command(subcommand)]
    Label(label::LabelCommand),
    /// Host NVDIMM discovery from sysfs (namespaces, modes, sizes, regions, users).
    #[command(subcommand)]
    Host(host::HostCommand),
    /// Exact guest NVDIMM sizing and pmvm arguments for a host device or file.
    Size(size::SizeArgs),
    /// Whether a backend gives crash persistence (exit 0 yes, 1 no).
    Probe(probe::ProbeArgs),
    /// VM definitions with host NVDIMM assignments: create, attach, start, stop.
    Vm(vm::cli::VmArgs),
    /// Serve the JSON REST API and the web UI (loopback only unless --allow-remote).
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Label(cmd) => label::run(cmd),
        Command::Host(cmd) => Ok(host::main(cmd)),
        Command::Size(a) => Ok(size::main(a)),
        Command::Probe(a) => Ok(probe::main(a)),
        Command::Vm(a) => Ok(vm::cli::main(a)),
        Command::Serve(a) => Ok(serve::main(a)),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("pmctl: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
