//! `pmctl` as a library: every command group of the `pmctl` binary, plus the
//! VM manager ([`vm`]) and its REST API and web UI ([`api`], [`serve`]), so the
//! CLI, the HTTP server, the tests and the fuzzer share one implementation.
//!
//! Exit codes, for scripts: 0 success; 1 the command ran but found problems
//! (e.g. `label check`); 2 usage error or I/O error.

pub mod api;
pub mod host;
pub mod label;
pub mod probe;
pub mod qmpc;
pub mod serve;
pub mod size;
pub mod vm;

pub use api::fuzz::fuzz_api_request;

/// Command succeeded.
pub const EXIT_OK: u8 = 0;
/// Command ran and found problems (`check`).
pub const EXIT_PROBLEMS: u8 = 1;
/// Usage or I/O error (also clap's own exit code for bad arguments).
pub const EXIT_ERROR: u8 = 2;
