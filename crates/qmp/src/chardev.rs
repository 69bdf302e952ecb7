//! `-qmp` / `-monitor` endpoint syntax: `unix:PATH,server=on,wait=off`, `tcp:HOST:PORT,server,nowait`,
//! `stdio`.

use std::path::PathBuf;

use crate::error::ServerError;

/// Where a monitor talks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix domain socket path.
    Unix(PathBuf),
    /// A TCP host (empty = all interfaces when listening) and port.
    Tcp(String, u16),
    /// The process's stdin/stdout.
    Stdio,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Tcp(h, p) if h.contains(':') => write!(f, "tcp:[{h}]:{p}"),
            Endpoint::Tcp(h, p) => write!(f, "tcp:{h}:{p}"),
            Endpoint::Stdio => f.write_str("stdio"),
        }
    }
}

/// A parsed `-qmp`/`-monitor` argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChardevSpec {
    /// Where.
    pub endpoint: Endpoint,
    /// Listen (`server=on`) rather than connect (QEMU's default is to connect).
    pub server: bool,
    /// With `server`: wait for the first client before returning (QEMU's default).
    pub wait: bool,
}

fn bad(spec: &str, reason: impl Into<String>) -> ServerError {
    ServerError::BadSpec {
        spec: spec.to_string(),
        reason: reason.into(),
    }
}

fn parse_bool(spec: &str, key: &str, v: &str) -> Result<bool, ServerError> {
    vm_config::bool_value(v)
        .ok_or_else(|| bad(spec, format!("'{key}' expects 'on' or 'off', got '{v}'")))
}

/// Parses QEMU's `-qmp`/`-monitor` chardev shorthand.
///
/// Accepted: `unix:PATH`, `tcp:[HOST]:PORT` (IPv6 in brackets), `stdio`, followed by
/// `,server[=on|off]`, `,wait=on|off`, `,nowait`, and the ignored `,telnet=off`/`,nodelay`.
pub fn parse_chardev_spec(spec: &str) -> Result<ChardevSpec, ServerError> {
    let mut items = vm_config::split_opts(spec).into_iter();
    let head = items.next().unwrap_or_default();
    let endpoint = if let Some(path) = head.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(bad(spec, "the socket path after 'unix:' is empty"));
        }
        Endpoint::Unix(PathBuf::from(path))
    } else if let Some(addr) = head.strip_prefix("tcp:") {
        let (host, port) = if let Some(r) = addr.strip_prefix('[') {
            let (h, p) = r
                .split_once("]:")
                .ok_or_else(|| bad(spec, "expected tcp:[IPV6]:PORT"))?;
            (h.to_string(), p)
        } else {
            let (h, p) = addr
                .rsplit_once(':')
                .ok_or_else(|| bad(spec, "expected tcp:HOST:PORT"))?;
            (h.to_string(), p)
        };
        let port = port.parse::<u16>().map_err(|_| {
            bad(
                spec,
                format!("port '{port}' is not a number from 0 to 65535"),
            )
        })?;
        Endpoint::Tcp(host, port)
    } else if head == "stdio" {
        Endpoint::Stdio
    } else {
        return Err(bad(spec, "expected unix:PATH, tcp:HOST:PORT or stdio"));
    };
    let mut server = false;
    let mut wait = true;
    for item in items {
        let (k, v) = match item.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (item.clone(), None),
        };
        let flag = |v: &Option<String>| v.as_deref().map_or(Ok(true), |v| parse_bool(spec, &k, v));
        match k.as_str() {
            "" => {}
            "server" => server = flag(&v)?,
            "wait" => wait = flag(&v)?,
            "nowait" if v.is_none() => wait = false,
            "telnet" if !flag(&v)? => {}
            "nodelay" => {}
            "telnet" => return Err(bad(spec, "telnet mode is not supported; drop ',telnet'")),
            _ => {
                return Err(bad(
                    spec,
                    format!("unknown option '{k}' (supported: server, wait, nowait, nodelay)"),
                ));
            }
        }
    }
    if endpoint == Endpoint::Stdio && server {
        return Err(bad(spec, "'server' does not apply to stdio"));
    }
    Ok(ChardevSpec {
        endpoint,
        server,
        wait,
    })
}
