//! QEMU's monitors for pmvm: QMP (JSON) and HMP (the human monitor), as QEMU speaks them, so
//! existing clients (`qemu.qmp`, libvirt-style tools, `nc -U`, telnet) work unchanged.
//!
//! * [`reader`]: bytes → JSON messages, with QEMU's error recovery and hard size limits;
//! * [`session`]: the protocol (greeting, negotiation, `id` echo, errors) without sockets;
//! * [`command`]: typed, argument-checked [`Command`]s; the VMM implements [`QmpHandler`];
//! * [`hmp`]: the `(qemu) ` monitor, mapped onto the same commands;
//! * [`server`]: Unix/TCP/stdio endpoints, a thread per client, [`QmpServer::emit`] for events.
//!
//! No KVM here: the VMM decides what each command does. See docs/qmp.md.

pub mod chardev;
pub mod command;
pub mod error;
pub mod event;
pub mod hmp;
pub mod json;
pub mod parse;
pub mod reader;
pub mod server;
pub mod session;
pub mod types;

pub use chardev::{ChardevSpec, Endpoint, parse_chardev_spec};
pub use command::{COMMAND_NAMES, Command, DeviceAdd, ObjectAdd, Props};
pub use error::{ErrorClass, QmpError, ServerError};
pub use event::{AcpiOstInfo, Event, ShutdownCause, Timestamp};
pub use hmp::{HmpOutput, HmpRequest, parse_hmp_line, run_hmp_session};
pub use json::Json;
pub use reader::{Limits, MessageReader, fuzz_qmp_reader};
pub use server::{Protocol, QmpServer, ThreadInit};
pub use session::{Core, QmpHandler, QmpSession};
pub use types::*;
