//! Parser tests on sysfs trees captured in L1 (tests/fixtures, see make-fixtures.py),
//! checked against `ndctl list -NRD -v` from the same boot.

use std::path::PathBuf;

use serde_json::Value;

use super::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn ns<'a>(h: &'a HostNvdimms, dev: &str) -> &'a Namespace {
    h.namespaces
        .iter()
        .find(|n| n.dev == dev)
        .unwrap_or_else(|| panic!("{dev} missing: {h:#?}"))
}

#[test]
fn matches_ndctl_field_by_field() {
    let host = discover(&fixture("l1-four-modes")).unwrap();
    let text = std::fs::read_to_string(fixture("l1-four-modes.ndctl.json")).unwrap();
    let nd: Value = serde_json::from_str(&text).unwrap();
    let regions = nd["regions"].as_array().unwrap();
    assert_eq!(host.regions.len(), regions.len());
    let mut seen = 0;
    for r in regions {
        let mine = host
            .regions
            .iter()
            .find(|x| x.dev == r["dev"].as_str().unwrap())
            .unwrap();
        assert_eq!(mine.size, r["size"].as_u64());
        assert_eq!(mine.align, r["align"].as_u64());
        assert_eq!(mine.available_size, r["available_size"].as_u64());
        assert_eq!(mine.kind.as_deref(), r["type"].as_str());
        assert_eq!(mine.iset_id, r["iset_id"].as_u64());
        assert_eq!(
            Some(mine.persistence_domain.as_str()),
            r["persistence_domain"].as_str()
        );
        assert_eq!(mine.numa_node.to_string(), r["numa_node"].to_string());
        for n in r["namespaces"].as_array().unwrap() {
            seen += 1;
            let m = ns(&host, n["dev"].as_str().unwrap());
            assert_eq!(Some(m.mode.as_str()), n["mode"].as_str(), "{}", m.dev);
            assert_eq!(m.size, n["size"].as_u64(), "{}", m.dev);
            assert_eq!(m.align, n["align"].as_u64(), "{}", m.dev);
            assert_eq!(m.map.as_deref(), n["map"].as_str(), "{}", m.dev);
            assert_eq!(m.uuid.as_deref(), n["uuid"].as_str(), "{}", m.dev);
            assert_eq!(m.sector_size, n["sector_size"].as_u64(), "{}", m.dev);
            assert_eq!(m.numa_node.to_string(), n["numa_node"].to_string());
            assert_eq!(m.region.dev, mine.dev);
            assert_eq!(m.region.iset_id, mine.iset_id);
            let node = n["blockdev"]
                .as_str()
                .or_else(|| n["chardev"].as_str())
                .or_else(|| n["daxregion"]["devices"][0]["chardev"].as_str())
                .unwrap();
            assert_eq!(
                m.device,
                Some(PathBuf::from("/dev").join(node)),
                "{}",
                m.dev
            );
            assert_eq!(m.state, "enabled");
        }
    }
    assert_eq!(seen, 4);
    assert_eq!(
        host.namespaces.len(),
        4,
        "idle seed namespaces (size 0) are skipped"
    );
}

#[test]
fn golden_l1_values() {
    let h = discover(&fixture("l1-four-modes")).unwrap();
    let d = ns(&h, "namespace0.0");
    assert_eq!(d.mode, Mode::Devdax);
    assert_eq!(d.holder.as_deref(), Some("dax0.0"));
    assert_eq!(d.size, Some(526_385_152));
    assert_eq!(d.raw_size, Some(536_870_912));
    assert_eq!(d.device.as_deref(), Some(Path::new("/dev/dax0.0")));
    // btt1.0 claims namespace1.1: personality numbers need not match the namespace's
    let s = ns(&h, "namespace1.1");
    assert_eq!(
        (s.mode, s.holder.as_deref()),
        (Mode::Sector, Some("btt1.0"))
    );
    assert_eq!(s.sector_size, Some(4096));
    assert_eq!(s.region.iset_id, Some(0x0024_68ae_0012_3457));
    let r = ns(&h, "namespace0.1");
    assert_eq!(
        (r.mode, r.size, r.align, r.map.as_deref()),
        (Mode::Raw, Some(1 << 29), None, None)
    );
    let json = serde_json::to_value(&h).unwrap();
    assert_eq!(json["namespaces"][0]["numa_node"], "0");
    assert_eq!(
        json["namespaces"][0]["region"]["persistence_domain"],
        "unknown"
    );
}

#[test]
fn quirks_numa_unknown_missing_attributes_and_fallbacks() {
    let h = discover(&fixture("quirks")).unwrap();
    let d = ns(&h, "namespace0.0");
    assert_eq!(d.numa_node, NumaNode(None));
    assert_eq!(d.align, Some(1 << 30));
    let json = serde_json::to_value(d).unwrap();
    assert_eq!(json["numa_node"], "unknown", "never missing, never -1");
    assert_eq!(json["region"]["align"], Value::Null);
    // attribute missing entirely is "unknown" too
    assert_eq!(ns(&h, "namespace1.0").numa_node.to_string(), "unknown");
    // no `holder`: found through btt1.0/namespace; no btt `size`: the disk's size
    let s = ns(&h, "namespace1.1");
    assert_eq!(s.mode, Mode::Sector);
    assert_eq!(s.holder.as_deref(), Some("btt1.0"));
    assert_eq!(s.size, Some(1_045_440 * 512));
    // disabled, label-less raw namespace
    let r = ns(&h, "namespace0.1");
    assert_eq!(
        (r.state, r.device.as_deref(), r.uuid.as_deref()),
        ("disabled", None, None)
    );
    assert_eq!(r.sector_size, None);
    let r1 = h.regions.iter().find(|r| r.dev == "region1").unwrap();
    assert_eq!(r1.persistence_domain, "cpu_cache");
    assert_eq!(
        ns(&h, "namespace1.0").region.persistence_domain,
        "cpu_cache"
    );
}

#[test]
fn mode_mapping() {
    for (sys, m) in [
        ("raw", Mode::Raw),
        ("safe", Mode::Sector),
        ("memory", Mode::Fsdax),
        ("dax", Mode::Devdax),
    ] {
        assert_eq!(Mode::from_sysfs(sys), Some(m));
    }
    assert_eq!(Mode::from_sysfs("bogus"), None);
    assert_eq!(Mode::from_holder("btt12.3"), Some(Mode::Sector));
    assert_eq!(Mode::from_holder("pfn0.0"), Some(Mode::Fsdax));
    assert_eq!(Mode::from_holder("dax1.0"), Some(Mode::Devdax));
    assert_eq!(Mode::from_holder("namespace0.0"), None);
}

#[test]
fn choice_attributes_and_numbers() {
    let dir = std::env::temp_dir().join(format!("pmctl-attr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (v, want) in [
        ("[512] 4096\n", Some(512)),
        ("512 520 528 [4096] 4104\n", Some(4096)),
        ("512 4096\n", None),
        ("4096\n", Some(4096)),
        ("", None),
        ("[x]", None),
    ] {
        std::fs::write(dir.join("a"), v).unwrap();
        assert_eq!(attr_selected(&dir, "a"), want, "{v:?}");
    }
    std::fs::write(dir.join("c"), "0x1000000\n").unwrap();
    assert_eq!(attr_u64(&dir, "c"), Some(16 << 20));
    assert_eq!(attr_u64(&dir, "missing"), None);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(dev_numbers("namespace12.3", "namespace"), Some((12, 3)));
    assert_eq!(dev_numbers("region7", "region"), Some((7, 0)));
    assert_eq!(dev_numbers("dax_region", "dax"), None);
}

#[test]
fn empty_or_missing_roots() {
    let dir = std::env::temp_dir().join(format!("pmctl-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert_eq!(discover(&dir).unwrap(), HostNvdimms::default());
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(discover(&dir), Err(DiscoveryError::NoRoot(_))));
}
