//! `pmctl vm create --disk` without `--kernel` from the command line: a firmware-boot VM,
//! its boot source in `vm show`, its pmvm arguments, and the one-line refusals.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pmctl(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pmctl"))
        .arg("vm")
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .unwrap()
}

fn sized(dir: &Path, name: &str, len: u64) -> String {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().set_len(len).unwrap();
    std::fs::canonicalize(&p)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn create_with_a_disk_and_no_kernel_boots_firmware() {
    let d = Dir(std::env::temp_dir().join(format!("pmctl-fwcli-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&d.0);
    std::fs::create_dir_all(&d.0).unwrap();
    let state = d.0.join("state");
    let disk = sized(&d.0, "root.raw", 1 << 20);
    let bios = sized(&d.0, "bios.bin", 64 << 10);

    let o = pmctl(&state, &["create", "fw", "--disk", &disk, "--bios", &bios]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{o:?}");
    assert!(stdout.contains("firmware boot"), "{stdout}");
    let o = pmctl(&state, &["show", "fw"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains(&format!(
            "  boot: firmware {bios}, from the disks (vda first)"
        )),
        "{stdout}"
    );
    let o = pmctl(&state, &["args", "fw"]);
    let args: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(!args.iter().any(|a| a == "-kernel"), "{args:?}");
    let i = args.iter().position(|a| a == "-bios").unwrap();
    assert_eq!(args[i + 1], bios);
    assert!(
        args.contains(&format!("file={disk},format=raw,if=virtio")),
        "{args:?}"
    );

    // Refusals: one line naming the options, exit 2, nothing saved.
    for (argv, msg) in [
        (
            vec!["create", "a", "--disk", &disk, "--initrd", &disk],
            "pmctl: --initrd is only allowed with --kernel\n",
        ),
        (
            vec!["create", "b", "--disk", &disk, "--append", "quiet"],
            "pmctl: --append is only allowed with --kernel\n",
        ),
        (
            vec!["create", "c"],
            "pmctl: nothing to boot: give --kernel or --disk\n",
        ),
    ] {
        let o = pmctl(&state, &argv);
        assert_eq!(o.status.code(), Some(2), "{argv:?}: {o:?}");
        assert_eq!(String::from_utf8_lossy(&o.stderr), msg, "{argv:?}");
    }
    let o = pmctl(&state, &["list"]);
    let listed = String::from_utf8_lossy(&o.stdout);
    assert_eq!(listed.lines().count(), 2, "{listed}");
}
