//! `pmctl vm ...`: VM definitions with host NVDIMM assignments, kept as one
//! JSON file per VM in a state directory ([`state`]), turned into the exact
//! pmvm command line ([`cmdline`], validated with pmvm's own parser), run and
//! stopped through a pidfile and QMP ([`process`], [`crate::qmpc`]).
//! [`ops::Manager`] is shared by the CLI ([`cli`]) and the REST API.

pub mod cli;
pub mod cmdline;
pub mod console;
pub mod device;
pub mod error;
pub mod hotplug;
pub mod ops;
pub mod process;
pub mod state;

#[cfg(test)]
mod tests;

pub use error::{ErrorKind, VmError};
pub use ops::{CreateSpec, Manager};
pub use state::{Assignment, Store, VmDef};
