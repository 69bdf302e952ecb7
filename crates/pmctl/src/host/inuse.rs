//! "In use by": which running VMMs name a host device on their command line.
//!
//! Cheap by design: one read of `/proc/<pid>/cmdline` per process, only for
//! processes whose program name contains `pmvm` or `qemu`. A VM that opened
//! the device through another path (a symlink, a file descriptor passed in)
//! is not seen; the answer is a hint for the operator, not a lock.

use std::path::Path;

use serde::Serialize;

/// A process naming the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Process id.
    pub pid: u32,
    /// Program name (basename of argv[0]).
    pub program: String,
}

impl std::fmt::Display for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]", self.program, self.pid)
    }
}

/// One VMM process and its arguments.
#[derive(Debug, Clone)]
pub struct VmmProcess {
    pid: u32,
    program: String,
    args: Vec<String>,
}

/// True when `arg` mentions `path` as a whole value: followed by the end, `,`
/// or whitespace, and preceded by the start, `=`, `,` or whitespace (so
/// `/dev/pmem0` does not match `/dev/pmem0.1` or `/dev/pmem0s`).
pub fn arg_mentions(arg: &str, path: &str) -> bool {
    if path.is_empty() {
        return false;
    }
    let b = arg.as_bytes();
    arg.match_indices(path).any(|(start, _)| {
        let end = start + path.len();
        let before_ok = start == 0 || matches!(b[start - 1], b'=' | b',' | b' ' | b'\t' | b':');
        let after_ok = end == b.len() || matches!(b[end], b',' | b' ' | b'\t');
        before_ok && after_ok
    })
}

/// Read the VMM processes under `proc_root` (normally `/proc`). Processes
/// that vanish or cannot be read are skipped.
pub fn vmm_processes(proc_root: &Path) -> Vec<VmmProcess> {
    let Ok(rd) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let mut args = raw
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned());
        let Some(argv0) = args.next() else { continue };
        let program = argv0.rsplit('/').next().unwrap_or(&argv0).to_owned();
        if !(program.contains("pmvm") || program.contains("qemu")) {
            continue;
        }
        out.push(VmmProcess {
            pid,
            program,
            args: args.collect(),
        });
    }
    out.sort_by_key(|p| p.pid);
    out
}

/// The processes among `procs` whose arguments mention `device`.
pub fn users_of(procs: &[VmmProcess], device: &Path) -> Vec<User> {
    let Some(d) = device.to_str() else {
        return Vec::new();
    };
    procs
        .iter()
        .filter(|p| p.args.iter().any(|a| arg_mentions(a, d)))
        .map(|p| User {
            pid: p.pid,
            program: p.program.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_whole_values_only() {
        let a = "memory-backend-file,id=m0,share=on,mem-path=/dev/pmem0,size=1G";
        assert!(arg_mentions(a, "/dev/pmem0"));
        assert!(!arg_mentions(a, "/dev/pmem"));
        assert!(!arg_mentions("mem-path=/dev/pmem0.1,size=1G", "/dev/pmem0"));
        assert!(!arg_mentions("mem-path=/dev/pmem0s", "/dev/pmem0"));
        assert!(arg_mentions("/dev/dax0.0", "/dev/dax0.0"));
        assert!(!arg_mentions("/mnt/dev/dax0.0", "/dev/dax0.0"));
        assert!(arg_mentions("x,mem-path=/dev/pmem0.1s", "/dev/pmem0.1s"));
        assert!(!arg_mentions("", "/dev/x"));
        assert!(!arg_mentions("anything", ""));
        // repeated partial matches before the real one
        assert!(arg_mentions("/dev/pmem0.1,/dev/pmem0", "/dev/pmem0"));
    }

    #[test]
    fn scans_a_fake_proc() {
        let root = std::env::temp_dir().join(format!("pmctl-proc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mk = |pid: &str, argv: &[&str]| {
            std::fs::create_dir_all(root.join(pid)).unwrap();
            let mut b = Vec::new();
            for a in argv {
                b.extend_from_slice(a.as_bytes());
                b.push(0);
            }
            std::fs::write(root.join(pid).join("cmdline"), b).unwrap();
        };
        mk(
            "10",
            &[
                "/opt/bin/pmvm",
                "-object",
                "memory-backend-file,id=m,mem-path=/dev/dax0.0,size=258M",
            ],
        );
        mk(
            "11",
            &[
                "qemu-system-x86_64",
                "-object",
                "memory-backend-file,mem-path=/dev/pmem1,size=1G",
            ],
        );
        mk("12", &["/usr/bin/cat", "/dev/dax0.0"]); // not a VMM
        mk("13", &[]); // kernel thread: empty cmdline
        std::fs::create_dir_all(root.join("self")).unwrap();
        let procs = vmm_processes(&root);
        assert_eq!(procs.len(), 2);
        let u = users_of(&procs, Path::new("/dev/dax0.0"));
        assert_eq!(
            u,
            vec![User {
                pid: 10,
                program: "pmvm".into()
            }]
        );
        assert_eq!(u[0].to_string(), "pmvm[10]");
        let u = users_of(&procs, Path::new("/dev/pmem1"));
        assert_eq!(
            u,
            vec![User {
                pid: 11,
                program: "qemu-system-x86_64".into()
            }]
        );
        assert!(users_of(&procs, Path::new("/dev/pmem1.1s")).is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
