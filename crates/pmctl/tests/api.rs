//! `pmctl serve` end to end over real HTTP: a temp state dir, a fake pmvm that
//! records its argv, and a plain std TcpStream client (no HTTP crate on the
//! client side, so the server's framing is really exercised).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

struct Server {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn start_server(tag: &str) -> Server {
    start_server_with(tag, &[])
}

fn start_server_with(tag: &str, extra: &[&str]) -> Server {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("pmctl-api-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::fs::write(dir.join("kernel"), b"kernel").unwrap();
    let fake = dir.join("fake-pmvm");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > {}\n",
            dir.join("argv").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pmctl"))
        .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(dir.join("state"))
        .arg("--pmvm")
        .arg(&fake)
        .args(["--sysfs-root", &fixture("l1-four-modes")])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "pmctl: serving http://127.0.0.1:PORT/ (state ...)"
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    Server { child, addr, dir }
}

/// One request on a fresh connection; returns (status, headers, body).
fn raw(addr: &str, req: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(req).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&out)));
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    (status, head, out[split + 4..].to_vec())
}

fn http(addr: &str, method: &str, path: &str, body: Option<&[u8]>) -> (u16, Value) {
    let body = body.unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    )
    .into_bytes();
    if !body.is_empty() {
        req.extend_from_slice(b"Content-Type: application/json\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
    let (status, head, body) = raw(addr, &req);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let v: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&body)));
    (status, v)
}

fn post(addr: &str, path: &str, v: Value) -> (u16, Value) {
    http(addr, "POST", path, Some(v.to_string().as_bytes()))
}

fn sized_file(dir: &Path, name: &str, len: u64) -> String {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().set_len(len).unwrap();
    p.to_str().unwrap().to_owned()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn index_page_references_the_api() {
    let s = start_server("index");
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        s.addr
    );
    let (status, head, body) = raw(&s.addr, req.as_bytes());
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("text/html"), "{head}");
    let html = String::from_utf8(body).unwrap();
    for p in [
        "/api/host/nvdimms",
        "/api/vms",
        "/nvdimms",
        "/start",
        "/stop",
        "dry_run",
    ] {
        assert!(html.contains(p), "page lacks {p}");
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "external assets"
    );
}

#[test]
fn vm_lifecycle_and_errors() {
    let s = start_server("life");
    let a = &s.addr;
    let kernel = s.dir.join("kernel").to_str().unwrap().to_owned();
    let dev = sized_file(&s.dir, "backing", 1 << 30);

    let (st, v) = post(
        a,
        "/api/vms",
        json!({"name": "web", "memory": "512M", "kernel": kernel}),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["memory"], 512u64 << 20);
    let (st, v) = post(a, "/api/vms", json!({"name": "web", "kernel": kernel}));
    assert_eq!(st, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("already exists"));
    post(a, "/api/vms", json!({"name": "other", "kernel": kernel}));
    // Disks: raw images, read-only ones flagged; a missing image is a 400 naming it.
    let disk = sized_file(&s.dir, "root.raw", 1 << 20);
    let (st, v) = post(
        a,
        "/api/vms",
        json!({"name": "withdisk", "kernel": kernel,
               "disks": [{"path": disk}, {"path": disk.clone() + "-missing", "readonly": true}]}),
    );
    assert_eq!(st, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("-missing"), "{v}");
    let (st, v) = post(
        a,
        "/api/vms",
        json!({"name": "withdisk", "kernel": kernel, "disks": [{"path": disk}]}),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["disks"][0]["readonly"], false);
    let (st, v) = http(a, "GET", "/api/vms/withdisk/args", None);
    assert_eq!(st, 200, "{v}");
    assert!(
        v.as_array().unwrap().iter().any(|x| x
            .as_str()
            .unwrap()
            .ends_with("root.raw,format=raw,if=virtio")),
        "{v}"
    );
    let (st, _) = http(a, "DELETE", "/api/vms/withdisk", None);
    assert_eq!(st, 200);
    // No kernel: a firmware boot from the disk (-bios when given); nothing to boot is a 400.
    let bios = sized_file(&s.dir, "bios.bin", 64 << 10);
    let (st, v) = post(
        a,
        "/api/vms",
        json!({"name": "fw", "bios": bios, "disks": [{"path": disk}]}),
    );
    assert_eq!(
        (st, &v["boot"], &v["kernel"]),
        (201, &json!("firmware"), &Value::Null),
        "{v}"
    );
    let (_, v) = http(a, "GET", "/api/vms/fw/args", None);
    let args: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert!(args.contains(&"-bios") && !args.contains(&"-kernel"), "{v}");
    let (st, v) = post(
        a,
        "/api/vms",
        json!({"name": "fw2", "append": "quiet", "disks": [{"path": disk}]}),
    );
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("--append is only allowed with --kernel"))
    );
    let (st, v) = post(a, "/api/vms", json!({"name": "none"}));
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("nothing to boot: give --kernel or --disk"))
    );
    assert_eq!(http(a, "DELETE", "/api/vms/fw", None).0, 200);

    // Errors: unknown VM, bad name, malformed JSON, unknown field, oversized body, method.
    let (st, v) = http(a, "GET", "/api/vms/nosuch", None);
    assert_eq!(st, 404, "{v}");
    let (st, _) = http(a, "GET", "/api/vms/..%2Fetc", None);
    assert_eq!(st, 400);
    let (st, v) = http(a, "POST", "/api/vms", Some(b"{\"name\": \"x\", "));
    assert_eq!(st, 400);
    assert!(v["error"].as_str().unwrap().contains("invalid JSON"), "{v}");
    let (st, _) = post(
        a,
        "/api/vms",
        json!({"name": "x", "kernel": kernel, "evil": 1}),
    );
    assert_eq!(st, 400);
    let big = vec![b' '; 70 * 1024];
    let (st, v) = http(a, "POST", "/api/vms", Some(&big));
    assert_eq!(st, 413, "{v}");
    let (st, _) = http(a, "PUT", "/api/vms", None);
    assert_eq!(st, 405);
    let (st, _) = http(a, "GET", "/api/nothing", None);
    assert_eq!(st, 404);

    // Size preview, dry run, attach.
    let (st, size) = http(a, "GET", &format!("/api/size?path={}", enc(&dev)), None);
    assert_eq!(st, 200, "{size}");
    let guest = size["sizing"]["guest_size"].as_u64().unwrap();
    assert_eq!(guest, 7 * (128 << 20));
    let (st, dry) = post(
        a,
        "/api/vms/web/nvdimms",
        json!({"path": dev, "dry_run": true}),
    );
    assert_eq!(st, 200, "{dry}");
    assert_eq!(dry["saved"], false);
    let (st, att) = post(a, "/api/vms/web/nvdimms", json!({"path": dev}));
    assert_eq!(st, 201, "{att}");
    assert_eq!(att["assignment"]["guest_size"].as_u64(), Some(guest));
    assert_eq!(att["assignment"]["label_size"].as_u64(), Some(128 << 10));
    assert!(
        att["device"]["warnings"]
            .to_string()
            .contains("persistence not guaranteed")
    );
    let (st, v) = post(a, "/api/vms/other/nvdimms", json!({"path": dev}));
    assert_eq!(st, 409, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("already assigned to VM 'web'")
    );
    let (st, v) = post(a, "/api/vms/web/nvdimms", json!({"path": 42}));
    assert_eq!(st, 400, "{v}");

    // Show has the address; args parse back to the same plan (checked in unit tests).
    let (st, show) = http(a, "GET", "/api/vms/web", None);
    assert_eq!(st, 200);
    assert_eq!(show["nvdimms"][0]["gpa"], att["gpa"]);
    assert!(show["nvdimms"][0]["gpa"].as_u64().is_some());
    let (st, args) = http(a, "GET", "/api/vms/web/args", None);
    assert_eq!(st, 200);
    let args: Vec<String> = serde_json::from_value(args).unwrap();
    assert!(
        args.iter().any(|x| x.contains(&format!("mem-path={dev}"))),
        "{args:?}"
    );

    // The console: empty before the VM ever ran, then its tail, bounded, and what is new.
    let (st, c) = http(a, "GET", "/api/vms/web/console", None);
    assert_eq!(
        (st, c["text"].as_str(), c["size"].as_u64()),
        (200, Some(""), Some(0)),
        "{c}"
    );
    std::fs::write(
        s.dir.join("state/web.console"),
        "Linux version 6.1\nlogin: ",
    )
    .unwrap();
    let (st, c) = http(a, "GET", "/api/vms/web/console?bytes=7", None);
    assert_eq!(
        (st, c["text"].as_str(), c["skipped"].as_u64()),
        (200, Some("login: "), Some(18)),
        "{c}"
    );
    let (st, c) = http(a, "GET", "/api/vms/web/console?from=25", None);
    assert_eq!((st, c["text"].as_str()), (200, Some("")), "{c}");
    let (st, c) = http(a, "GET", "/api/vms/web/console?bytes=lots", None);
    assert_eq!(st, 400, "{c}");
    let (st, _) = http(a, "GET", "/api/vms/nosuch/console", None);
    assert_eq!(st, 404);
    let cli = Command::new(env!("CARGO_BIN_EXE_pmctl"))
        .args(["vm", "console", "web", "--bytes", "7", "--state-dir"])
        .arg(s.dir.join("state"))
        .output()
        .unwrap();
    assert!(cli.status.success());
    assert_eq!(cli.stdout, b"login: ");

    // The CLI on the same state directory prints the same command line.
    let cli = Command::new(env!("CARGO_BIN_EXE_pmctl"))
        .args(["vm", "args", "web", "--state-dir"])
        .arg(s.dir.join("state"))
        .output()
        .unwrap();
    assert!(cli.status.success());
    let cli_args: Vec<String> = String::from_utf8(cli.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(cli_args, args);

    // Start runs the fake pmvm with exactly these arguments.
    let (st, v) = http(a, "POST", "/api/vms/web/start", None);
    assert_eq!(st, 200, "{v}");
    let recorded = std::fs::read_to_string(s.dir.join("argv")).unwrap();
    assert_eq!(recorded.lines().collect::<Vec<_>>(), args);
    let (st, v) = http(a, "POST", "/api/vms/web/stop", None);
    assert_eq!(st, 409, "{v}");
    let (st, v) = http(a, "GET", "/api/vms/web/status", None);
    assert_eq!((st, &v["running"]), (200, &json!(false)));

    // Detach, list, delete.
    let (st, v) = http(
        a,
        "DELETE",
        &format!("/api/vms/web/nvdimms?path={}", enc(&dev)),
        None,
    );
    assert_eq!(st, 200, "{v}");
    let (st, v) = http(
        a,
        "DELETE",
        &format!("/api/vms/web/nvdimms?path={}", enc(&dev)),
        None,
    );
    assert_eq!(st, 404, "{v}");
    let (st, list) = http(a, "GET", "/api/vms", None);
    assert_eq!(st, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    let (st, _) = http(a, "DELETE", "/api/vms/web", None);
    assert_eq!(st, 200);
    let (st, _) = http(a, "GET", "/api/vms/web", None);
    assert_eq!(st, 404);
}

#[test]
fn host_nvdimms_lists_fixture_namespaces() {
    let s = start_server("host");
    let (st, v) = http(&s.addr, "GET", "/api/host/nvdimms", None);
    assert_eq!(st, 200, "{v}");
    let ns = v["namespaces"].as_array().unwrap();
    assert!(!ns.is_empty());
    for n in ns {
        assert!(
            n.get("assigned_to").is_some() && n.get("mode").is_some(),
            "{n}"
        );
    }
    assert!(v["regions"].as_array().is_some_and(|r| !r.is_empty()));
}

#[test]
fn browser_cross_origin_and_rebinding_are_refused() {
    let s = start_server("csrf");
    let a = &s.addr;
    let body = r#"{"name":"csrf","kernel":"/bin/true"}"#;
    let send = |host: &str, origin: &str| {
        let req = format!(
            "POST /api/vms HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nConnection: close\r\n\
             Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        raw(a, req.as_bytes())
    };
    // a page elsewhere posting a "simple" request (no CORS preflight) to the loopback API
    let (st, _, b) = send(a, "http://evil.example");
    assert_eq!(st, 403, "{}", String::from_utf8_lossy(&b));
    // DNS rebinding: the page's own name, resolved to 127.0.0.1
    let (st, _, b) = send("evil.example:80", "http://evil.example:80");
    assert_eq!(st, 403, "{}", String::from_utf8_lossy(&b));
    // nothing was created
    let (st, v) = http(a, "GET", "/api/vms", None);
    assert_eq!(st, 200);
    assert!(!v.to_string().contains("csrf"), "{v}");
    // the UI itself (same origin) still works
    let (st, _, b) = send(a, &format!("http://{a}"));
    assert_ne!(st, 403, "{}", String::from_utf8_lossy(&b));
}

#[test]
fn serve_refuses_remote_without_flag() {
    let o = Command::new(env!("CARGO_BIN_EXE_pmctl"))
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--state-dir",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("--allow-remote") && e.contains("--token-file"),
        "{e}"
    );
    // --allow-remote alone is not enough either: it needs a token.
    let o = Command::new(env!("CARGO_BIN_EXE_pmctl"))
        .args(["serve", "--listen", "0.0.0.0:0", "--allow-remote"])
        .args(["--state-dir", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("needs --token-file"), "{e}");
}

#[test]
fn token_is_required_on_the_api_when_configured() {
    let dir = std::env::temp_dir().join(format!("pmctl-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let short = dir.join("short");
    std::fs::write(&short, "tooshort\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_pmctl"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            "/nonexistent",
        ])
        .arg("--token-file")
        .arg(&short)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("at least 16"));

    let good = dir.join("token");
    std::fs::write(&good, "s3cret-token-0123456789\nignored second line\n").unwrap();
    let s = start_server_with("token", &["--token-file", good.to_str().unwrap()]);
    let get = |auth: Option<&str>| {
        let mut req = format!(
            "GET /api/vms HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            s.addr
        );
        if let Some(a) = auth {
            req.push_str(&format!("Authorization: {a}\r\n"));
        }
        req.push_str("\r\n");
        raw(&s.addr, req.as_bytes())
    };
    let (status, head, body) = get(None);
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{head}"
    );
    assert_eq!(get(Some("Bearer s3cret-token-012345678")).0, 401);
    assert_eq!(get(Some("Bearer wrong-token-0123456789")).0, 401);
    let (status, _, body) = get(Some("Bearer s3cret-token-0123456789"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    // The page itself is public: it asks for the token.
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        s.addr
    );
    let (status, _, page) = raw(&s.addr, req.as_bytes());
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("Authorization"));
    let _ = std::fs::remove_dir_all(&dir);
}
