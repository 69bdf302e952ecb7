//! The command line: QEMU's option names and syntax.

use std::path::PathBuf;

use crate::keyval::{Props, parse as keyval};
use crate::objects::{BackendConfig, DeviceConfig};
use crate::{
    Action, ChardevSpec, ConfigError, MachineConfig, MemoryConfig, PersistenceDomain, SerialConfig,
    VmConfig, size_prop,
};

/// `pmvm --help`.
pub const HELP: &str = "\
usage: pmvm [options]
A KVM virtual machine monitor for virtual NVDIMMs, with QEMU's command-line syntax.

Machine and CPU:
  -machine|-M pc[,accel=kvm][,nvdimm=on|off][,nvdimm-persistence=cpu|mem-ctrl]
  -enable-kvm | -accel kvm      KVM is always used
  -cpu host|max                 the host's CPUID (clwb, clflushopt pass through)
  -smp N[,cpus=N][,maxcpus=N][,sockets=..,cores=..,threads=..]
  -m [size=]SIZE[,slots=N][,maxmem=SIZE]   RAM; SIZE defaults to MiB (512, 4G)
Boot (a kernel directly, or firmware from a disk or ISO):
  -kernel FILE                  bzImage or ELF vmlinux (booted through PVH)
  -initrd FILE
  -append 'CMDLINE'
  -bios FILE                    firmware image (default without -kernel:
                                /usr/share/seabios/bios-microvm.bin, Debian package seabios)
  -boot [order=]cdn[,menu=on|off][,strict=on|off][,reboot-timeout=MS][,splash-time=MS]
                                c: disks, d: CD-ROMs; -drive bootindex=N comes first
  -cdrom FILE                   an ISO (= -drive media=cdrom,readonly,index=2,file=FILE;
                                it must be isohybrid: the firmware sees a virtio disk)
  -debugcon file:PATH|stdio|none   the firmware's debug port 0x402 (SeaBIOS's log)
Memory backends and devices:
  -object memory-backend-file,id=ID,mem-path=PATH,size=SIZE[,share=on|off][,align=SIZE]
          [,pmem=on|off][,readonly=on|off][,prealloc=on|off][,discard-data=on|off]
  -object memory-backend-ram,id=ID,size=SIZE[,share=on|off]
  -device nvdimm,id=ID,memdev=ID[,label-size=SIZE][,unarmed=on|off][,slot=N][,node=N][,uuid=U]
  -device pc-dimm,id=ID,memdev=ID[,slot=N][,node=N]
  -drive file=IMAGE[,format=raw][,if=virtio|ide][,id=ID][,index=N][,media=disk|cdrom]
         [,readonly=on|off][,cache=writeback|writethrough|none|directsync|unsafe][,discard=ignore|unmap]
         [,bootindex=N]
                                a raw disk image, given to the guest as a virtio disk (/dev/vdX)
Console and control:
  -nographic                    serial on stdio, no display; as in QEMU, Ctrl-a x quits,
                                Ctrl-a c switches to the monitor, Ctrl-a h lists the keys
  -serial stdio|mon:stdio|file:PATH|none
  -display none
  -qmp unix:PATH,server[=on][,wait=off] | tcp:HOST:PORT,server[,wait=off]
  -monitor stdio|unix:PATH,server[,wait=off]
  -no-reboot                    exit instead of rebooting
  -no-shutdown                  stop the VM instead of exiting on guest poweroff
  -S                            start with the vCPUs stopped (continue with QMP 'cont')
  -name NAME
  -pidfile FILE
  -daemonize
  -nodefaults, -no-user-config, -L DIR   accepted; pmvm has no default devices
pmvm extensions:
  -require-persistence          refuse pmem=on backends that cannot guarantee persistence
  -force-label-area             start even if a label area holds data that is not labels
  -h|-help|--help, -version|--version
Signals: SIGTERM, SIGINT and SIGHUP quit cleanly (as in QEMU); NVDIMM file backends are
  written back to storage first.
";

/// Options pmvm knows it does not implement: refused with a clear message, never ignored.
#[rustfmt::skip]
const UNSUPPORTED: &[&str] = &[
    "hda", "hdb", "vnc", "net", "netdev", "nic", "usb", "usbdevice", "vga", "spice",
    "soundhw", "audiodev", "numa", "chardev", "fsdev", "virtfs", "blockdev",
    "global", "icount", "rtc", "incoming", "loadvm", "snapshot", "mem-path", "mem-prealloc",
    "sandbox", "overcommit", "readconfig", "D", "d", "trace", "s", "gdb", "watchdog", "device-help",
    "fw_cfg", "smbios", "acpitable", "tpmdev", "k",
];

fn value<'a>(it: &mut std::slice::Iter<'a, String>, opt: &str) -> Result<&'a str, ConfigError> {
    it.next()
        .map(String::as_str)
        .ok_or_else(|| ConfigError::new(format!("-{opt}: requires an argument")))
}

fn parse_machine(m: &mut MachineConfig, s: &str) -> Result<(), ConfigError> {
    let p = keyval("-machine", s, Some("type"))?;
    if let Some(k) = p.unknown(&[
        "type",
        "accel",
        "nvdimm",
        "nvdimm-persistence",
        "usb",
        "vmport",
        "dump-guest-core",
    ]) {
        return Err(ConfigError::new(format!(
            "-machine: property '{k}' is not supported by pmvm"
        )));
    }
    if let Some(t) = p.get("type") {
        match t {
            "pc" | "pc-i440fx" => m.kind = "pc".into(),
            t if t.starts_with("pc-i440fx-") => m.kind = "pc".into(),
            other => {
                return Err(ConfigError::new(format!(
                    "-machine: machine type '{other}' is not supported by pmvm; use -machine pc"
                )));
            }
        }
    }
    if let Some(a) = p.get("accel") {
        check_accel(a)?;
    }
    if let Some(n) = p.flag("-machine", "nvdimm")? {
        m.nvdimm = n;
    }
    if let Some(v) = p.get("nvdimm-persistence") {
        m.nvdimm_persistence = Some(match v {
            "cpu" => PersistenceDomain::Cpu,
            "mem-ctrl" => PersistenceDomain::MemCtrl,
            other => {
                return Err(ConfigError::new(format!(
                    "-machine nvdimm-persistence={other}: unsupported option; use 'cpu' or 'mem-ctrl'"
                )));
            }
        });
    }
    Ok(())
}

fn check_accel(a: &str) -> Result<(), ConfigError> {
    // QEMU accepts a ':'-separated fallback list; pmvm only has KVM.
    if a.split(':').any(|x| x == "kvm") {
        Ok(())
    } else {
        Err(ConfigError::new(format!(
            "accelerator '{a}' is not supported by pmvm; it always uses kvm"
        )))
    }
}

fn parse_memory(s: &str) -> Result<MemoryConfig, ConfigError> {
    let p = keyval("-m", s, Some("size"))?;
    if let Some(k) = p.unknown(&["size", "slots", "maxmem"]) {
        return Err(ConfigError::new(format!(
            "-m: parameter '{k}' is not valid (size, slots, maxmem)"
        )));
    }
    let size = match p.get("size") {
        Some(v) => size_prop("-m", "size", v, true)?,
        None => MemoryConfig::default().size,
    };
    if size == 0 {
        return Err(ConfigError::new(
            "-m: memory size 0 is not valid; give the guest RAM, e.g. -m 512M",
        ));
    }
    let slots = match p.get("slots") {
        Some(v) => v
            .parse::<u32>()
            .map_err(|_| ConfigError::new(format!("-m: slots='{v}' is not a number")))?,
        None => 0,
    };
    let maxmem = match p.get("maxmem") {
        Some(v) => size_prop("-m", "maxmem", v, false)?,
        None => size,
    };
    if maxmem < size {
        return Err(ConfigError::new(format!(
            "-m: maxmem ({maxmem:#x}) must be at least the initial memory size ({size:#x})"
        )));
    }
    if slots > 0 && maxmem == size {
        return Err(ConfigError::new(
            "-m: slots is set but maxmem equals the RAM size: add maxmem=RAM+devices, e.g. -m 4G,slots=4,maxmem=32G",
        ));
    }
    Ok(MemoryConfig {
        size,
        slots,
        maxmem,
    })
}

fn parse_smp(s: &str) -> Result<u32, ConfigError> {
    let p = keyval("-smp", s, Some("cpus"))?;
    if let Some(k) = p.unknown(&[
        "cpus", "maxcpus", "sockets", "dies", "clusters", "cores", "threads",
    ]) {
        return Err(ConfigError::new(format!(
            "-smp: parameter '{k}' is not valid"
        )));
    }
    let num = |k: &str| -> Result<Option<u32>, ConfigError> {
        p.get(k)
            .map(|v| {
                v.parse::<u32>()
                    .map_err(|_| ConfigError::new(format!("-smp: {k}='{v}' is not a number")))
            })
            .transpose()
    };
    let topo = ["sockets", "dies", "clusters", "cores", "threads"]
        .iter()
        .map(|k| num(k))
        .collect::<Result<Vec<_>, _>>()?;
    let product = topo.iter().flatten().product::<u32>();
    let cpus = match num("cpus")? {
        Some(n) => n,
        None if topo.iter().any(Option::is_some) => product,
        None => 1,
    };
    if cpus == 0 {
        return Err(ConfigError::new(
            "-smp: 0 CPUs is not valid; use -smp 1 or more",
        ));
    }
    if cpus > 255 {
        return Err(ConfigError::new(format!(
            "-smp {cpus}: pmvm supports at most 255 vCPUs"
        )));
    }
    if let Some(max) = num("maxcpus")?
        && max < cpus
    {
        return Err(ConfigError::new(format!(
            "-smp: maxcpus ({max}) must be at least cpus ({cpus})"
        )));
    }
    Ok(cpus)
}

fn parse_serial(s: &str) -> Result<SerialConfig, ConfigError> {
    match s {
        "stdio" | "mon:stdio" => Ok(SerialConfig::Stdio),
        "none" | "null" => Ok(SerialConfig::None),
        _ => match s.strip_prefix("file:") {
            Some(p) if !p.is_empty() => Ok(SerialConfig::File(PathBuf::from(p))),
            _ => Err(ConfigError::new(format!(
                "-serial '{s}' is not supported; use stdio, file:PATH or none"
            ))),
        },
    }
}

/// Parses `argv` (without the program name).
pub fn parse_args(argv: &[String]) -> Result<Action, ConfigError> {
    let mut machine = MachineConfig::default();
    let mut memory = None;
    let mut cpus = 1;
    let mut kernel = None;
    let mut initrd = None;
    let mut append: Option<String> = None;
    let mut serial = None;
    let mut cfg_flags = (false, false, false, false, false, false); // no_reboot, no_shutdown, -S, daemonize, require, force
    let mut name = None;
    let mut pidfile = None;
    let mut objects: Vec<BackendConfig> = Vec::new();
    let mut devices = Vec::new();
    let mut qmp = Vec::new();
    let mut monitor = Vec::new();
    let mut drives = Vec::new();
    let mut bios = None;
    let mut boot = crate::BootConfig::default();
    let mut debugcon = None;

    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        let Some(opt) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            return Err(ConfigError::new(format!(
                "'{arg}': unexpected argument (give a disk image with -drive file={arg},format=raw)"
            )));
        };
        match opt {
            "h" | "help" => return Ok(Action::Help),
            "version" => return Ok(Action::Version),
            "machine" | "M" => parse_machine(&mut machine, value(&mut it, opt)?)?,
            "enable-kvm" => {}
            "accel" => {
                let p = keyval("-accel", value(&mut it, opt)?, Some("accel"))?;
                check_accel(p.get("accel").unwrap_or_default())?;
            }
            "cpu" => match value(&mut it, opt)? {
                "host" | "max" => {}
                m if m.starts_with("host,") || m.starts_with("max,") => {}
                other => {
                    return Err(ConfigError::new(format!(
                        "-cpu {other}: pmvm passes the host CPU through; use -cpu host or -cpu max"
                    )));
                }
            },
            "m" => memory = Some(parse_memory(value(&mut it, opt)?)?),
            "smp" => cpus = parse_smp(value(&mut it, opt)?)?,
            "kernel" => kernel = Some(PathBuf::from(value(&mut it, opt)?)),
            "initrd" => initrd = Some(PathBuf::from(value(&mut it, opt)?)),
            "append" => append = Some(value(&mut it, opt)?.to_string()),
            "bios" => bios = Some(PathBuf::from(value(&mut it, opt)?)),
            "boot" => boot = crate::boot::parse_boot(value(&mut it, opt)?)?,
            "debugcon" => debugcon = crate::boot::parse_debugcon(value(&mut it, opt)?)?,
            "cdrom" => {
                let file = value(&mut it, opt)?;
                if file.contains(',') {
                    return Err(ConfigError::new(format!(
                        "-cdrom {file}: a comma in the file name; use -drive media=cdrom,readonly,file=NAME with ',,' for each comma"
                    )));
                }
                drives.push(crate::drive::DriveConfig::from_props(&keyval(
                    "-cdrom",
                    &format!("media=cdrom,readonly=on,index=2,file={file}"),
                    None,
                )?)?);
            }
            // pmvm has no display: the serial console is on stdio unless -serial says otherwise.
            "nographic" => {}
            "serial" => serial = Some(parse_serial(value(&mut it, opt)?)?),
            "display" => match value(&mut it, opt)? {
                "none" => {}
                other => {
                    return Err(ConfigError::new(format!(
                        "-display {other}: pmvm has no display; use -display none"
                    )));
                }
            },
            "no-reboot" => cfg_flags.0 = true,
            "no-shutdown" => cfg_flags.1 = true,
            "S" => cfg_flags.2 = true,
            "daemonize" => cfg_flags.3 = true,
            "require-persistence" => cfg_flags.4 = true,
            "force-label-area" => cfg_flags.5 = true,
            "name" => {
                let p = keyval("-name", value(&mut it, opt)?, Some("guest"))?;
                name = p.get("guest").map(str::to_string);
            }
            "pidfile" => pidfile = Some(PathBuf::from(value(&mut it, opt)?)),
            "nodefaults" | "no-user-config" | "no-hpet" | "no-acpi-hpet" => {}
            "L" => {
                value(&mut it, opt)?;
            }
            "object" => {
                let p = keyval("-object", value(&mut it, opt)?, Some("qom-type"))?;
                let t = p.get("qom-type").unwrap_or_default().to_string();
                let b = BackendConfig::from_props(&t, &p)?;
                if objects.iter().any(|o| o.id == b.id) {
                    return Err(ConfigError::new(format!(
                        "-object: Duplicate ID '{}' for object",
                        b.id
                    )));
                }
                objects.push(b);
            }
            "device" => {
                let p: Props = keyval("-device", value(&mut it, opt)?, Some("driver"))?;
                let d = p.get("driver").unwrap_or_default().to_string();
                devices.push(DeviceConfig::from_props(&d, &p)?);
            }
            "drive" => drives.push(crate::drive::DriveConfig::from_props(&keyval(
                "-drive",
                value(&mut it, opt)?,
                None,
            )?)?),
            "qmp" => qmp.push(ChardevSpec(value(&mut it, opt)?.to_string())),
            "monitor" => monitor.push(ChardevSpec(value(&mut it, opt)?.to_string())),
            o if UNSUPPORTED.contains(&o) => {
                return Err(ConfigError::new(format!(
                    "-{o}: option not supported by pmvm (its only disks are -drive virtio disks; it has no network or display devices)"
                )));
            }
            o => {
                return Err(ConfigError::new(format!(
                    "-{o}: invalid option (see pmvm --help)"
                )));
            }
        }
    }

    let source = crate::boot::boot_source(
        kernel,
        bios,
        initrd.is_some(),
        append.is_some(),
        std::path::Path::new(crate::DEFAULT_FIRMWARE),
    )?;
    let append = append.unwrap_or_default();
    let serial = serial.unwrap_or(SerialConfig::Stdio);
    let cfg = VmConfig {
        name,
        machine,
        memory: memory.unwrap_or_default(),
        cpus,
        source,
        boot,
        debugcon,
        initrd,
        append,
        serial,
        no_reboot: cfg_flags.0,
        no_shutdown: cfg_flags.1,
        start_paused: cfg_flags.2,
        pidfile,
        daemonize: cfg_flags.3,
        objects,
        devices,
        drives: crate::drive::assign_indexes(drives)?,
        qmp,
        monitor,
        require_persistence: cfg_flags.4,
        force_label_area: cfg_flags.5,
    };
    crate::validate::validate(&cfg)?;
    crate::plan::plan_devices(&cfg)?;
    Ok(Action::Run(Box::new(cfg)))
}
