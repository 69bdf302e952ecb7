//! QEMU's monitors for pmvm: QMP (JSON) and HMP (the human monitor), as QEMU speaks them, so
//! existing clients (`qemu.qmp`, libvirt-style tools, `nc -U`, telnet) work unchanged.
//!
//! * [`reader`]: bytes → JSON messages, with QEMU's error recovery and hard size limits;
//! * [`command`]: typed, argument-checked [`Command`]s, one table ([`COMMANDS`]) for all;
//! * [`hmp`]: the `(qemu) ` monitor's syntax and output formats, mapped onto the same commands;
//! * [`core`]: the engine both monitors share: the VMM implements [`QmpHandler`], [`Core`]
//!   dispatches QMP commands and HMP lines to it;
//! * [`session`]: the QMP protocol (greeting, negotiation, `id` echo, errors) without sockets;
//! * [`server`]: Unix/TCP/stdio endpoints, a thread per client, [`QmpServer::emit`] for events;
//! * [`vnc`]: `query-vnc`, `info vnc`, `set_password`;
//! * [`fuzz`]: the fuzz entry point over reader, parser and sessions.
//!
//! No KVM here: the VMM decides what each command does. See docs/qmp.md.

#![forbid(unsafe_code)]

pub mod chardev;
pub mod command;
pub mod core;
pub mod error;
pub mod event;
pub mod fuzz;
pub mod hmp;
pub mod json;
pub mod parse;
pub mod reader;
pub mod server;
pub mod session;
pub mod types;
pub mod vnc;

pub use self::core::{Core, QmpHandler, run_hmp_session};
pub use chardev::{ChardevSpec, Endpoint, parse_chardev_spec};
pub use command::{COMMAND_NAMES, COMMANDS, Command, CommandSpec, DeviceAdd, ObjectAdd, Props};
pub use error::{ErrorClass, QmpError, ServerError};
pub use event::{AcpiOstInfo, Event, ShutdownCause, Timestamp};
pub use fuzz::fuzz_qmp_reader;
pub use hmp::{HmpOutput, HmpRequest, parse_hmp_line};
pub use json::Json;
pub use reader::{Limits, MessageReader};
pub use server::{Protocol, QmpServer, ThreadInit};
pub use session::QmpSession;
pub use types::*;
pub use vnc::{VncClientInfo, VncInfo};
