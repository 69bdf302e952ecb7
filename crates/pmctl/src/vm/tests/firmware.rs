//! Firmware-boot VMs: a disk and no kernel, the pmvm command line without
//! `-kernel`/`-initrd`/`-append` (with `-bios` when given), the refusals, and old
//! definitions (always with a kernel) loading unchanged.

use super::*;

/// A firmware image pmvm's parser accepts (a non-empty multiple of 4 KiB).
fn firmware(f: &Fixture) -> PathBuf {
    f.file("bios.bin", 64 << 10)
}

/// `f.spec(name)` without a kernel, booting `disk`.
fn fw_spec(f: &Fixture, name: &str, disk: &Path) -> CreateSpec {
    CreateSpec {
        kernel: None,
        append: String::new(),
        disks: vec![disk.to_owned()],
        ..f.spec(name)
    }
}

/// The value after each `opt` in `args`.
fn values<'a>(args: &'a [String], opt: &str) -> Vec<&'a str> {
    args.windows(2)
        .filter(|w| w[0] == opt)
        .map(|w| w[1].as_str())
        .collect()
}

#[test]
fn disk_without_kernel_is_a_firmware_boot_and_pmvm_gets_exactly_that() {
    let mut f = Fixture::new();
    let disk = f.file("root.raw", 64 * MIB);
    let bios = firmware(&f);
    let v =
        f.m.create(CreateSpec {
            bios: Some(bios.clone()),
            ..fw_spec(&f, "fw", &disk)
        })
        .unwrap();
    assert_eq!((v.boot, v.kernel.as_ref()), ("firmware", None));
    let bios = std::fs::canonicalize(&bios).unwrap();
    assert_eq!(v.bios.as_ref(), Some(&bios));
    let args = f.m.args("fw").unwrap();
    for opt in ["-kernel", "-initrd", "-append"] {
        assert!(!args.iter().any(|a| a == opt), "{opt} in {args:?}");
    }
    assert_eq!(values(&args, "-bios"), vec![bios.to_str().unwrap()]);
    let disk = std::fs::canonicalize(&disk).unwrap();
    assert_eq!(
        values(&args, "-drive"),
        vec![format!("file={},format=raw,if=virtio", disk.display())]
    );
    // pmvm's own parser sees a firmware boot from that image.
    let cfg = match vm_config::parse_args(&args).unwrap() {
        vm_config::Action::Run(c) => c,
        _ => unreachable!(),
    };
    assert_eq!(cfg.source, vm_config::BootSource::Firmware(bios.clone()));
    // The stored definition has no kernel; show has the boot source.
    let def = f.m.store.load("fw").unwrap();
    assert_eq!((def.kernel, def.bios), (None, Some(bios)));
    let text = std::fs::read_to_string(f.m.store.def_path("fw")).unwrap();
    assert!(!text.contains("\"kernel\""), "{text}");
    let v = f.m.show("fw").unwrap();
    assert_eq!((v.boot, v.layout_error), ("firmware", None));

    // The pmvm stand-in gets exactly these arguments at start.
    let rec = f.dir.0.join("argv");
    f.m.pmvm = Some(script(
        &f.dir.0,
        "pmvm",
        &format!(
            "for a in \"$@\"; do printf '%s\\n' \"$a\"; done > {}",
            rec.display()
        ),
    ));
    let r = f.m.start("fw").unwrap();
    let want: String = args.iter().map(|a| format!("{a}\n")).collect();
    assert_eq!(std::fs::read_to_string(&rec).unwrap(), want);
    assert_eq!(r.args, args);
}

#[test]
fn default_firmware_is_pmvms_and_no_bios_is_passed() {
    let f = Fixture::new();
    let disk = f.file("root.raw", MIB);
    let r = f.m.create(fw_spec(&f, "fw", &disk));
    if Path::new(vm_config::DEFAULT_FIRMWARE).is_file() {
        let v = r.unwrap();
        assert_eq!((v.boot, v.bios), ("firmware", None));
        let args = f.m.args("fw").unwrap();
        assert!(
            !args.iter().any(|a| a == "-kernel" || a == "-bios"),
            "{args:?}"
        );
    } else {
        // Refused like a missing kernel, with pmvm's words naming the package and -bios.
        let e = r.unwrap_err().to_string();
        assert!(e.contains("seabios") && e.contains("-bios"), "{e}");
    }
}

#[test]
fn refusals_name_the_options() {
    let f = Fixture::new();
    let disk = f.file("root.raw", MIB);
    let err = |spec: CreateSpec| f.m.create(spec).unwrap_err();
    let e = err(CreateSpec {
        kernel: None,
        ..f.spec("none")
    });
    assert_eq!(e.to_string(), "nothing to boot: give --kernel or --disk");
    assert!(matches!(e, VmError::Invalid(_)), "{e:?}");
    let e = err(CreateSpec {
        initrd: Some(f.dir.0.join("kernel")),
        ..fw_spec(&f, "initrd", &disk)
    });
    assert_eq!(e.to_string(), "--initrd is only allowed with --kernel");
    let e = err(CreateSpec {
        append: "console=ttyS0".into(),
        ..fw_spec(&f, "append", &disk)
    });
    assert_eq!(e.to_string(), "--append is only allowed with --kernel");
    let e = err(CreateSpec {
        initrd: Some(f.dir.0.join("kernel")),
        append: "x".into(),
        ..fw_spec(&f, "both", &disk)
    });
    assert_eq!(
        e.to_string(),
        "--initrd and --append are only allowed with --kernel"
    );
    let e = err(CreateSpec {
        bios: Some(firmware(&f)),
        ..f.spec("kb")
    });
    assert!(
        e.to_string().contains("--kernel or --bios, not both"),
        "{e}"
    );
    // --bios is checked as pmvm checks it (as a missing kernel is).
    let e = err(CreateSpec {
        bios: Some(f.dir.0.join("missing.bin")),
        ..fw_spec(&f, "nobios", &disk)
    });
    assert!(
        matches!(e, VmError::Layout(_)) && e.to_string().contains("-bios"),
        "{e}"
    );
    let e = err(CreateSpec {
        bios: Some(f.file("odd.bin", 1000)),
        ..fw_spec(&f, "oddbios", &disk)
    });
    assert!(e.to_string().contains("multiple of 4 KiB"), "{e}");
    // A read-only disk is something to boot too (an installer image).
    let v =
        f.m.create(CreateSpec {
            kernel: None,
            append: String::new(),
            bios: Some(firmware(&f)),
            readonly_disks: vec![disk],
            ..f.spec("ro")
        })
        .unwrap();
    assert_eq!(v.boot, "firmware");
    assert_eq!(
        f.m.list()
            .unwrap()
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>(),
        vec!["ro"],
        "nothing refused was saved"
    );
}

#[test]
fn old_definitions_with_a_kernel_load_unchanged() {
    let f = Fixture::new();
    let kernel = f.dir.0.join("kernel");
    // A definition as pmctl wrote it before firmware boot: a kernel, no "bios".
    let old = serde_json::json!({
        "name": "old",
        "memory": 536870912u64,
        "cpus": 1,
        "kernel": kernel,
        "initrd": null,
        "append": "console=ttyS0",
        "slots": 16,
        "maxmem": 536870912u64,
        "hotplug": 0,
        "nvdimms": [],
        "disks": []
    });
    std::fs::create_dir_all(f.m.store.dir()).unwrap();
    let text = serde_json::to_string_pretty(&old).unwrap() + "\n";
    std::fs::write(f.m.store.def_path("old"), &text).unwrap();
    let def = f.m.store.load("old").unwrap();
    assert_eq!(
        (def.kernel.as_ref(), def.bios.as_ref()),
        (Some(&kernel), None)
    );
    // Saved again, it has the same fields and values as before (no "bios", same "kernel").
    f.m.store.save(&def).unwrap();
    let again: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.m.store.def_path("old")).unwrap()).unwrap();
    assert_eq!(again, old);
    let v = f.m.show("old").unwrap();
    assert_eq!((v.boot, v.layout_error), ("kernel", None));
    let args = f.m.args("old").unwrap();
    assert_eq!(values(&args, "-kernel"), vec![kernel.to_str().unwrap()]);
    assert_eq!(values(&args, "-append"), vec!["console=ttyS0"]);
    assert!(!args.iter().any(|a| a == "-bios"), "{args:?}");
}
