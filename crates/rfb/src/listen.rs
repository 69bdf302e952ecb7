//! QEMU's `-vnc` argument: `[HOST]:N`, `unix:PATH` or `none`, then `,option=value`s.
//!
//! As in QEMU, display `N` means TCP port 5900 + N and an empty host means every interface;
//! `websocket=on` adds a WebSocket listener on port 5700 + N (same host), `websocket=PORT` or
//! `websocket=HOST:PORT` puts it elsewhere. Options QEMU has but pmvm does not implement (TLS,
//! SASL, reverse connections) are refused by name rather than silently ignored.

use std::path::PathBuf;

use crate::error::ServerError;

/// TCP port of display 0.
pub const VNC_BASE_PORT: u16 = 5900;
/// WebSocket port of display 0 (`websocket=on`).
pub const WS_BASE_PORT: u16 = 5700;

/// Where to listen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// TCP; an empty host means all interfaces.
    Tcp(String, u16),
    /// A Unix socket path.
    Unix(PathBuf),
}

impl Listen {
    /// True if reachable from other machines (not loopback, not a Unix socket).
    pub fn is_public(&self) -> bool {
        match self {
            Listen::Unix(_) => false,
            Listen::Tcp(h, _) => {
                !matches!(h.as_str(), "127.0.0.1" | "::1" | "localhost") && !h.starts_with("127.")
            }
        }
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Unix(p) => write!(f, "unix:{}", p.display()),
            Listen::Tcp(h, p) if h.contains(':') => write!(f, "[{h}]:{p}"),
            Listen::Tcp(h, p) if h.is_empty() => write!(f, "0.0.0.0:{p}"),
            Listen::Tcp(h, p) => write!(f, "{h}:{p}"),
        }
    }
}

/// What a non-shared (exclusive) client may do (`share=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Share {
    /// An exclusive client disconnects the others (QEMU's default).
    #[default]
    AllowExclusive,
    /// Exclusive requests are refused while others are connected.
    ForceShared,
    /// The shared flag is ignored.
    Ignore,
}

/// A parsed `-vnc` argument.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct VncSpec {
    /// The RFB listener; `None` for `-vnc none` (no listener until configured otherwise).
    pub listen: Option<Listen>,
    /// `to=L`: if port 5900+N is taken, try displays up to L.
    pub to: Option<u16>,
    /// `password=on`: VNC Authentication; the password is set later (`change vnc password`,
    /// `set_password` in QMP). Until then nobody can log in, as in QEMU.
    pub password: bool,
    /// The WebSocket listener, if any.
    pub websocket: Option<Listen>,
    /// `share=` policy.
    pub share: Share,
    /// `connections=N`: most clients at once (QEMU's default 32).
    pub connections: usize,
}

fn on_off(v: Option<&str>, spec: &str, name: &str) -> Result<bool, ServerError> {
    match v {
        None | Some("on" | "yes" | "true") => Ok(true),
        Some("off" | "no" | "false") => Ok(false),
        Some(o) => Err(bad(spec, &format!("{name}={o}: expected on or off"))),
    }
}

fn bad(spec: &str, why: &str) -> ServerError {
    ServerError::BadSpec {
        spec: spec.to_string(),
        why: why.to_string(),
    }
}

/// Splits `HOST:PORT` / `[V6]:PORT` / `:PORT` into host and the text after the last colon.
fn split_host(s: &str) -> Option<(String, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, tail) = rest.split_once(']')?;
        return Some((h.to_string(), tail.strip_prefix(':')?));
    }
    let (h, p) = s.rsplit_once(':')?;
    Some((h.to_string(), p))
}

/// Parses a `-vnc` argument the way QEMU does (the subset pmvm implements).
pub fn parse_vnc_spec(spec: &str) -> Result<VncSpec, ServerError> {
    let mut parts = spec.split(',');
    let addr = parts.next().unwrap_or_default();
    let mut out = VncSpec {
        connections: 32,
        ..VncSpec::default()
    };
    let mut display = None;
    let mut host = String::new();
    if addr == "none" {
    } else if let Some(path) = addr.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(bad(spec, "unix: needs a path"));
        }
        out.listen = Some(Listen::Unix(PathBuf::from(path)));
    } else {
        let (h, n) =
            split_host(addr).ok_or_else(|| bad(spec, "expected [HOST]:N, unix:PATH or none"))?;
        let n: u16 = n
            .parse()
            .ok()
            .filter(|&n: &u16| n <= u16::MAX - VNC_BASE_PORT)
            .ok_or_else(|| bad(spec, &format!("display number {n:?} is not 0..=59635")))?;
        display = Some(n);
        host = h;
        out.listen = Some(Listen::Tcp(host.clone(), VNC_BASE_PORT + n));
    }
    for opt in parts {
        let (k, v) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        match k {
            "password" => out.password = on_off(v, spec, k)?,
            "websocket" => {
                let v = v.unwrap_or("on");
                out.websocket = match v {
                    "off" => None,
                    "on" => {
                        let n = display.ok_or_else(|| {
                            bad(
                                spec,
                                "websocket=on needs a TCP display; give websocket=PORT",
                            )
                        })?;
                        let port = WS_BASE_PORT
                            .checked_add(n)
                            .ok_or_else(|| bad(spec, "websocket port out of range"))?;
                        Some(Listen::Tcp(host.clone(), port))
                    }
                    v => {
                        let (h, p) = split_host(v).unwrap_or((host.clone(), v));
                        let port = p
                            .parse()
                            .map_err(|_| bad(spec, &format!("websocket={v}: not a port")))?;
                        Some(Listen::Tcp(h, port))
                    }
                };
            }
            "to" => {
                let to = v
                    .and_then(|v| v.parse::<u16>().ok())
                    .filter(|&t| t <= u16::MAX - VNC_BASE_PORT)
                    .ok_or_else(|| bad(spec, "to= needs a display number"))?;
                if display.is_none_or(|d| to < d) {
                    return Err(bad(spec, "to= needs a TCP display not above it"));
                }
                out.to = Some(to);
            }
            "share" => {
                out.share = match v {
                    Some("allow-exclusive") => Share::AllowExclusive,
                    Some("force-shared") => Share::ForceShared,
                    Some("ignore") => Share::Ignore,
                    _ => {
                        return Err(bad(
                            spec,
                            "share= takes allow-exclusive, force-shared or ignore",
                        ));
                    }
                }
            }
            "connections" => {
                out.connections = v
                    .and_then(|v| v.parse().ok())
                    .filter(|&n: &usize| (1..=1024).contains(&n))
                    .ok_or_else(|| bad(spec, "connections= takes 1..=1024"))?;
            }
            "id" | "display" | "head" | "lossy" | "non-adaptive" | "lock-key-sync" | "ipv4"
            | "ipv6" | "key-delay-ms" => {
                // Accepted and ignored: they change nothing a Raw-only server does.
            }
            "tls-creds" | "tls-authz" | "sasl" | "sasl-authz" | "reverse" | "x509"
            | "x509verify" | "tls" | "acl" | "audiodev" | "power-control" => {
                return Err(ServerError::Unsupported(format!(
                    "-vnc option {k} is not implemented by pmvm"
                )));
            }
            _ => return Err(bad(spec, &format!("unknown option {k:?}"))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(h: &str, p: u16) -> Option<Listen> {
        Some(Listen::Tcp(h.into(), p))
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_vnc_spec(":0").unwrap().listen, tcp("", 5900));
        assert_eq!(
            parse_vnc_spec("127.0.0.1:3").unwrap().listen,
            tcp("127.0.0.1", 5903)
        );
        assert_eq!(parse_vnc_spec("[::1]:1").unwrap().listen, tcp("::1", 5901));
        assert_eq!(
            parse_vnc_spec("unix:/tmp/v.sock").unwrap().listen,
            Some(Listen::Unix("/tmp/v.sock".into()))
        );
        assert_eq!(parse_vnc_spec("none").unwrap().listen, None);
        assert_eq!(parse_vnc_spec(":0").unwrap().connections, 32);
        for bad in [
            "",
            "0",
            ":x",
            ":59636",
            "unix:",
            "host",
            ":0,bogus=1",
            ":0,password=maybe",
        ] {
            assert!(parse_vnc_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn options() {
        let s = parse_vnc_spec("localhost:2,password=on,websocket=on,share=force-shared").unwrap();
        assert!(s.password);
        assert_eq!(s.websocket, tcp("localhost", 5702));
        assert_eq!(s.share, Share::ForceShared);
        assert!(parse_vnc_spec(":0,password").unwrap().password);
        assert!(!parse_vnc_spec(":0,password=off").unwrap().password);
        assert_eq!(
            parse_vnc_spec(":0,websocket=5999").unwrap().websocket,
            tcp("", 5999)
        );
        assert_eq!(
            parse_vnc_spec(":0,websocket=127.0.0.1:6000")
                .unwrap()
                .websocket,
            tcp("127.0.0.1", 6000)
        );
        assert_eq!(parse_vnc_spec(":1,to=5").unwrap().to, Some(5));
        assert!(parse_vnc_spec(":5,to=1").is_err());
        assert!(parse_vnc_spec("unix:/x,websocket=on").is_err());
        assert!(matches!(
            parse_vnc_spec(":0,tls-creds=x"),
            Err(ServerError::Unsupported(_))
        ));
    }

    #[test]
    fn public_or_not() {
        assert!(Listen::Tcp(String::new(), 5900).is_public());
        assert!(Listen::Tcp("0.0.0.0".into(), 5900).is_public());
        assert!(!Listen::Tcp("127.0.0.1".into(), 5900).is_public());
        assert!(!Listen::Tcp("::1".into(), 5900).is_public());
        assert!(!Listen::Unix("/x".into()).is_public());
        assert_eq!(Listen::Tcp("::1".into(), 5900).to_string(), "[::1]:5900");
    }
}
