//! `pmctl label` end to end: runs the binary on temporary backend files.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

const K: usize = 1024;

struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, contents: &[u8]) -> TempFile {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "pmctl-label-{}-{}-{tag}.img",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&p, contents).unwrap();
        TempFile(p)
    }
    fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.0).unwrap()
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

fn pmctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pmctl"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn init_check_show_json() {
    let f = TempFile::new("basic", &vec![0u8; 1 << 20]);
    let o = pmctl(&["label", "init", f.path()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("1020 slots"));
    let o = pmctl(&["label", "check", f.path()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("label area OK: v1.1"));
    let o = pmctl(&["label", "show", f.path(), "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let dimm = &v[0];
    assert_eq!(dimm["dev"], "nmem0");
    assert_eq!(dimm["index"][0]["nslot"], 1020);
    assert_eq!(dimm["index"][0]["labelsize"], 128);
    assert_eq!(dimm["index"][0]["seq"], 3);
    assert_eq!(dimm["index"][1]["seq"], 2);
    assert_eq!(dimm["index"][0]["signature"], "NAMESPACE_INDEX");
    // The index lives in the last 128 KiB: the first 896 KiB are untouched.
    let b = f.bytes();
    assert!(b[..(1 << 20) - 128 * K].iter().all(|&x| x == 0));
    assert_eq!(&b[(1 << 20) - 128 * K..][..15], b"NAMESPACE_INDEX");
}

#[test]
fn version_and_label_size_options() {
    let f = TempFile::new("v12", &vec![0u8; 1 << 20]);
    let o = pmctl(&[
        "label",
        "init",
        f.path(),
        "--label-size",
        "256K",
        "--version",
        "1.2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = pmctl(&["label", "show", f.path(), "--label-size", "256K", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["index"][0]["nslot"], 1022);
    assert_eq!(v[0]["index"][0]["minor"], 2);
    // Read with the wrong label size: the area found is not a label area.
    let o = pmctl(&["label", "check", f.path()]);
    assert_eq!(o.status.code(), Some(1));
    let o = pmctl(&["label", "show", f.path(), "--label-size", "256K"]);
    assert!(
        stdout(&o).contains("format v1.2: 1022 slots of 256 bytes"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn init_refuses_existing_index_and_foreign_data() {
    let f = TempFile::new("twice", &vec![0u8; 512 * K]);
    assert_eq!(pmctl(&["label", "init", f.path()]).status.code(), Some(0));
    let o = pmctl(&["label", "init", f.path(), "--version", "1.2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("already holds a valid v1.1 namespace index"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        pmctl(&["label", "init", f.path(), "--version", "1.2", "--force"])
            .status
            .code(),
        Some(0)
    );
    assert!(stdout(&pmctl(&["label", "check", f.path()])).contains("v1.2"));

    let data: Vec<u8> = (0..512 * K).map(|i| (i * 7 % 251) as u8).collect();
    let g = TempFile::new("foreign", &data);
    let o = pmctl(&["label", "init", g.path()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not labels"), "{}", stderr(&o));
    assert_eq!(g.bytes(), data, "refused init must not write");
    let o = pmctl(&["label", "check", g.path()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("[no-valid-index]"));
    // --force rewrites only the index blocks.
    assert_eq!(
        pmctl(&["label", "init", g.path(), "--force"]).status.code(),
        Some(0)
    );
    let after = g.bytes();
    let lsa = 512 * K - 128 * K;
    assert_eq!(after[..lsa], data[..lsa]);
    assert_eq!(after[lsa + 512..], data[lsa + 512..]);
    assert_eq!(pmctl(&["label", "check", g.path()]).status.code(), Some(0));
}

#[test]
fn corrupt_checksum_is_reported() {
    let f = TempFile::new("corrupt", &vec![0u8; 1 << 20]);
    assert_eq!(pmctl(&["label", "init", f.path()]).status.code(), Some(0));
    let mut b = f.bytes();
    let lsa = (1 << 20) - 128 * K;
    b[lsa + 64] ^= 0x10; // index block 0 checksum
    std::fs::write(&f.0, &b).unwrap();
    let o = pmctl(&["label", "check", f.path()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("error: index block 0: checksum"), "{out}");
    assert!(out.contains("[index-checksum]"), "{out}");
    let o = pmctl(&["label", "check", f.path(), "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["errors"], 1);
    assert_eq!(v["problems"][0]["code"], "index-checksum");
    assert_eq!(v["problems"][0]["severity"], "error");
}

#[test]
fn cookie_check_uses_serial_or_slot() {
    let mut area = vec![0u8; 128 * K];
    nvlabel::init(&mut area, nvlabel::LabelVersion::V1_2).unwrap();
    let label = nvlabel::Label {
        uuid: [0x11; 16],
        nlabel: 1,
        isetcookie: nvlabel::InterleaveSetInfo::qemu(0x123456).cookie2(),
        rawsize: 64 * K as u64,
        type_guid: nvlabel::PMEM_TYPE_GUID,
        ..nvlabel::Label::default()
    };
    nvlabel::add_label(&mut area, &label).unwrap();
    let mut file = vec![0u8; 512 * K];
    file[384 * K..].copy_from_slice(&area);
    let f = TempFile::new("cookie", &file);
    assert_eq!(
        pmctl(&["label", "check", f.path(), "--slot", "0"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        pmctl(&["label", "check", f.path(), "--serial", "0x123456"])
            .status
            .code(),
        Some(0)
    );
    let o = pmctl(&["label", "check", f.path(), "--slot", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("[label-cookie]"), "{}", stdout(&o));
    let o = pmctl(&["label", "show", f.path()]);
    assert!(
        stdout(&o).contains("11111111-1111-1111-1111-111111111111"),
        "{}",
        stdout(&o)
    );
    // stdout is a pipe here: like ndctl, an array even for one DIMM (a bare
    // object only on a terminal).
    let o = pmctl(&["label", "show", f.path(), "-u"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["label"][0]["isetcookie"], "0xba90120012b4dc");
}

#[test]
fn usage_and_io_errors_exit_2() {
    let o = pmctl(&["label", "check", "/nonexistent/pmctl-test.img"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot open"));
    let f = TempFile::new("small", &vec![0u8; 64 * K]);
    let o = pmctl(&["label", "show", f.path()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("smaller than --label-size"),
        "{}",
        stderr(&o)
    );
    let o = pmctl(&["label", "show", f.path(), "--label-size", "4K"]);
    assert_eq!(o.status.code(), Some(2));
    let o = pmctl(&[
        "label",
        "init",
        f.path(),
        "--version",
        "2.0",
        "--label-size",
        "128K",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(pmctl(&["label"]).status.code(), Some(2));
}
