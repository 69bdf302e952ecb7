//! Error types: why a client's conversation ended, and why a server could not start.

use std::io;

use thiserror::Error;

/// A protocol violation or refusal: the connection ends after any queued output is flushed
/// (which may carry the reason to the client, as RFB 3.8 allows during the handshake).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The ProtocolVersion message was not `RFB xxx.yyy\n` with major version 3.
    #[error("bad protocol version message {0:?}")]
    BadVersion(String),
    /// The client picked a security type that was not offered.
    #[error("client chose security type {0}, which was not offered")]
    BadSecurityType(u8),
    /// VNC Authentication failed.
    #[error("authentication failed")]
    AuthFailed,
    /// The server refused the connection during the handshake (reason sent to the client).
    #[error("connection refused: {0}")]
    Refused(String),
    /// SetPixelFormat asked for something this server cannot produce.
    #[error("unsupported pixel format: {0}")]
    BadPixelFormat(String),
    /// A client message type we do not know, so cannot skip.
    #[error("unknown client message type {0}")]
    UnknownMessage(u8),
    /// A QEMU (type 255) client message with an unknown or unsupported subtype.
    #[error("unsupported QEMU client message subtype {0}")]
    UnknownQemuMessage(u8),
    /// Input arrived after the conversation had already ended.
    #[error("connection already closed")]
    Closed,
}

/// Why a VNC server could not be configured or started.
#[derive(Debug, Error)]
pub enum ServerError {
    /// A `-vnc` argument that does not parse.
    #[error("invalid -vnc argument {spec:?}: {why}")]
    BadSpec {
        /// The argument.
        spec: String,
        /// What is wrong with it.
        why: String,
    },
    /// A valid request this server does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Binding or accepting failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}
