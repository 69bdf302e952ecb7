//! The JSON REST API, as a pure function from a request (method, URL, body)
//! to a response, over the same [`Manager`] as the CLI. The HTTP transport is
//! in [`crate::serve`]; keeping routing here lets tests and the fuzzer drive
//! it without sockets. Everything in a request is hostile: bodies are size-
//! limited, JSON is parsed into typed structs with unknown fields refused,
//! names are validated before they become file names, and no input panics.

pub mod fuzz;
mod query;

use std::path::PathBuf;

use serde::Deserialize;
use serde::Serialize;
use serde_json::{Value, json};

pub use query::{percent_decode, query_param};

use crate::host::{inuse, sysfs};
use crate::vm::device;
use crate::vm::{CreateSpec, Manager, VmError};

/// Largest accepted request body (bytes).
pub const MAX_BODY: usize = 64 * 1024;

/// The web UI page (GET /).
pub const INDEX_HTML: &str = include_str!("ui.html");

/// An HTTP request as the router sees it.
#[derive(Debug, Clone, Copy)]
pub struct ApiRequest<'a> {
    /// Method (`GET`, `POST`, `DELETE`).
    pub method: &'a str,
    /// Request target: path and optional `?query`.
    pub url: &'a str,
    /// Body bytes.
    pub body: &'a [u8],
}

/// The response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

impl ApiResponse {
    /// A JSON response.
    pub fn json(status: u16, v: &impl Serialize) -> ApiResponse {
        match serde_json::to_vec_pretty(v) {
            Ok(mut body) => {
                body.push(b'\n');
                ApiResponse {
                    status,
                    content_type: "application/json",
                    body,
                }
            }
            Err(e) => ApiResponse::error(500, &format!("cannot render JSON: {e}")),
        }
    }

    /// `{"error": msg}`.
    pub fn error(status: u16, msg: &str) -> ApiResponse {
        let mut body = json!({ "error": msg }).to_string().into_bytes();
        body.push(b'\n');
        ApiResponse {
            status,
            content_type: "application/json",
            body,
        }
    }
}

impl From<VmError> for ApiResponse {
    fn from(e: VmError) -> ApiResponse {
        ApiResponse::error(e.status(), &e.to_string())
    }
}

type Result<T> = std::result::Result<T, ApiResponse>;

fn bad(msg: impl AsRef<str>) -> ApiResponse {
    ApiResponse::error(400, msg.as_ref())
}

/// `POST /api/vms` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    /// QEMU size string ("1G", bare number = MiB) or a byte count.
    #[serde(default)]
    memory: Option<Value>,
    #[serde(default)]
    cpus: Option<u32>,
    /// Absent: firmware boot from the first disk (`bios` or pmvm's default firmware).
    #[serde(default)]
    kernel: Option<PathBuf>,
    #[serde(default)]
    bios: Option<PathBuf>,
    #[serde(default)]
    initrd: Option<PathBuf>,
    #[serde(default)]
    append: Option<String>,
    #[serde(default)]
    slots: Option<u32>,
    /// Room for NVDIMMs attached while running, like `memory` (default none).
    #[serde(default)]
    hotplug_room: Option<Value>,
    /// Raw disk images, `[{"path": "...", "readonly": false}]` (default none).
    #[serde(default)]
    disks: Vec<DiskBody>,
}

/// One disk of a `POST /api/vms` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DiskBody {
    path: PathBuf,
    #[serde(default)]
    readonly: bool,
}

/// `POST /api/vms/{name}/nvdimms` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttachBody {
    path: PathBuf,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/vms/{name}/stop` body (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StopBody {
    #[serde(default)]
    force: bool,
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON body: {e}")))
}

fn memory_of(v: Option<Value>) -> Result<u64> {
    size_of("memory", v, pmem_layout::GIB)
}

/// A size given as a byte count or a QEMU size string (a bare number is MiB).
fn size_of(what: &str, v: Option<Value>, default: u64) -> Result<u64> {
    let hint = || {
        bad(format!(
            "{what}: give a byte count or a size string such as \"1G\""
        ))
    };
    match v {
        None => Ok(default),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(hint),
        Some(Value::String(s)) => pmem_layout::parse_size(&s, pmem_layout::Suffix::M)
            .map_err(|e| bad(format!("{what} {s}: {e}"))),
        Some(_) => Err(hint()),
    }
}

fn required_path(url: &str) -> Result<PathBuf> {
    match query_param(url, "path") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => Err(bad("missing query parameter ?path=")),
    }
}

/// `GET /api/host/nvdimms`: namespaces with users, persistence and the VM each is assigned to.
fn host_nvdimms(m: &Manager) -> Result<ApiResponse> {
    let host = match sysfs::discover(&m.sysfs_root) {
        Ok(h) => h,
        Err(e) => {
            return Ok(ApiResponse::json(
                200,
                &json!({ "namespaces": [], "regions": [], "note": e.to_string() }),
            ));
        }
    };
    let vms = m.store.list().map_err(ApiResponse::from)?;
    let procs = inuse::vmm_processes(&m.proc_root);
    let namespaces: Vec<Value> = host
        .namespaces
        .iter()
        .map(|ns| {
            let dev = ns.device.as_deref();
            let users = dev.map(|d| inuse::users_of(&procs, d)).unwrap_or_default();
            let assigned = dev.and_then(|d| {
                vms.iter()
                    .find(|v| v.nvdimms.iter().any(|a| a.path == d))
                    .map(|v| v.name.clone())
            });
            let persistent = dev
                .and_then(|d| pmem_probe::probe_path(d).ok())
                .map(|p| p.crash_persistent);
            let mut v = serde_json::to_value(ns).unwrap_or(Value::Null);
            if let Value::Object(o) = &mut v {
                o.insert("in_use_by".into(), json!(users));
                o.insert("assigned_to".into(), json!(assigned));
                o.insert("crash_persistent".into(), json!(persistent));
            }
            v
        })
        .collect();
    Ok(ApiResponse::json(
        200,
        &json!({ "namespaces": namespaces, "regions": host.regions }),
    ))
}

fn ok<T: Serialize>(v: &T) -> Result<ApiResponse> {
    Ok(ApiResponse::json(200, v))
}

fn vm_route(
    m: &Manager,
    method: &str,
    url: &str,
    name: &str,
    rest: &[&str],
    body: &[u8],
) -> Result<ApiResponse> {
    match (method, rest) {
        ("GET", []) => ok(&m.show(name)?),
        ("DELETE", []) => {
            m.delete(name)?;
            ok(&json!({ "deleted": name }))
        }
        ("POST", ["nvdimms"]) => {
            let b: AttachBody = parse_body(body)?;
            let r = m.attach(name, &b.path, b.dry_run)?;
            Ok(ApiResponse::json(if b.dry_run { 200 } else { 201 }, &r))
        }
        ("DELETE", ["nvdimms"]) => ok(&m.detach(name, &required_path(url)?)?),
        ("GET", ["args"]) => ok(&m.args(name)?),
        ("POST", ["start"]) => ok(&m.start(name)?),
        ("POST", ["stop"]) => {
            let b: StopBody = if body.iter().all(u8::is_ascii_whitespace) {
                StopBody::default()
            } else {
                parse_body(body)?
            };
            ok(&m.stop(name, b.force)?)
        }
        ("GET", ["status"]) => ok(&m.status(name)?),
        ("GET", ["console"]) => {
            let num = |key: &str| -> Result<Option<u64>> {
                query_param(url, key)
                    .map(|v| {
                        v.parse::<u64>().map_err(|_| {
                            ApiResponse::error(400, &format!("{key}={v}: give a number of bytes"))
                        })
                    })
                    .transpose()
            };
            let bytes = num("bytes")?.unwrap_or(16384);
            ok(&m.console(name, num("from")?, bytes)?)
        }
        (_, [] | ["nvdimms"] | ["args"] | ["start"] | ["stop"] | ["status"] | ["console"]) => Err(
            ApiResponse::error(405, &format!("method {method} not allowed here")),
        ),
        _ => Err(ApiResponse::error(
            404,
            &format!("no API path {}", url_path(url)),
        )),
    }
}

fn url_path(url: &str) -> &str {
    url.split_once('?').map_or(url, |(p, _)| p)
}

fn route(m: &Manager, req: &ApiRequest<'_>) -> Result<ApiResponse> {
    if req.body.len() > MAX_BODY {
        return Err(ApiResponse::error(
            413,
            &format!("request body larger than {MAX_BODY} bytes"),
        ));
    }
    let path = url_path(req.url);
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let method = req.method;
    match (method, segs.as_slice()) {
        ("GET", [] | ["index.html"]) => Ok(ApiResponse {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: INDEX_HTML.as_bytes().to_vec(),
        }),
        ("GET", ["api", "host", "nvdimms"]) => host_nvdimms(m),
        ("GET", ["api", "probe"]) => {
            let p = required_path(req.url)?;
            pmem_probe::probe_path(&p)
                .map(|r| ApiResponse::json(200, &r))
                .map_err(|e| bad(format!("{}: {e}", p.display())))
        }
        ("GET", ["api", "size"]) => {
            let p = required_path(req.url)?;
            let (r, _) = device::inspect(&m.sysfs_root, &p)?;
            Ok(ApiResponse::json(200, &r))
        }
        ("GET", ["api", "vms"]) => Ok(ApiResponse::json(200, &m.list()?)),
        ("POST", ["api", "vms"]) => {
            let b: CreateBody = parse_body(req.body)?;
            let spec = CreateSpec {
                name: b.name,
                memory: memory_of(b.memory)?,
                cpus: b.cpus.unwrap_or(1),
                // "" (an empty form field) is no kernel: firmware boot.
                kernel: b.kernel.filter(|k| !k.as_os_str().is_empty()),
                bios: b.bios.filter(|k| !k.as_os_str().is_empty()),
                initrd: b.initrd,
                append: b.append.unwrap_or_default(),
                slots: b.slots,
                hotplug_room: size_of("hotplug_room", b.hotplug_room, 0)?,
                disks: b
                    .disks
                    .iter()
                    .filter(|d| !d.readonly)
                    .map(|d| d.path.clone())
                    .collect(),
                readonly_disks: b
                    .disks
                    .iter()
                    .filter(|d| d.readonly)
                    .map(|d| d.path.clone())
                    .collect(),
            };
            Ok(ApiResponse::json(201, &m.create(spec)?))
        }
        (_, ["api", "vms", name, rest @ ..]) => vm_route(m, method, req.url, name, rest, req.body),
        (
            _,
            []
            | ["index.html"]
            | ["api", "host", "nvdimms"]
            | ["api", "probe"]
            | ["api", "size"]
            | ["api", "vms"],
        ) => Err(ApiResponse::error(
            405,
            &format!("method {method} not allowed here"),
        )),
        _ => Err(ApiResponse::error(404, &format!("no API path {path}"))),
    }
}

/// Route one request; never panics on any input.
pub fn handle(m: &Manager, req: &ApiRequest<'_>) -> ApiResponse {
    route(m, req).unwrap_or_else(|e| e)
}
