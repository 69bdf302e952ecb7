//! The pmvm command line of a VM definition, and its validation with pmvm's
//! own parser (`vm_config::parse_args`, which runs `plan_devices`): the slot,
//! maxmem and address checks are the very code pmvm runs at start, so pmctl
//! and pmvm can never disagree on the layout.

use std::path::Path;

use pmem_layout::{GIB, GuestSizing, NvdimmArgs, NvdimmArgsSpec, format_size_arg, nvdimm_cli_args};
use vm_config::{Action, DevicePlan};

use super::error::VmError;
use super::state::{Assignment, Store, VmDef};

/// Room above RAM + NVDIMMs in `maxmem` (a later hot-plugged 1 GiB DIMM fits).
pub const MAXMEM_HEADROOM: u64 = GIB;
/// Default `-m slots=` (oVirt's MaxMemorySlots default).
pub const DEFAULT_SLOTS: u32 = 16;
/// Longest usable unix socket path (sun_path is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// `maxmem` for `memory` bytes of RAM, these NVDIMMs and `hotplug` bytes of room for
/// NVDIMMs attached while the VM runs (oVirt: maxMemory + the NVDIMM sizes); `memory`
/// itself when there are neither NVDIMMs nor room.
pub fn derive_maxmem(memory: u64, nvdimms: &[Assignment], hotplug: u64) -> u64 {
    if nvdimms.is_empty() && hotplug == 0 {
        return memory;
    }
    nvdimms
        .iter()
        .fold(memory, |m, a| m.saturating_add(a.backend_size))
        .saturating_add(MAXMEM_HEADROOM)
        .saturating_add(hotplug)
}

/// The `-object`/`-device` pair of an assignment, from the sizes recorded at
/// attach time (never recomputed, so the label area stays where it was).
pub fn nvdimm_args(a: &Assignment) -> Result<NvdimmArgs, VmError> {
    let sizing = GuestSizing {
        device_size: a.host_size,
        align: a.align,
        backend_size: a.backend_size,
        pmem_size: a.guest_size,
        label_offset: a.label_offset,
        label_size: a.label_size,
        gap: a.label_offset.saturating_sub(a.guest_size),
        unused_tail: a.host_size.saturating_sub(a.backend_size),
        warnings: Vec::new(),
    };
    let path = a.path.to_str().ok_or_else(|| {
        VmError::Invalid(format!("{}: path is not valid UTF-8", a.path.display()))
    })?;
    let mut spec = NvdimmArgsSpec::new(&a.id, path);
    spec.pmem = a.crash_persistent;
    spec.slot = Some(a.slot);
    nvdimm_cli_args(&spec, &sizing).map_err(|e| VmError::Layout(e.to_string()))
}

fn path_arg(what: &str, p: &Path) -> Result<String, VmError> {
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| VmError::Invalid(format!("{what} {}: path is not valid UTF-8", p.display())))
}

/// The exact pmvm arguments (without the program name) `vm start` runs.
pub fn vm_args(store: &Store, def: &VmDef) -> Result<Vec<String>, VmError> {
    let dir = path_arg("state directory", store.dir())?;
    if dir.contains(',') {
        return Err(VmError::Invalid(format!(
            "state directory {dir} contains ',', which pmvm's option syntax cannot carry; \
             use another --state-dir"
        )));
    }
    let qmp = path_arg("QMP socket", &store.qmp_socket(&def.name))?;
    if qmp.len() > MAX_SOCKET_PATH {
        return Err(VmError::Invalid(format!(
            "QMP socket path {qmp} is longer than {MAX_SOCKET_PATH} bytes; use a shorter --state-dir"
        )));
    }
    let mem = if def.nvdimms.is_empty() && def.hotplug == 0 {
        format_size_arg(def.memory)
    } else {
        format!(
            "{},slots={},maxmem={}",
            format_size_arg(def.memory),
            def.slots,
            format_size_arg(def.maxmem)
        )
    };
    let mut v: Vec<String> = vec![
        "-name".into(),
        format!("guest={}", def.name),
        "-machine".into(),
        "pc,nvdimm=on".into(),
        "-m".into(),
        mem,
        "-smp".into(),
        def.cpus.to_string(),
    ];
    // Direct boot: -kernel [-initrd] [-append]. Firmware boot (no kernel): pmvm's default
    // SeaBIOS or -bios, booting the first disk; -initrd/-append would be refused by pmvm.
    if let Some(k) = &def.kernel {
        v.push("-kernel".into());
        v.push(path_arg("kernel", k)?);
    }
    if let Some(b) = &def.bios {
        v.push("-bios".into());
        v.push(path_arg("bios", b)?);
    }
    if let Some(i) = &def.initrd {
        v.push("-initrd".into());
        v.push(path_arg("initrd", i)?);
    }
    if !def.append.is_empty() {
        v.push("-append".into());
        v.push(def.append.clone());
    }
    for a in &def.nvdimms {
        let n = nvdimm_args(a)?;
        v.extend(["-object".into(), n.object, "-device".into(), n.device]);
    }
    for d in &def.disks {
        // QEMU option syntax: a ',' inside a value is written ',,'.
        let file = path_arg("disk", &d.path)?.replace(',', ",,");
        let ro = if d.readonly { ",readonly=on" } else { "" };
        v.extend([
            "-drive".into(),
            format!("file={file},format=raw,if=virtio{ro}"),
        ]);
    }
    v.extend([
        "-qmp".into(),
        format!("unix:{qmp},server=on,wait=off"),
        "-serial".into(),
        format!("file:{}", path_arg("console", &store.console(&def.name))?),
        "-display".into(),
        "none".into(),
        "-daemonize".into(),
        "-pidfile".into(),
        path_arg("pidfile", &store.pidfile(&def.name))?,
    ]);
    Ok(v)
}

/// Parse `argv` with pmvm's parser and return the device plan. With
/// `layout_only`, `-kernel`/`-initrd` are replaced by a file that surely
/// exists, and a firmware boot (no `-kernel`; `-bios` or pmvm's default
/// firmware) is judged as a direct boot of that file, so only the memory
/// layout is judged (used while editing a VM whose kernel or firmware may not
/// be in place yet; the device plan does not depend on the boot source).
pub fn check(argv: &[String], layout_only: bool) -> Result<Vec<DevicePlan>, VmError> {
    let mut argv = argv.to_vec();
    if layout_only {
        if let Some(i) = argv.iter().position(|a| a == "-bios") {
            argv.drain(i..(i + 2).min(argv.len()));
        }
        if !argv.iter().any(|a| a == "-kernel") {
            argv.extend(["-kernel".into(), "/proc/self/exe".into()]);
        }
        let mut i = 0;
        while i + 1 < argv.len() {
            if argv[i] == "-kernel" || argv[i] == "-initrd" {
                argv[i + 1] = "/proc/self/exe".into();
                i += 1;
            }
            i += 1;
        }
    }
    let cfg = match vm_config::parse_args(&argv) {
        Ok(Action::Run(cfg)) => cfg,
        Ok(_) => return Err(VmError::Layout("unexpected help/version request".into())),
        Err(e) => return Err(VmError::Layout(e.to_string())),
    };
    let (_, plans) = vm_config::plan_devices(&cfg).map_err(|e| VmError::Layout(e.to_string()))?;
    Ok(plans)
}
