//! `pmctl serve`: the REST API and web UI over HTTP/1.1 (tiny_http, a small
//! synchronous server: no async runtime to build on two cores). Routing is
//! [`crate::api::handle`]; this file only moves bytes and checks who asks:
//! with `--token-file`, every `/api` request needs `Authorization: Bearer
//! <token>`; a non-loopback address needs `--allow-remote` and a token.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::Args;

use crate::api::{ApiRequest, ApiResponse, MAX_BODY, handle};
use crate::vm::Manager;
use crate::vm::cli::CommonArgs;
use crate::{EXIT_ERROR, EXIT_OK};

/// Requests handled at once; more get 503.
const MAX_IN_FLIGHT: usize = 16;

/// Arguments of `pmctl serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Allow a non-loopback address (needs --token-file).
    #[arg(long)]
    pub allow_remote: bool,
    /// Require `Authorization: Bearer <token>` on /api; the token is the file's first line
    /// (at least 16 characters, e.g. `head -c 24 /dev/urandom | base64 > FILE`).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// Seconds `stop` waits for the guest to power off before `quit`.
    #[arg(long, default_value_t = 30)]
    pub stop_timeout: u64,
    #[command(flatten)]
    common: CommonArgs,
}

/// Failures before serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Bad --listen.
    #[error("--listen {0}: give IP:PORT, e.g. 127.0.0.1:8080")]
    BadAddr(String),
    /// Non-loopback without --allow-remote.
    #[error(
        "--listen {0}: not a loopback address; anyone who can reach it could start VMs and \
         attach host devices. Use 127.0.0.1 (and an SSH tunnel), or add --allow-remote together \
         with --token-file"
    )]
    Remote(String),
    /// --allow-remote without a token.
    #[error(
        "--allow-remote needs --token-file FILE: without a token the API has no authentication \
         (make one with `head -c 24 /dev/urandom | base64 > FILE; chmod 600 FILE`)"
    )]
    RemoteWithoutToken,
    /// Unusable token file.
    #[error("--token-file {0}: {1}")]
    Token(String, String),
    /// Bind failure.
    #[error("cannot listen on {0}: {1}")]
    Bind(String, String),
}

/// Parse and check the listen address.
pub fn listen_addr(s: &str, allow_remote: bool) -> Result<SocketAddr, ServeError> {
    let a: SocketAddr = s.parse().map_err(|_| ServeError::BadAddr(s.into()))?;
    if !a.ip().is_loopback() && !allow_remote {
        return Err(ServeError::Remote(s.into()));
    }
    Ok(a)
}

/// The token from `--token-file`: its first line, trimmed; at least 16 characters.
pub fn read_token(path: &std::path::Path) -> Result<String, ServeError> {
    let bad = |why: String| ServeError::Token(path.display().to_string(), why);
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    if token.len() < 16 {
        return Err(bad(format!(
            "the token (first line) has {} characters; use at least 16",
            token.len()
        )));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            "the token must be printable ASCII without spaces".into()
        ));
    }
    Ok(token)
}

/// Whether a request may pass: the UI page and its assets are public (the page asks for the
/// token), every `/api` path needs `Authorization: Bearer <token>` when a token is set.
/// Compared in constant time.
pub fn token_guard(
    token: Option<&str>,
    url: &str,
    authorization: Option<&str>,
) -> Result<(), String> {
    let Some(token) = token else { return Ok(()) };
    let path = url.split('?').next().unwrap_or("");
    if path != "/api" && !path.starts_with("/api/") {
        return Ok(());
    }
    let given = authorization
        .map(str::trim)
        .and_then(|a| a.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .unwrap_or("");
    let same = given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else if given.is_empty() {
        Err("this server needs 'Authorization: Bearer <token>' (pmctl serve --token-file)".into())
    } else {
        Err("wrong API token".into())
    }
}

/// Run `pmctl serve` until killed; returns the exit status on start-up failure.
pub fn main(a: ServeArgs) -> u8 {
    match run(&a) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("pmctl: {e}");
            EXIT_ERROR
        }
    }
}

fn read_body(req: &mut tiny_http::Request) -> Result<Vec<u8>, ApiResponse> {
    let too_big = || ApiResponse::error(413, &format!("request body larger than {MAX_BODY} bytes"));
    if req.body_length().is_some_and(|n| n > MAX_BODY) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    req.as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| ApiResponse::error(400, &format!("cannot read request body: {e}")))?;
    if body.len() > MAX_BODY {
        return Err(too_big());
    }
    Ok(body)
}

fn respond(req: tiny_http::Request, r: ApiResponse) {
    let mut resp = tiny_http::Response::from_data(r.body).with_status_code(r.status);
    if r.status == 401
        && let Ok(h) = tiny_http::Header::from_bytes(&b"WWW-Authenticate"[..], &b"Bearer"[..])
    {
        resp.add_header(h);
    }
    if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], r.content_type.as_bytes()) {
        resp.add_header(h);
    }
    if let Ok(h) = tiny_http::Header::from_bytes(&b"Cache-Control"[..], &b"no-store"[..]) {
        resp.add_header(h);
    }
    // A client that went away is not our problem.
    let _ = req.respond(resp);
}

/// Browser attacks on a loopback API: a web page the user visits can send requests to
/// 127.0.0.1 (cross-site request forgery, and DNS rebinding, where the page's own host name
/// resolves to 127.0.0.1). Browsers name the page in `Origin` and the name they connected to in
/// `Host`; scripts and curl send no `Origin`. So: unless `--allow-remote`, `Host` must be a
/// loopback name, and any `Origin` must be this server itself.
pub fn browser_guard(
    host: Option<&str>,
    origin: Option<&str>,
    allow_remote: bool,
) -> Result<(), String> {
    let host = host.unwrap_or("").trim();
    let host_name = |h: &str| -> String {
        let h = h.trim();
        if let Some(rest) = h.strip_prefix('[') {
            return rest.split(']').next().unwrap_or("").to_ascii_lowercase();
        }
        h.rsplit_once(':')
            .map_or(h, |(n, _)| n)
            .to_ascii_lowercase()
    };
    if !allow_remote && !host.is_empty() {
        let n = host_name(host);
        let loopback = n == "localhost"
            || n.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(format!(
                "Host '{host}' is not a loopback name (DNS rebinding?); use http://127.0.0.1:PORT/"
            ));
        }
    }
    if let Some(origin) = origin.map(str::trim).filter(|o| !o.is_empty()) {
        let o = origin.strip_prefix("http://").unwrap_or("");
        if o.is_empty() || !o.eq_ignore_ascii_case(host) {
            return Err(format!(
                "cross-origin request from '{origin}' refused (Origin must be http://{host})"
            ));
        }
    }
    Ok(())
}

fn header<'a>(req: &'a tiny_http::Request, name: &str) -> Option<&'a str> {
    req.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

fn serve_one(m: &Manager, mut req: tiny_http::Request, allow_remote: bool, token: Option<&str>) {
    if let Err(e) = browser_guard(header(&req, "Host"), header(&req, "Origin"), allow_remote) {
        respond(req, ApiResponse::error(403, &e));
        return;
    }
    if let Err(e) = token_guard(token, req.url(), header(&req, "Authorization")) {
        respond(req, ApiResponse::error(401, &e));
        return;
    }
    let r = match read_body(&mut req) {
        Ok(body) => {
            let method = req.method().to_string();
            let url = req.url().to_owned();
            handle(
                m,
                &ApiRequest {
                    method: &method,
                    url: &url,
                    body: &body,
                },
            )
        }
        Err(r) => r,
    };
    respond(req, r);
}

fn run(a: &ServeArgs) -> Result<(), ServeError> {
    let addr = listen_addr(&a.listen, a.allow_remote)?;
    let token = a.token_file.as_deref().map(read_token).transpose()?;
    if a.allow_remote && token.is_none() {
        return Err(ServeError::RemoteWithoutToken);
    }
    let token: Option<Arc<str>> = token.map(Arc::from);
    let mut m = a.common.manager();
    m.stop_timeout = Duration::from_secs(a.stop_timeout);
    let server = tiny_http::Server::http(addr)
        .map_err(|e| ServeError::Bind(a.listen.clone(), e.to_string()))?;
    let bound = server
        .server_addr()
        .to_ip()
        .map_or_else(|| a.listen.clone(), |s| s.to_string());
    println!(
        "pmctl: serving http://{bound}/ (state {}{})",
        m.store.dir().display(),
        if token.is_some() {
            ", token required"
        } else {
            ""
        }
    );
    let _ = std::io::stdout().flush();
    let m = Arc::new(m);
    let in_flight = Arc::new(AtomicUsize::new(0));
    for req in server.incoming_requests() {
        if in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            in_flight.fetch_sub(1, Ordering::SeqCst);
            respond(
                req,
                ApiResponse::error(503, "too many requests at once; retry"),
            );
            continue;
        }
        let (m, n, allow_remote) = (Arc::clone(&m), Arc::clone(&in_flight), a.allow_remote);
        let token = token.clone();
        std::thread::spawn(move || {
            serve_one(&m, req, allow_remote, token.as_deref());
            n.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{browser_guard, token_guard};

    #[test]
    fn token_guard_protects_the_api_only() {
        let t = Some("0123456789abcdef0123");
        assert!(
            token_guard(None, "/api/vms", None).is_ok(),
            "no token configured"
        );
        assert!(token_guard(t, "/", None).is_ok(), "the UI page is public");
        assert!(token_guard(t, "/apix", None).is_ok());
        let e = token_guard(t, "/api/vms", None).unwrap_err();
        assert!(e.contains("Bearer"), "{e}");
        assert!(token_guard(t, "/api", None).is_err());
        assert!(token_guard(t, "/api/vms?x=1", Some("Bearer 0123456789abcdef012")).is_err());
        assert!(token_guard(t, "/api/vms", Some("Bearer 0123456789abcdef0124")).is_err());
        assert!(token_guard(t, "/api/vms", Some("Basic 0123456789abcdef0123")).is_err());
        assert!(token_guard(t, "/api/vms", Some("bearer  0123456789abcdef0123 ")).is_ok());
    }

    #[test]
    fn scripts_and_same_origin_pages_pass() {
        assert!(browser_guard(Some("127.0.0.1:8080"), None, false).is_ok());
        assert!(
            browser_guard(Some("localhost:8080"), Some("http://localhost:8080"), false).is_ok()
        );
        assert!(browser_guard(Some("[::1]:9"), Some("http://[::1]:9"), false).is_ok());
        assert!(
            browser_guard(None, None, false).is_ok(),
            "HTTP/1.0 without Host"
        );
    }

    #[test]
    fn other_origins_and_rebound_names_are_refused() {
        let e =
            browser_guard(Some("127.0.0.1:8080"), Some("http://evil.example"), false).unwrap_err();
        assert!(e.contains("cross-origin"), "{e}");
        assert!(browser_guard(Some("127.0.0.1:8080"), Some("null"), false).is_err());
        assert!(
            browser_guard(
                Some("127.0.0.1:8080"),
                Some("https://127.0.0.1:8080"),
                false
            )
            .is_err()
        );
        let e = browser_guard(
            Some("evil.example:8080"),
            Some("http://evil.example:8080"),
            false,
        )
        .unwrap_err();
        assert!(e.contains("DNS rebinding"), "{e}");
        // with --allow-remote any host name, but still same-origin only
        assert!(browser_guard(Some("vmhost:8080"), Some("http://vmhost:8080"), true).is_ok());
        assert!(browser_guard(Some("vmhost:8080"), Some("http://evil.example"), true).is_err());
    }
}
