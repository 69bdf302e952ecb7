//! `pmctl host nvdimms`, `pmctl size`, `pmctl probe` end to end: the binary on the sysfs
//! fixture trees captured in L1 (tests/fixtures/make-fixtures.py) and on temporary files.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

fn pmctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pmctl"))
        .args(args)
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", out(o)))
}

struct TempFile(PathBuf);

impl TempFile {
    fn sized(tag: &str, len: u64) -> TempFile {
        let p = std::env::temp_dir().join(format!("pmctl-host-{}-{tag}.img", std::process::id()));
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(len).unwrap();
        TempFile(p)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const MIB: u64 = 1 << 20;

#[test]
fn nvdimms_json_on_l1_capture() {
    let o = pmctl(&[
        "host",
        "nvdimms",
        "--json",
        "--sysfs-root",
        &fixture("l1-four-modes"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let j = json(&o);
    let ns = j["namespaces"].as_array().unwrap();
    let devs: Vec<&str> = ns.iter().map(|n| n["dev"].as_str().unwrap()).collect();
    assert_eq!(
        devs,
        [
            "namespace0.0",
            "namespace0.1",
            "namespace1.0",
            "namespace1.1"
        ]
    );
    let modes: Vec<&str> = ns.iter().map(|n| n["mode"].as_str().unwrap()).collect();
    assert_eq!(modes, ["devdax", "raw", "fsdax", "sector"]);
    let paths: Vec<&str> = ns.iter().map(|n| n["device"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        ["/dev/dax0.0", "/dev/pmem0.1", "/dev/pmem1", "/dev/pmem1.1s"]
    );
    let sizes: Vec<u64> = ns.iter().map(|n| n["size"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [526_385_152, 536_870_912, 526_385_152, 535_265_280]);
    assert_eq!(ns[0]["align"], 2_097_152);
    assert_eq!(ns[1]["align"], Value::Null);
    assert_eq!(ns[0]["numa_node"], "0");
    assert_eq!(ns[0]["region"]["dev"], "region0");
    assert_eq!(ns[0]["region"]["align"], 16_777_216);
    assert_eq!(ns[0]["region"]["iset_id"], 10_248_187_106_440_278u64);
    assert_eq!(ns[3]["region"]["persistence_domain"], "unknown");
    assert!(ns.iter().all(|n| n["in_use_by"].as_array().is_some()));
    assert_eq!(j["regions"].as_array().unwrap().len(), 2);
}

#[test]
fn nvdimms_text_on_quirks() {
    let o = pmctl(&["host", "nvdimms", "--sysfs-root", &fixture("quirks")]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let t = out(&o);
    let row = |dev: &str| {
        t.lines()
            .find(|l| l.starts_with(dev))
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row("namespace0.0"),
        [
            "namespace0.0",
            "devdax",
            "/dev/dax0.0",
            "502M",
            "1G",
            "unknown",
            "region0",
            "unknown",
            "-"
        ]
    );
    assert_eq!(row("namespace0.1")[2], "disabled");
    assert_eq!(
        row("namespace1.1")[..4],
        ["namespace1.1", "sector", "/dev/pmem1.1s", "522720K"]
    );
    assert!(t.contains("region1: size 1G, align 16M, available 0B, persistence_domain cpu_cache"));
    assert!(t.contains("region0: size 1G, align -,"));
}

#[test]
fn nvdimms_errors_and_empty() {
    let o = pmctl(&["host", "nvdimms", "--sysfs-root", "/nonexistent/pmctl"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).contains("sysfs root /nonexistent/pmctl does not exist"),
        "{}",
        err(&o)
    );
    let empty = std::env::temp_dir().join(format!("pmctl-empty-sys-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let o = pmctl(&[
        "host",
        "nvdimms",
        "--json",
        "--sysfs-root",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        json(&o),
        serde_json::json!({"namespaces": [], "regions": []})
    );
    let o = pmctl(&["host", "nvdimms", "--sysfs-root", empty.to_str().unwrap()]);
    assert!(out(&o).starts_with("no NVDIMM regions"), "{}", out(&o));
    std::fs::remove_dir_all(&empty).unwrap();
}

#[test]
fn size_of_a_devdax_namespace_golden() {
    let o = pmctl(&[
        "size",
        "namespace0.0",
        "--sysfs-root",
        &fixture("l1-four-modes"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let t = out(&o);
    assert!(
        t.contains("  -object memory-backend-file,id=memnvdimm0,share=on,mem-path=/dev/dax0.0,size=258M,align=2M,pmem=on\n"),
        "{t}"
    );
    assert!(
        t.contains("  -device nvdimm,id=nvdimm0,memdev=memnvdimm0,label-size=128K\n"),
        "{t}"
    );
    assert!(
        t.contains("guest pmem    256 MiB (268435456 bytes)  (2 x 128 MiB blocks)"),
        "{t}"
    );
    let o = pmctl(&[
        "size",
        "namespace0.0",
        "--json",
        "--id",
        "nv3",
        "--slot",
        "3",
        "--node",
        "0",
        "--sysfs-root",
        &fixture("l1-four-modes"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let j = json(&o);
    assert_eq!(j["device"]["size"], 526_385_152);
    assert_eq!(j["device"]["align"], 2 * MIB);
    assert_eq!(j["device"]["align_source"], "namespace");
    assert_eq!(j["device"]["namespace"], "namespace0.0");
    assert_eq!(j["backend_size"], 258 * MIB);
    assert_eq!(j["pmem_size"], 256 * MIB);
    assert_eq!(j["label_offset"], 258 * MIB - 128 * 1024);
    assert_eq!(j["gap"], 2 * MIB - 128 * 1024);
    assert_eq!(j["unused_tail"], 526_385_152 - 258 * MIB);
    assert_eq!(
        j["args"][1],
        "memory-backend-file,id=memnv3,share=on,mem-path=/dev/dax0.0,size=258M,align=2M,pmem=on"
    );
    assert_eq!(
        j["args"][3],
        "nvdimm,id=nv3,memdev=memnv3,label-size=128K,slot=3,node=0"
    );
}

#[test]
fn size_of_a_sector_namespace_uses_the_128m_default() {
    let o = pmctl(&[
        "size",
        "namespace1.1",
        "--sysfs-root",
        &fixture("l1-four-modes"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    // 535265280 B = 3 blocks + rest; A = 128M: backend 384M, pmem 256M
    assert!(
        out(&o).contains("mem-path=/dev/pmem1.1s,size=384M,align=128M\n"),
        "{}",
        out(&o)
    );
    assert!(
        out(&o).contains("align         128 MiB (default)"),
        "{}",
        out(&o)
    );
}

#[test]
fn size_refusals_exit_2() {
    // 1 GiB devdax alignment on a 502 MiB namespace: cannot hold one aligned unit
    let o = pmctl(&["size", "namespace0.0", "--sysfs-root", &fixture("quirks")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("too small"), "{}", err(&o));
    let o = pmctl(&["size", "namespace0.1", "--sysfs-root", &fixture("quirks")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("namespace0.1 is disabled"), "{}", err(&o));
    let o = pmctl(&["size", "namespace7.7", "--sysfs-root", &fixture("quirks")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("no namespace namespace7.7"), "{}", err(&o));
    let small = TempFile::sized("small", 100 * MIB);
    let o = pmctl(&["size", small.path()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).contains("too small") && err(&o).contains("256 MiB"),
        "{}",
        err(&o)
    );
    let o = pmctl(&["size", "/nonexistent/pmctl.img"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).contains("cannot stat /nonexistent/pmctl.img"),
        "{}",
        err(&o)
    );
    let big = TempFile::sized("badid", 1 << 30);
    let o = pmctl(&["size", big.path(), "--id", "9x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("invalid device id '9x'"), "{}", err(&o));
    let o = pmctl(&["size", big.path(), "--align", "3M"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn size_of_a_plain_file() {
    let f = TempFile::sized("plain", 1 << 30);
    let o = pmctl(&["size", f.path(), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let j = json(&o);
    assert_eq!(j["device"]["kind"], "file");
    assert_eq!(j["device"]["align_source"], "default");
    // 8 blocks, A = 2M: (8-1)*128M + 2M
    assert_eq!(j["backend_size"], 898 * MIB);
    assert_eq!(j["pmem_size"], 896 * MIB);
    // not DAX here: no pmem=on (QEMU would warn that persistence is not guaranteed)
    assert_eq!(j["crash_persistent"], false);
    let obj = j["object"].as_str().unwrap();
    assert!(obj.ends_with(",size=898M,align=2M"), "{obj}");
    // --align 1G: one 1 GiB unit of pmem plus the label needs more than 1 GiB
    let o = pmctl(&["size", f.path(), "--align", "1G"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("align 1 GiB"), "{}", err(&o));
}

#[test]
fn probe_exit_codes() {
    let f = TempFile::sized("probe", 8 * MIB);
    let o = pmctl(&["probe", f.path(), "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let j = json(&o);
    assert_eq!(j["crash_persistent"], false);
    assert!(
        ["page-cache", "volatile"].contains(&j["kind"].as_str().unwrap()),
        "{j}"
    );
    assert!(j["explanation"].as_str().unwrap().len() > 20);
    let o = pmctl(&["probe", f.path()]);
    assert!(out(&o).contains("crash persistent: no"), "{}", out(&o));
    let missing = std::env::temp_dir().join("pmctl-probe-never-created.img");
    let o = pmctl(&["probe", missing.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json(&o)["kind"], "missing");
    let o = pmctl(&["probe", "/dev/null"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("not device DAX"), "{}", err(&o));
}
