//! The VM manager's operations, shared by the CLI and the REST API. Every
//! read-modify-write of a definition runs under the state directory lock.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::cmdline::{self, DEFAULT_SLOTS};
use super::device::{self, DeviceReport};
use super::error::VmError;
use super::process;
use super::state::{Assignment, Disk, Store, VmDef, validate_name};
use crate::host::{self, inuse};
use crate::qmpc::QmpClient;

/// Where the manager keeps and finds things.
#[derive(Debug, Clone)]
pub struct Manager {
    /// VM definitions.
    pub store: Store,
    /// sysfs root (tests use fixtures).
    pub sysfs_root: PathBuf,
    /// procfs root ("in use by" checks).
    pub proc_root: PathBuf,
    /// `--pmvm`, if given.
    pub pmvm: Option<PathBuf>,
    /// How long `stop` waits after `system_powerdown` before `quit`.
    pub stop_timeout: Duration,
}

/// What `create` needs; also the `pmctl vm create` options.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct CreateSpec {
    /// VM name (letters, digits, '-', '_', '.').
    pub name: String,
    /// Guest RAM without NVDIMMs (QEMU syntax; a bare number is MiB).
    #[arg(long, value_parser = parse_memory, default_value = "1G")]
    pub memory: u64,
    /// vCPUs.
    #[arg(long, default_value_t = 1)]
    pub cpus: u32,
    /// Kernel image (direct boot). Without it the VM boots its first disk through
    /// firmware (SeaBIOS), which needs at least one --disk.
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// Firmware image for a VM without --kernel (default: pmvm's,
    /// /usr/share/seabios/bios-microvm.bin).
    #[arg(long, value_name = "FILE")]
    pub bios: Option<PathBuf>,
    /// Initial ramdisk (only with --kernel).
    #[arg(long)]
    pub initrd: Option<PathBuf>,
    /// Kernel command line (only with --kernel).
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub append: String,
    /// Memory-device slots (-m slots=; default 16).
    #[arg(long)]
    pub slots: Option<u32>,
    /// Room for NVDIMMs attached while the VM runs (added to maxmem; costs no host memory,
    /// only guest address space), e.g. 64G. Default 0: attach only while stopped.
    #[arg(long = "hotplug-room", value_parser = parse_hotplug_room, default_value = "0")]
    pub hotplug_room: u64,
    /// A raw disk image for the guest (/dev/vda, then /dev/vdb, ...); repeatable.
    #[arg(long = "disk", value_name = "IMAGE")]
    pub disks: Vec<PathBuf>,
    /// A raw disk image given read-only; repeatable, after the --disk ones.
    #[arg(long = "readonly-disk", value_name = "IMAGE")]
    pub readonly_disks: Vec<PathBuf>,
}

/// Checks what the VM boots: a kernel (direct boot), or firmware from at least one disk;
/// `--initrd`/`--append` only with `--kernel` (pmvm refuses them without), `--bios` only
/// without it (pmvm cannot load a kernel through SeaBIOS).
fn check_boot(spec: &CreateSpec) -> Result<(), VmError> {
    let bad = |m: &str| Err(VmError::Invalid(m.into()));
    if spec.kernel.is_some() {
        if spec.bios.is_some() {
            return bad("--bios is only for a firmware boot: give --kernel or --bios, not both");
        }
        return Ok(());
    }
    if spec.disks.is_empty() && spec.readonly_disks.is_empty() {
        return bad("nothing to boot: give --kernel or --disk");
    }
    match (spec.initrd.is_some(), !spec.append.is_empty()) {
        (true, true) => bad("--initrd and --append are only allowed with --kernel"),
        (true, false) => bad("--initrd is only allowed with --kernel"),
        (false, true) => bad("--append is only allowed with --kernel"),
        (false, false) => Ok(()),
    }
}

/// Checks a disk image before it is saved: it exists, is a regular file or block device,
/// is not empty and is raw (pmvm would refuse other formats at start).
fn check_disk(path: &std::path::Path) -> Result<(), VmError> {
    use std::io::Read;
    let bad = |why: String| VmError::Invalid(format!("disk {}: {why}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| {
        bad(format!(
            "{e}; create it first, e.g. qemu-img create -f raw {} 10G",
            path.display()
        ))
    })?;
    use std::os::unix::fs::FileTypeExt;
    if !(meta.is_file() || meta.file_type().is_block_device()) {
        return Err(bad("not a regular file or block device".into()));
    }
    if meta.is_file() && meta.len() < 512 {
        return Err(bad(format!(
            "{} bytes: a disk needs at least one 512-byte sector",
            meta.len()
        )));
    }
    let mut head = [0u8; 512];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| bad(e.to_string()))?;
    if let Some(f) = vm_config::detect_image_format(&head[..n]) {
        return Err(bad(format!(
            "is a {f} image; pmvm uses raw images: qemu-img convert -O raw {} IMAGE.raw",
            path.display()
        )));
    }
    Ok(())
}

fn parse_hotplug_room(s: &str) -> Result<u64, String> {
    pmem_layout::parse_size(s, pmem_layout::Suffix::M)
        .map_err(|e| format!("--hotplug-room {s}: {e}"))
}

fn parse_memory(s: &str) -> Result<u64, String> {
    pmem_layout::parse_size(s, pmem_layout::Suffix::M).map_err(|e| format!("--memory {s}: {e}"))
}

/// An assignment with the guest address pmvm's plan gives it.
#[derive(Debug, Clone, Serialize)]
pub struct NvdimmView {
    /// The assignment.
    #[serde(flatten)]
    pub assignment: Assignment,
    /// Guest-physical base of the pmem range (None when the layout is refused).
    pub gpa: Option<u64>,
}

/// A VM as shown by `vm show`/`vm list` and the API.
#[derive(Debug, Clone, Serialize)]
pub struct VmView {
    /// Name.
    pub name: String,
    /// RAM bytes.
    pub memory: u64,
    /// vCPUs.
    pub cpus: u32,
    /// How it boots: `kernel` (direct) or `firmware` (SeaBIOS from the first disk).
    pub boot: &'static str,
    /// Kernel (direct boot only).
    pub kernel: Option<PathBuf>,
    /// Firmware image given with `--bios` (firmware boot; None: pmvm's default).
    pub bios: Option<PathBuf>,
    /// Initrd.
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    pub append: String,
    /// Slots.
    pub slots: u32,
    /// Derived maxmem.
    pub maxmem: u64,
    /// Room in maxmem for NVDIMMs attached while running.
    pub hotplug_room: u64,
    /// Whether pmvm runs (pidfile + live process).
    pub running: bool,
    /// Its pid.
    pub pid: Option<u32>,
    /// NVDIMMs with addresses.
    pub nvdimms: Vec<NvdimmView>,
    /// Disk images (/dev/vda, ... in this order).
    pub disks: Vec<Disk>,
    /// Why pmvm would refuse the layout, if it would.
    pub layout_error: Option<String>,
}

/// Result of `attach` (also its dry run).
#[derive(Debug, Clone, Serialize)]
pub struct AttachReport {
    /// The new assignment.
    pub assignment: Assignment,
    /// Its guest address.
    pub gpa: Option<u64>,
    /// The device report (persistence, warnings).
    pub device: DeviceReport,
    /// Whether it was saved (false for a dry run).
    pub saved: bool,
    /// Whether it went into the running VM (hotplug) rather than waiting for the next start.
    pub live: bool,
}

/// Result of `start`.
#[derive(Debug, Clone, Serialize)]
pub struct StartReport {
    /// VM name.
    pub name: String,
    /// pmvm's pid from the pidfile, if it wrote one.
    pub pid: Option<u32>,
    /// The binary run.
    pub pmvm: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Serial console file.
    pub console: PathBuf,
    /// Persistence warnings.
    pub warnings: Vec<String>,
}

/// Result of `stop`.
#[derive(Debug, Clone, Serialize)]
pub struct StopReport {
    /// VM name.
    pub name: String,
    /// How it ended: `powerdown`, `quit` or `sigterm`.
    pub method: &'static str,
}

/// Result of `status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// VM name.
    pub name: String,
    /// Whether pmvm runs.
    pub running: bool,
    /// Its pid.
    pub pid: Option<u32>,
    /// QMP `query-status` status (`running`, `paused`, ...).
    pub qmp_status: Option<String>,
    /// Why QMP could not answer.
    pub qmp_error: Option<String>,
}

fn same_file(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Connect to a VM's QMP socket; a just-started pmvm may not have created it
/// yet, so a missing or refusing socket is retried for about two seconds.
pub(super) fn connect_retry(sock: &Path) -> Result<QmpClient, crate::qmpc::QmpError> {
    let mut tries = 0;
    loop {
        match QmpClient::connect(sock, Duration::from_secs(5)) {
            Err(crate::qmpc::QmpError::Io(e))
                if tries < 10
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                    ) =>
            {
                tries += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            r => return r,
        }
    }
}

impl Manager {
    /// A manager over `state_dir` with the real /sys and /proc.
    pub fn new(state_dir: impl Into<PathBuf>) -> Manager {
        Manager {
            store: Store::new(state_dir),
            sysfs_root: PathBuf::from(host::SYSFS),
            proc_root: PathBuf::from(host::PROC),
            pmvm: None,
            stop_timeout: Duration::from_secs(30),
        }
    }

    /// pmvm's pid if VM `name` runs.
    pub(super) fn pid(&self, name: &str) -> Option<u32> {
        process::running_pid(&self.store.pidfile(name))
    }

    /// Create a definition (validated with pmvm's parser: kernel or firmware, initrd, append, memory).
    pub fn create(&self, spec: CreateSpec) -> Result<VmView, VmError> {
        validate_name(&spec.name)?;
        if spec.memory == 0 || !spec.memory.is_multiple_of(pmem_layout::MIB) {
            return Err(VmError::Invalid(format!(
                "memory {}: give a whole number of MiB, e.g. --memory 1G",
                spec.memory
            )));
        }
        if spec.cpus == 0 {
            return Err(VmError::Invalid("cpus must be at least 1".into()));
        }
        let slots = spec.slots.unwrap_or(DEFAULT_SLOTS);
        if slots == 0 || u64::from(slots) > pmem_layout::ACPI_MAX_RAM_SLOTS {
            return Err(VmError::Invalid(format!(
                "slots {slots}: give 1 to {}",
                pmem_layout::ACPI_MAX_RAM_SLOTS
            )));
        }
        check_boot(&spec)?;
        let abs = |p: PathBuf| std::fs::canonicalize(&p).unwrap_or(p);
        let mut disks = Vec::new();
        for (p, readonly) in spec
            .disks
            .into_iter()
            .map(|p| (p, false))
            .chain(spec.readonly_disks.into_iter().map(|p| (p, true)))
        {
            check_disk(&p)?;
            let path = abs(p);
            if disks.iter().any(|d: &Disk| d.path == path) {
                return Err(VmError::Invalid(format!(
                    "disk {} given twice",
                    path.display()
                )));
            }
            disks.push(Disk { path, readonly });
        }
        if disks.len() > vm_config::MAX_DRIVES {
            return Err(VmError::Invalid(format!(
                "{} disks: pmvm gives a VM at most {}",
                disks.len(),
                vm_config::MAX_DRIVES
            )));
        }
        let def = VmDef {
            name: spec.name,
            memory: spec.memory,
            cpus: spec.cpus,
            kernel: spec.kernel.map(abs),
            bios: spec.bios.map(abs),
            initrd: spec.initrd.map(abs),
            append: spec.append,
            slots,
            maxmem: cmdline::derive_maxmem(spec.memory, &[], spec.hotplug_room),
            hotplug: spec.hotplug_room,
            nvdimms: Vec::new(),
            disks,
        };
        cmdline::check(&cmdline::vm_args(&self.store, &def)?, false)?;
        let _lock = self.store.lock()?;
        if self.store.exists(&def.name) {
            return Err(VmError::Exists(def.name));
        }
        self.store.save(&def)?;
        Ok(self.view(def))
    }

    fn view(&self, def: VmDef) -> VmView {
        let plans = cmdline::vm_args(&self.store, &def).and_then(|a| cmdline::check(&a, true));
        let (plans, layout_error) = match plans {
            Ok(p) => (p, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        let pid = self.pid(&def.name);
        let nvdimms = def
            .nvdimms
            .into_iter()
            .map(|a| NvdimmView {
                gpa: plans.iter().find(|p| p.id == a.id).map(|p| p.gpa),
                assignment: a,
            })
            .collect();
        VmView {
            name: def.name,
            memory: def.memory,
            cpus: def.cpus,
            boot: if def.kernel.is_some() {
                "kernel"
            } else {
                "firmware"
            },
            kernel: def.kernel,
            bios: def.bios,
            initrd: def.initrd,
            append: def.append,
            slots: def.slots,
            maxmem: def.maxmem,
            hotplug_room: def.hotplug,
            running: pid.is_some(),
            pid,
            nvdimms,
            disks: def.disks,
            layout_error,
        }
    }

    /// All VMs.
    pub fn list(&self) -> Result<Vec<VmView>, VmError> {
        Ok(self
            .store
            .list()?
            .into_iter()
            .map(|d| self.view(d))
            .collect())
    }

    /// One VM with its NVDIMM addresses.
    pub fn show(&self, name: &str) -> Result<VmView, VmError> {
        Ok(self.view(self.store.load(name)?))
    }

    /// Delete a stopped VM's definition.
    pub fn delete(&self, name: &str) -> Result<(), VmError> {
        let _lock = self.store.lock()?;
        self.store.load(name)?;
        if let Some(pid) = self.pid(name) {
            return Err(VmError::Running {
                name: name.to_owned(),
                pid,
                what: "delete the VM",
            });
        }
        self.store.remove(name)
    }

    /// Which VM (other than none) has `path` assigned.
    fn assigned_to(&self, path: &Path) -> Result<Option<String>, VmError> {
        for d in self.store.list()? {
            if d.nvdimms.iter().any(|a| same_file(&a.path, path)) {
                return Ok(Some(d.name));
            }
        }
        Ok(None)
    }

    fn check_not_in_use(&self, path: &Path) -> Result<(), VmError> {
        let procs = inuse::vmm_processes(&self.proc_root);
        let users = inuse::users_of(&procs, path);
        if users.is_empty() {
            return Ok(());
        }
        let users: Vec<String> = users.iter().map(|u| u.to_string()).collect();
        Err(VmError::InUse {
            path: path.to_owned(),
            users: users.join(", "),
        })
    }

    /// Attach `path` (only while stopped; one VM per device); `dry_run` computes without saving.
    pub fn attach(&self, name: &str, path: &Path, dry_run: bool) -> Result<AttachReport, VmError> {
        let _lock = self.store.lock()?;
        let mut def = self.store.load(name)?;
        let running = self.pid(name);
        let (report, sizing) = device::inspect(&self.sysfs_root, path)?;
        let canon = report.device.path.clone();
        if let Some(vm) = self.assigned_to(&canon)? {
            return Err(VmError::AlreadyAssigned { path: canon, vm });
        }
        self.check_not_in_use(&canon)?;
        let used: BTreeSet<u32> = def.nvdimms.iter().map(|a| a.slot).collect();
        let slot = (0..def.slots).find(|s| !used.contains(s)).ok_or_else(|| {
            VmError::Invalid(format!(
                "all {} memory slots of VM '{name}' are used; detach a device or recreate the VM with more --slots",
                def.slots
            ))
        })?;
        let d = &report.device;
        let a = Assignment {
            path: canon,
            kind: d.kind.to_owned(),
            namespace: d.namespace.clone(),
            mode: d.mode.map(str::to_owned),
            host_size: d.size,
            host_align: d.align,
            crash_persistent: report.crash_persistent,
            slot,
            id: format!("nv{slot}"),
            align: sizing.align,
            backend_size: sizing.backend_size,
            guest_size: sizing.pmem_size,
            label_size: sizing.label_size,
            label_offset: sizing.label_offset,
        };
        let started_without_room = def.nvdimms.is_empty() && def.hotplug == 0;
        def.nvdimms.push(a.clone());
        def.nvdimms.sort_by_key(|a| a.slot);
        if running.is_none() {
            def.maxmem = cmdline::derive_maxmem(def.memory, &def.nvdimms, def.hotplug);
        }
        // While it runs, the layout must fit the -m slots/maxmem pmvm was started with.
        let plans =
            cmdline::check(&cmdline::vm_args(&self.store, &def)?, true).map_err(
                |e| match running {
                    Some(_) if started_without_room => VmError::Layout(format!(
                        "VM '{name}' runs without memory slots for hot-added NVDIMMs: stop it and \
                     attach (the device is then added at the next start), or create VMs with \
                     --hotplug-room SIZE"
                    )),
                    Some(_) => VmError::Layout(format!(
                        "{e}; the running VM cannot grow its maxmem: stop it and attach, or create \
                     VMs with a larger --hotplug-room"
                    )),
                    None => e,
                },
            )?;
        let gpa = plans.iter().find(|p| p.id == a.id).map(|p| p.gpa);
        if !dry_run {
            if running.is_some() {
                self.hotplug(name, &a)?;
            }
            self.store.save(&def)?;
        }
        Ok(AttachReport {
            assignment: a,
            gpa,
            device: report,
            saved: !dry_run,
            live: running.is_some(),
        })
    }

    /// Detach `path` (only while stopped).
    pub fn detach(&self, name: &str, path: &Path) -> Result<Assignment, VmError> {
        let _lock = self.store.lock()?;
        let mut def = self.store.load(name)?;
        if let Some(pid) = self.pid(name) {
            return Err(VmError::Running {
                name: name.to_owned(),
                pid,
                what: "detach NVDIMMs",
            });
        }
        let i = def
            .nvdimms
            .iter()
            .position(|a| same_file(&a.path, path))
            .ok_or_else(|| VmError::NotAttached {
                name: name.to_owned(),
                path: path.to_owned(),
            })?;
        let a = def.nvdimms.remove(i);
        def.maxmem = cmdline::derive_maxmem(def.memory, &def.nvdimms, def.hotplug);
        self.store.save(&def)?;
        Ok(a)
    }

    /// The exact pmvm arguments, validated with pmvm's parser (kernel or firmware included).
    pub fn args(&self, name: &str) -> Result<Vec<String>, VmError> {
        let def = self.store.load(name)?;
        let args = cmdline::vm_args(&self.store, &def)?;
        cmdline::check(&args, false)?;
        Ok(args)
    }

    /// Refuse when an assigned device changed size or alignment since attach.
    pub fn check_devices(&self, def: &VmDef) -> Result<(), VmError> {
        for a in &def.nvdimms {
            let changed = |what: String| VmError::Changed {
                name: def.name.clone(),
                path: a.path.clone(),
                what,
            };
            let Some(text) = a.path.to_str().filter(|_| a.path.exists()) else {
                return Err(changed("it no longer exists".into()));
            };
            let now = crate::size::resolve(&self.sysfs_root, text)
                .map_err(|e| changed(format!("it cannot be sized any more ({e})")))?;
            let mut what = Vec::new();
            if now.size != a.host_size {
                what.push(format!("size was {} bytes, now {}", a.host_size, now.size));
            }
            if now.align != a.host_align {
                let f = |v: Option<u64>| v.map_or("none".to_owned(), |x| format!("{x:#x}"));
                what.push(format!(
                    "align was {}, now {}",
                    f(a.host_align),
                    f(now.align)
                ));
            }
            if !what.is_empty() {
                return Err(changed(what.join("; ")));
            }
            self.check_not_in_use(&a.path)?;
        }
        Ok(())
    }

    /// Start pmvm (daemonized) for `name`.
    pub fn start(&self, name: &str) -> Result<StartReport, VmError> {
        let _lock = self.store.lock()?;
        let def = self.store.load(name)?;
        if let Some(pid) = self.pid(name) {
            return Err(VmError::AlreadyRunning {
                name: name.to_owned(),
                pid,
            });
        }
        self.check_devices(&def)?;
        let args = cmdline::vm_args(&self.store, &def)?;
        cmdline::check(&args, false)?;
        let pmvm = process::find_pmvm(self.pmvm.as_deref())?;
        for f in [self.store.pidfile(name), self.store.qmp_socket(name)] {
            let _ = std::fs::remove_file(f);
        }
        process::spawn_daemon(name, &pmvm, &args)?;
        let warnings = def
            .nvdimms
            .iter()
            .filter(|a| !a.crash_persistent)
            .map(|a| {
                format!(
                    "{}: persistence not guaranteed after a host crash (no MAP_SYNC)",
                    a.path.display()
                )
            })
            .collect();
        // The daemon writes its pidfile after the foreground process exits.
        let pidfile = self.store.pidfile(name);
        let mut pid = process::read_pid(&pidfile);
        for _ in 0..20 {
            if pid.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            pid = process::read_pid(&pidfile);
        }
        Ok(StartReport {
            name: name.to_owned(),
            pid,
            pmvm,
            args,
            console: self.store.console(name),
            warnings,
        })
    }

    fn wait_exit(pid: u32, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if !process::alive(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        !process::alive(pid)
    }

    /// Stop: QMP `system_powerdown`, then `quit` after the timeout (at once with `force`).
    pub fn stop(&self, name: &str, force: bool) -> Result<StopReport, VmError> {
        self.store.load(name)?;
        let pid = self
            .pid(name)
            .ok_or_else(|| VmError::NotRunning(name.to_owned()))?;
        let done = |method| {
            let _ = std::fs::remove_file(self.store.pidfile(name));
            Ok(StopReport {
                name: name.to_owned(),
                method,
            })
        };
        let qmp = || connect_retry(&self.store.qmp_socket(name));
        let qmp_err = |e: crate::qmpc::QmpError| VmError::Qmp {
            name: name.to_owned(),
            reason: e.to_string(),
        };
        let mut last_err = None;
        if !force {
            match qmp().and_then(|mut c| c.execute("system_powerdown", None)) {
                Ok(_) if Self::wait_exit(pid, self.stop_timeout) => return done("powerdown"),
                Ok(_) => {}
                Err(e) => last_err = Some(qmp_err(e)),
            }
        }
        match qmp().and_then(|mut c| c.execute("quit", None)) {
            // The reply or a closed connection both mean quit was taken.
            Ok(_) | Err(crate::qmpc::QmpError::Closed) => {}
            Err(e) => last_err = Some(qmp_err(e)),
        }
        if Self::wait_exit(pid, Duration::from_secs(5)) {
            return done("quit");
        }
        if force
            && process::signal(pid, libc::SIGTERM).is_ok()
            && Self::wait_exit(pid, Duration::from_secs(5))
        {
            return done("sigterm");
        }
        if let Some(e) = last_err.filter(|_| !force) {
            return Err(e);
        }
        Err(VmError::StopFailed {
            name: name.to_owned(),
            pid,
            hint: format!("kill it with: kill -9 {pid}"),
        })
    }

    /// Running or not, and QMP's view.
    pub fn status(&self, name: &str) -> Result<StatusReport, VmError> {
        self.store.load(name)?;
        let pid = self.pid(name);
        let (mut qmp_status, mut qmp_error) = (None, None);
        if pid.is_some() {
            match connect_retry(&self.store.qmp_socket(name))
                .and_then(|mut c| c.execute("query-status", None))
            {
                Ok(v) => qmp_status = v.get("status").and_then(|s| s.as_str()).map(str::to_owned),
                Err(e) => qmp_error = Some(e.to_string()),
            }
        }
        Ok(StatusReport {
            name: name.to_owned(),
            running: pid.is_some(),
            pid,
            qmp_status,
            qmp_error,
        })
    }
}
