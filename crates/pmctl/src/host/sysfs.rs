//! Host NVDIMM discovery straight from sysfs (`/sys/bus/nd/devices`,
//! `/sys/bus/dax/devices`), reporting the names and numbers `ndctl list -NR -v`
//! would (management-and-labels.md §3).
//!
//! Why not parse ndctl's JSON like vdsm does: its shape changes with options
//! (array vs object, humanised numbers, `numa_node` hidden without `-v` or
//! when the kernel says -1), it needs the ndctl package, and it is slow. The
//! sysfs attributes it is built from are few and de-facto stable; every one
//! we read is optional here, so an older or newer kernel degrades to `null`
//! rather than an error.
//!
//! Mapping (kernel → ndctl):
//! * namespace `holder` names the claiming personality device: `bttX.Y` →
//!   `sector`, `pfnX.Y` → `fsdax`, `daxX.Y` → `devdax`; without a holder the
//!   namespace `mode` attribute decides (`raw`, `safe` → `sector`, `memory`
//!   → `fsdax`, `dax` → `devdax`).
//! * `size` is the personality's usable size (pfn/dax/btt `size`), the
//!   namespace size for raw: what ndctl calls `size`.
//! * pfn/dax `mode` (`ram`/`pmem`/`none`) is ndctl's `map` (`mem`/`dev`/`none`).
//! * region `set_cookie` is ndctl's `iset_id`; an empty `persistence_domain`
//!   is ndctl's `"unknown"`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Sub-path of the nd bus device directory under the sysfs root.
pub const ND_DEVICES: &str = "bus/nd/devices";
/// Sub-path of the dax bus device directory under the sysfs root.
pub const DAX_DEVICES: &str = "bus/dax/devices";

/// ndctl's namespace mode names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// No personality: `/dev/pmemX[.Y]`, the namespace itself.
    Raw,
    /// BTT (sysfs `safe`): `/dev/pmemX[.Y]s`.
    Sector,
    /// PFN info block (sysfs `memory`): `/dev/pmemX[.Y]`, mountable with `-o dax`.
    Fsdax,
    /// Device DAX (sysfs `dax`): `/dev/daxX.Y`.
    Devdax,
}

impl Mode {
    /// ndctl's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Raw => "raw",
            Mode::Sector => "sector",
            Mode::Fsdax => "fsdax",
            Mode::Devdax => "devdax",
        }
    }

    /// From the namespace's sysfs `mode` attribute (old ndctl names accepted too).
    pub fn from_sysfs(s: &str) -> Option<Mode> {
        match s {
            "raw" => Some(Mode::Raw),
            "safe" | "sector" => Some(Mode::Sector),
            "memory" | "fsdax" => Some(Mode::Fsdax),
            "dax" | "devdax" => Some(Mode::Devdax),
            _ => None,
        }
    }

    /// From a personality device name (`btt0.1`, `pfn1.0`, `dax0.0`).
    fn from_holder(name: &str) -> Option<Mode> {
        let kind = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
        match kind {
            "btt" => Some(Mode::Sector),
            "pfn" => Some(Mode::Fsdax),
            "dax" => Some(Mode::Devdax),
            _ => None,
        }
    }
}

/// A NUMA node as the kernel reports it; `-1` (or no attribute) is "unknown".
/// Serialised as a string ("0", "unknown"), like vdsm's API declares it, so
/// consumers get one type whatever the kernel says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumaNode(pub Option<u32>);

impl NumaNode {
    fn from_attr(v: Option<String>) -> NumaNode {
        v.map(|s| NumaNode::from_attr_text(&s))
            .unwrap_or(NumaNode(None))
    }

    /// From the attribute text: a node number, or `-1`/garbage for unknown.
    pub fn from_attr_text(s: &str) -> NumaNode {
        NumaNode(
            s.trim()
                .parse::<i64>()
                .ok()
                .and_then(|n| u32::try_from(n).ok()),
        )
    }
}

impl std::fmt::Display for NumaNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("unknown"),
        }
    }
}

impl Serialize for NumaNode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An NVDIMM region (`regionN`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Region {
    /// `regionN`.
    pub dev: String,
    /// Bytes.
    pub size: Option<u64>,
    /// Namespace start/size alignment (bytes); absent on label-less regions of old kernels.
    pub align: Option<u64>,
    /// Free capacity for new namespaces.
    pub available_size: Option<u64>,
    /// `pmem` or `blk`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `cpu_cache`, `memory_controller`, `none` or `unknown`.
    pub persistence_domain: String,
    /// Interleave-set cookie (sysfs `set_cookie`), ndctl's `iset_id`.
    pub iset_id: Option<u64>,
    /// NUMA node.
    pub numa_node: NumaNode,
    /// Bound to a driver (ndctl shows disabled regions only with `-i`).
    pub enabled: bool,
}

/// A host namespace with the personality that claims it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Namespace {
    /// `namespaceX.Y`.
    pub dev: String,
    /// ndctl mode.
    pub mode: Mode,
    /// Where `struct page`s live (fsdax/devdax): `mem`, `dev` or `none`.
    pub map: Option<String>,
    /// `/dev/pmemX`, `/dev/pmemX.Ys`, `/dev/daxX.Y`; `None` when disabled.
    pub device: Option<PathBuf>,
    /// Usable bytes (ndctl `size`).
    pub size: Option<u64>,
    /// The namespace's own size (includes info block and memmap reserve).
    pub raw_size: Option<u64>,
    /// Personality alignment (fsdax/devdax only).
    pub align: Option<u64>,
    /// Logical sector size (raw/sector).
    pub sector_size: Option<u64>,
    /// Personality uuid (btt/pfn/dax), else the namespace uuid (labeled raw).
    pub uuid: Option<String>,
    /// NUMA node of the namespace.
    pub numa_node: NumaNode,
    /// Claiming personality device (`pfn1.0`, `btt1.1`, `dax0.0`).
    pub holder: Option<String>,
    /// `enabled` or `disabled` (neither the namespace nor its holder has a driver).
    pub state: &'static str,
    /// The region it lives in (copied from [`HostNvdimms::regions`]).
    pub region: RegionSummary,
}

/// The region fields repeated in each namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionSummary {
    /// `regionN`.
    pub dev: String,
    /// Bytes.
    pub size: Option<u64>,
    /// Bytes.
    pub align: Option<u64>,
    /// See [`Region::persistence_domain`].
    pub persistence_domain: String,
    /// See [`Region::iset_id`].
    pub iset_id: Option<u64>,
}

/// Everything discovered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostNvdimms {
    /// Namespaces with a non-zero size, by region then index.
    pub namespaces: Vec<Namespace>,
    /// All regions, by number.
    pub regions: Vec<Region>,
}

/// Discovery failures (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The sysfs root itself is missing.
    #[error("sysfs root {0} does not exist; pass the directory holding bus/nd (default /sys)")]
    NoRoot(PathBuf),
    /// A directory could not be listed.
    #[error("cannot list {path}: {source}")]
    List {
        /// Directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// One attribute, trimmed; `None` when missing or unreadable.
pub fn attr(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// A numeric attribute: decimal or `0x` hex (`set_cookie`, `resource`).
pub fn attr_u64(dir: &Path, name: &str) -> Option<u64> {
    parse_u64(&attr(dir, name)?)
}

fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// A choice attribute such as `sector_size` ("512 520 [4096] 4104"): the
/// bracketed (selected) value, or the value when there is only one.
pub fn attr_selected(dir: &Path, name: &str) -> Option<u64> {
    let v = attr(dir, name)?;
    let mut words = v.split_whitespace();
    if let Some(sel) = v
        .split_whitespace()
        .find_map(|w| w.strip_prefix('[')?.strip_suffix(']'))
    {
        return parse_u64(sel);
    }
    match (words.next(), words.next()) {
        (Some(only), None) => parse_u64(only),
        _ => None,
    }
}

/// Non-empty attribute.
fn attr_nonempty(dir: &Path, name: &str) -> Option<String> {
    attr(dir, name).filter(|s| !s.is_empty())
}

/// Bound to a driver (`driver` link present; dangling is fine, lstat only).
fn has_driver(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir.join("driver")).is_ok()
}

/// `(X, Y)` of `prefixX.Y` / `(X, 0)` of `prefixX`.
pub fn dev_numbers(name: &str, prefix: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix(prefix)?;
    let (a, b) = rest.split_once('.').unwrap_or((rest, "0"));
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Names of the entries of a directory (empty when it does not exist).
fn list(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    v.sort();
    v
}

/// The single `block/<disk>` child of a device directory.
fn block_child(dir: &Path) -> Option<String> {
    list(&dir.join("block")).into_iter().next()
}

/// Size of a disk from its `size` attribute (512-byte sectors whatever the logical block size).
fn block_size(dir: &Path, disk: &str) -> Option<u64> {
    attr_u64(&dir.join("block").join(disk), "size")?.checked_mul(512)
}

/// A btt/pfn/dax personality device on the nd bus.
#[derive(Debug)]
struct Personality {
    dir: PathBuf,
    namespace: Option<String>,
}

fn read_region(dir: &Path, dev: &str) -> Region {
    let kind = match attr(dir, "nstype").as_deref() {
        Some("4") | Some("5") => Some("pmem".to_owned()),
        Some("6") => Some("blk".to_owned()),
        _ => match attr(dir, "devtype").as_deref() {
            Some("nd_pmem") => Some("pmem".to_owned()),
            Some("nd_blk") => Some("blk".to_owned()),
            Some("nd_volatile") => Some("volatile".to_owned()),
            _ => None,
        },
    };
    let pd = attr(dir, "persistence_domain").unwrap_or_default();
    let persistence_domain = if pd.contains("cpu_cache") {
        "cpu_cache"
    } else if pd.contains("memory_controller") {
        "memory_controller"
    } else if pd == "none" {
        "none"
    } else {
        "unknown"
    };
    Region {
        dev: dev.to_owned(),
        size: attr_u64(dir, "size"),
        align: attr_u64(dir, "align"),
        available_size: attr_u64(dir, "available_size"),
        kind,
        persistence_domain: persistence_domain.to_owned(),
        iset_id: attr_u64(dir, "set_cookie").filter(|&c| c != 0),
        numa_node: NumaNode::from_attr(attr(dir, "numa_node")),
        enabled: has_driver(dir),
    }
}

/// The character device of an nd dax personality: its `daxA.B` child, or the
/// dax-bus device whose sysfs parent is this personality.
fn dax_chardev(root: &Path, nd_dax: &Path, nd_name: &str) -> Option<String> {
    let is_dax = |n: &str| dev_numbers(n, "dax").is_some();
    if let Some(c) = list(nd_dax)
        .into_iter()
        .find(|n| is_dax(n) && nd_dax.join(n).is_dir())
    {
        return Some(c);
    }
    let bus = root.join(DAX_DEVICES);
    list(&bus).into_iter().find(|n| {
        std::fs::canonicalize(bus.join(n))
            .ok()
            .and_then(|p| p.parent().and_then(|q| q.file_name()).map(|f| f == nd_name))
            .unwrap_or(false)
    })
}

/// Discover regions and namespaces under `root` (normally `/sys`).
pub fn discover(root: &Path) -> Result<HostNvdimms, DiscoveryError> {
    if !root.is_dir() {
        return Err(DiscoveryError::NoRoot(root.to_owned()));
    }
    let nd = root.join(ND_DEVICES);
    if !nd.is_dir() {
        // libnvdimm not loaded (or no NVDIMMs at all): nothing to report.
        return Ok(HostNvdimms::default());
    }
    std::fs::read_dir(&nd).map_err(|source| DiscoveryError::List {
        path: nd.clone(),
        source,
    })?;
    let names = list(&nd);

    let mut regions: BTreeMap<u32, Region> = BTreeMap::new();
    let mut personalities: BTreeMap<String, Personality> = BTreeMap::new();
    let mut namespaces: Vec<((u32, u32), String)> = Vec::new();
    for name in &names {
        let dir = nd.join(name);
        if let Some((r, _)) = dev_numbers(name, "region") {
            regions.insert(r, read_region(&dir, name));
        } else if let Some(n) = dev_numbers(name, "namespace") {
            namespaces.push((n, name.clone()));
        } else if ["btt", "pfn", "dax"]
            .iter()
            .any(|p| dev_numbers(name, p).is_some())
        {
            let namespace = attr_nonempty(&dir, "namespace");
            personalities.insert(name.clone(), Personality { dir, namespace });
        }
    }
    namespaces.sort();

    let mut out = Vec::new();
    for ((region_no, _), name) in namespaces {
        let dir = nd.join(&name);
        let raw_size = attr_u64(&dir, "size");
        if raw_size.unwrap_or(0) == 0 {
            continue; // idle seed namespace (ndctl hides these too)
        }
        let holder = attr_nonempty(&dir, "holder")
            .filter(|h| personalities.contains_key(h))
            .or_else(|| {
                personalities
                    .iter()
                    .find(|(_, p)| p.namespace.as_deref() == Some(name.as_str()))
                    .map(|(n, _)| n.clone())
            });
        let pers = holder.as_ref().and_then(|h| personalities.get(h));
        let mode = holder
            .as_deref()
            .and_then(Mode::from_holder)
            .or_else(|| attr(&dir, "mode").as_deref().and_then(Mode::from_sysfs))
            .unwrap_or(Mode::Raw);
        let enabled = has_driver(&dir) || pers.is_some_and(|p| has_driver(&p.dir));
        // The device that owns the disk / chardev: the personality, else the namespace.
        let owner = pers.map(|p| p.dir.as_path()).unwrap_or(&dir);

        let (device_name, device_size) = match (mode, pers) {
            (Mode::Devdax, Some(p)) => {
                let c = holder.as_deref().and_then(|h| dax_chardev(root, &p.dir, h));
                let sz = c.as_deref().and_then(|c| {
                    attr_u64(&root.join(DAX_DEVICES).join(c), "size")
                        .or_else(|| attr_u64(&p.dir.join(c), "size"))
                });
                (c, sz)
            }
            _ => {
                let disk = block_child(owner).or_else(|| block_child(&dir));
                let sz = disk
                    .as_deref()
                    .and_then(|d| block_size(owner, d).or_else(|| block_size(&dir, d)));
                (disk, sz)
            }
        };
        let size = match (mode, pers) {
            (Mode::Raw, _) | (_, None) => raw_size,
            (_, Some(p)) => attr_u64(&p.dir, "size").filter(|&s| s != 0).or(device_size),
        };
        let map = match (mode, pers) {
            (Mode::Fsdax | Mode::Devdax, Some(p)) => attr(&p.dir, "mode").map(|m| {
                match m.as_str() {
                    "ram" => "mem",
                    "pmem" => "dev",
                    other => other,
                }
                .to_owned()
            }),
            _ => None,
        };
        let align = match (mode, pers) {
            (Mode::Fsdax | Mode::Devdax, Some(p)) => attr_u64(&p.dir, "align"),
            _ => None,
        };
        let sector_size = match (mode, pers) {
            (Mode::Sector, Some(p)) => attr_selected(&p.dir, "sector_size"),
            (Mode::Raw | Mode::Fsdax, _) => attr_selected(&dir, "sector_size"),
            _ => None,
        };
        let uuid = pers
            .and_then(|p| attr_nonempty(&p.dir, "uuid"))
            .or_else(|| attr_nonempty(&dir, "uuid"));
        let region_dev = format!("region{region_no}");
        let region = match regions.get(&region_no) {
            Some(r) => RegionSummary {
                dev: r.dev.clone(),
                size: r.size,
                align: r.align,
                persistence_domain: r.persistence_domain.clone(),
                iset_id: r.iset_id,
            },
            None => RegionSummary {
                dev: region_dev,
                size: None,
                align: None,
                persistence_domain: "unknown".into(),
                iset_id: None,
            },
        };
        out.push(Namespace {
            dev: name.clone(),
            mode,
            map,
            device: if enabled {
                device_name.map(|d| PathBuf::from("/dev").join(d))
            } else {
                None
            },
            size,
            raw_size,
            align,
            sector_size,
            uuid,
            numa_node: NumaNode::from_attr(attr(&dir, "numa_node")),
            holder,
            state: if enabled { "enabled" } else { "disabled" },
            region,
        });
    }
    Ok(HostNvdimms {
        namespaces: out,
        regions: regions.into_values().collect(),
    })
}

#[cfg(test)]
#[path = "sysfs_tests.rs"]
mod tests;
