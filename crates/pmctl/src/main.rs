//! `pmctl`: pmvm management tool (host NVDIMM discovery, guest sizing, label tools).
//!
//! Exit codes, for scripts: 0 success; 1 the command ran but found problems
//! (e.g. `label check`); 2 usage error or I/O error. Each command group lives
//! in its own module with a clap `Subcommand` enum and a `run` function.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod host;
mod label;
mod probe;
mod size;

/// Command succeeded.
pub const EXIT_OK: u8 = 0;
/// Command ran and found problems (`check`).
pub const EXIT_PROBLEMS: u8 = 1;
/// Usage or I/O error (also clap's own exit code for bad arguments).
pub const EXIT_ERROR: u8 = 2;

/// pmvm management tool.
#[derive(Debug, Parser)]
#[command(
    name = "pmctl",
    version,
    about = "pmvm management: NVDIMM backends, guest sizing, namespace labels",
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Label(cmd) => label::run(cmd),
        Command::Host(cmd) => Ok(host::main(cmd)),
        Command::Size(a) => Ok(size::main(a)),
        Command::Probe(a) => Ok(probe::main(a)),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("pmctl: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
