//! The VNC commands' payloads and texts: `query-vnc` ([`VncInfo`], QAPI `ui.json`), HMP
//! `info vnc`, `set_password` and `change vnc password`, as QEMU 7.2 prints and parses them.
//!
//! Kept apart from `hmp.rs`/`types.rs` so the display commands stay in one place; `hmp` calls
//! the parsers and the formatter here, and this file imports only `command`.

use serde::{Deserialize, Serialize};

use crate::command::{Command, set_password};

/// `VncClientInfo` (QEMU's `VncBasicInfo` members; `x509_dname`/`sasl_username` never apply).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VncClientInfo {
    /// Peer address (`""` for a Unix socket).
    pub host: String,
    /// Peer port (`""` for a Unix socket).
    pub service: String,
    /// `ipv4`, `ipv6` or `unix`.
    pub family: String,
    /// Connected through the WebSocket listener.
    pub websocket: bool,
}

/// `VncInfo`: the reply of `query-vnc`. Without a VNC server only `enabled: false`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VncInfo {
    /// A VNC server is listening.
    pub enabled: bool,
    /// Listening address (`""` for a Unix socket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `ipv4`, `ipv6` or `unix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Port number, or the socket's path for `unix:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// `none` or `vnc` (`password=on`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// Connected clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<Vec<VncClientInfo>>,
}

/// `info vnc`, as QEMU 7.2 prints it from the same data:
///
/// ```text
/// default:
///   Server: 127.0.0.1:5900 (ipv4)
///     Auth: none (Sub: none)
///   Client: 127.0.0.1:40042 (ipv4)
///     x509_dname: none
///     sasl_username: none
/// ```
pub fn format_info_vnc(v: &VncInfo) -> String {
    if !v.enabled {
        return "None\n".to_string();
    }
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    let mut out = format!(
        "default:\n  Server: {}:{} ({})\n    Auth: {} (Sub: none)\n",
        s(&v.host),
        s(&v.service),
        s(&v.family),
        v.auth.as_deref().unwrap_or("none"),
    );
    for c in v.clients.iter().flatten() {
        let ws = if c.websocket { ", websocket" } else { "" };
        out.push_str(&format!(
            "  Client: {}:{} ({}{ws})\n    x509_dname: none\n    sasl_username: none\n",
            c.host, c.service, c.family
        ));
    }
    out
}

/// HMP `set_password protocol password [-d display] [action-if-connected]`.
pub fn parse_set_password(rest: &str) -> Result<Command, String> {
    let mut words = rest.split_whitespace();
    let (Some(protocol), Some(password)) = (words.next(), words.next()) else {
        return Err("set_password: usage: set_password protocol password [-d display] [action-if-connected]".into());
    };
    let mut display = None;
    let mut connected = None;
    while let Some(w) = words.next() {
        match w {
            "-d" => match words.next() {
                Some(d) => display = Some(d.to_string()),
                None => return Err("set_password: -d needs a display id".into()),
            },
            _ if connected.is_none() => connected = Some(w.to_string()),
            _ => return Err("set_password: extraneous characters at the end of line".into()),
        }
    }
    set_password(
        protocol.to_string(),
        password.to_string(),
        connected,
        display,
    )
    .map_err(|e| format!("Error: {}", e.desc))
}

/// HMP `change vnc password PASSWORD` (QEMU also prompts when the password is left out; pmvm
/// wants it on the line). Other `change` forms (removable media) do not exist in pmvm.
pub fn parse_change(rest: &str) -> Result<Command, String> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    match words.as_slice() {
        ["vnc", "password", pw] => set_password("vnc".into(), pw.to_string(), None, None)
            .map_err(|e| format!("Error: {}", e.desc)),
        ["vnc", "password"] => Err(
            "change vnc password: give the password on the line: change vnc password PASSWORD"
                .into(),
        ),
        ["vnc", other, ..] => Err(format!(
            "change vnc {other}: pmvm cannot move its VNC server; only 'change vnc password PASSWORD'"
        )),
        [dev, ..] => Err(format!(
            "Error: Device '{dev}' not found (pmvm has no removable media; 'change vnc password PASSWORD' is supported)"
        )),
        [] => Err("change: missing argument 'device'".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_vnc_matches_qemu_7_2() {
        assert_eq!(format_info_vnc(&VncInfo::default()), "None\n");
        let v = VncInfo {
            enabled: true,
            host: Some("".into()),
            family: Some("unix".into()),
            service: Some("/tmp/qv.sock".into()),
            auth: Some("vnc".into()),
            clients: Some(vec![VncClientInfo {
                host: "".into(),
                service: "".into(),
                family: "unix".into(),
                websocket: false,
            }]),
        };
        // Captured from qemu-system-x86_64 7.2 (`-vnc unix:/tmp/qv.sock,password=on`).
        assert_eq!(
            format_info_vnc(&v),
            "default:\n  Server: :/tmp/qv.sock (unix)\n    Auth: vnc (Sub: none)\n  Client: : (unix)\n    x509_dname: none\n    sasl_username: none\n"
        );
        let json = serde_json::to_string(&v).unwrap();
        assert!(
            json.contains(
                r#""clients":[{"host":"","service":"","family":"unix","websocket":false}]"#
            ),
            "{json}"
        );
        assert_eq!(
            serde_json::to_string(&VncInfo::default()).unwrap(),
            r#"{"enabled":false}"#
        );
    }

    #[test]
    fn set_password_and_change_parse_as_qemu() {
        assert_eq!(
            parse_set_password("vnc abc keep").unwrap(),
            Command::SetPassword {
                protocol: "vnc".into(),
                password: "abc".into(),
                connected: Some("keep".into()),
                display: None,
            }
        );
        assert!(
            parse_set_password("rdp x")
                .unwrap_err()
                .contains("Parameter 'protocol' does not accept value 'rdp'")
        );
        assert!(parse_set_password("vnc").is_err());
        assert!(matches!(
            parse_change("vnc password s3cret"),
            Ok(Command::SetPassword { password, .. }) if password == "s3cret"
        ));
        assert!(
            parse_change("vnc password")
                .unwrap_err()
                .contains("PASSWORD")
        );
        assert!(
            parse_change("ide0-cd0 x.iso")
                .unwrap_err()
                .contains("not found")
        );
    }
}
