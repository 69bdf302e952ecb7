//! Property tests for host discovery: hostile or truncated sysfs content never
//! panics the parser, and the small text parsers agree with their spec.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::inuse::arg_mentions;
use super::sysfs::{NumaNode, attr_selected, discover};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ft = e.file_type().unwrap();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if ft.is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            files(&e.path(), out);
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Overwrite random attributes of the L1 capture with random bytes (or
    /// delete them): discovery still returns, every namespace keeps its name.
    #[test]
    fn discover_survives_garbage(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40))), 1..30),
    ) {
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/l1-four-modes");
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dst = std::env::temp_dir().join(format!(
            "pmctl-garbage-{}-{:?}-{}",
            std::process::id(),
            std::thread::current().id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dst);
        copy_tree(&src, &dst);
        let mut all = Vec::new();
        files(&dst.join("devices"), &mut all);
        all.sort();
        for (idx, content) in &edits {
            let f = idx.get(&all);
            match content {
                Some(bytes) => std::fs::write(f, bytes).unwrap(),
                None => { let _ = std::fs::remove_file(f); }
            }
        }
        let h = discover(&dst).unwrap();
        for ns in &h.namespaces {
            prop_assert!(ns.dev.starts_with("namespace"));
            let _ = serde_json::to_string(ns).unwrap();
        }
        std::fs::remove_dir_all(&dst).unwrap();
    }
}

proptest! {
    #[test]
    fn mentions_found_between_delimiters(
        p in "/[a-z0-9_]{1,8}(/[a-z0-9._]{1,8}){0,3}",
        pre in prop::sample::select(vec!["", "mem-path=", "a=b,mem-path=", "x "]),
        post in prop::sample::select(vec!["", ",size=1G", " y", ",share=on,pmem=on"]),
        extra in "[a-z0-9.s]{1,3}",
    ) {
        let arg = format!("{pre}{p}{post}");
        prop_assert!(arg_mentions(&arg, &p));
        // a longer name that starts with p is a different device
        let longer = format!("{pre}{p}{extra}{post}");
        prop_assert!(!arg_mentions(&longer, &p));
    }

    #[test]
    fn mentions_never_panics(arg in "\\PC{0,40}", p in "\\PC{0,10}") {
        let _ = arg_mentions(&arg, &p);
    }

    #[test]
    fn selected_choice(vals in proptest::collection::vec(1u64..1_000_000, 1..8), pick in any::<prop::sample::Index>()) {
        let k = pick.index(vals.len());
        let text: Vec<String> = vals.iter().enumerate()
            .map(|(i, v)| if i == k { format!("[{v}]") } else { v.to_string() })
            .collect();
        let dir = std::env::temp_dir().join(format!("pmctl-choice-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = format!("a{:?}", std::thread::current().id()).replace(|c: char| !c.is_alphanumeric(), "");
        std::fs::write(dir.join(&f), text.join(" ") + " \n").unwrap();
        prop_assert_eq!(attr_selected(&dir, &f), Some(vals[k]));
        let _ = std::fs::remove_file(dir.join(&f));
    }

    #[test]
    fn numa_node_text(n in any::<i64>()) {
        let v = NumaNode::from_attr_text(&n.to_string());
        if (0..=i64::from(u32::MAX)).contains(&n) {
            prop_assert_eq!(v.to_string(), n.to_string());
        } else {
            prop_assert_eq!(v.to_string(), "unknown");
        }
    }
}
