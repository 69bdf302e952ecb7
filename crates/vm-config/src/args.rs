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
Network (every NIC is virtio-net for the guest; e1000 etc. are given as virtio-net):
  -net nic[,model=M][,macaddr=MAC] -net user[,hostfwd=..][,guestfwd=..]|tap,ifname=NAME,script=no
  -nic user|tap[,model=M][,mac=MAC][,hostfwd=[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport]
  -netdev user,id=ID[,hostfwd=..][,guestfwd=[tcp]:IP:PORT-cmd:COMMAND][,restrict=on|off]
  -netdev tap,id=ID,ifname=NAME|fd=N[,script=no,downscript=no]
  -device virtio-net-pci|virtio-net-device|e1000,netdev=ID[,mac=MAC]
                                user networking needs libslirp (Debian package libslirp0)
Console and control:
  -nographic                    serial on stdio, no display; as in QEMU, Ctrl-a x quits,
                                Ctrl-a c switches to the monitor, Ctrl-a h lists the keys
  -serial stdio|mon:stdio|file:PATH|vc|none
  -display none
  -vnc [HOST]:N|unix:PATH|none[,password=on][,websocket=on|PORT][,to=L][,share=..][,connections=N]
                                a VNC server (port 5900+N; ':0' is every interface, '127.0.0.1:0'
                                loopback only): Ctrl-Alt-1 the guest's screen (its serial text
                                until pmvm has a framebuffer device), Ctrl-Alt-2 the monitor,
                                Ctrl-Alt-3 the serial console; without -nographic or -serial the
                                serial port goes there only (QEMU's 'vc')
  -qmp unix:PATH,server[=on][,wait=off] | tcp:HOST:PORT,server[,wait=off]
  -monitor stdio|unix:PATH,server[,wait=off]
  -no-reboot                    exit instead of rebooting
  -no-shutdown                  stop the VM instead of exiting on guest poweroff
  -S                            start with the vCPUs stopped (continue with QMP 'cont')
  -name NAME
  -pidfile FILE
  -daemonize
  -sandbox on|off               a seccomp filter per thread (vCPU, I/O, monitor, ...): a system
                                call outside it ends pmvm, naming the call; on by default
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
    "hda", "hdb", "usb", "usbdevice", "vga", "spice",
    "soundhw", "audiodev", "numa", "chardev", "fsdev", "virtfs", "blockdev",
    "global", "icount", "rtc", "incoming", "loadvm", "snapshot", "mem-path", "mem-prealloc",
    "overcommit", "readconfig", "D", "d", "trace", "s", "gdb", "watchdog", "device-help",
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

/// QEMU's `-sandbox on|off[,obsolete=..][,elevateprivileges=..][,spawn=..][,resourcecontrol=..]`:
/// pmvm's filters are fixed per thread kind, so the sub-options are refused by name.
fn parse_sandbox(s: &str) -> Result<bool, ConfigError> {
    let p = keyval("-sandbox", s, Some("enable"))?;
    if let Some(k) = p.unknown(&["enable"]) {
        return Err(ConfigError::new(format!(
            "-sandbox: sub-option '{k}' is not supported by pmvm (its seccomp filters are fixed per thread); use -sandbox on or -sandbox off"
        )));
    }
    match p.get("enable") {
        Some(v) => crate::keyval::parse_bool("-sandbox", "enable", v),
        None => Err(ConfigError::new("-sandbox: expects on or off")),
    }
}

fn parse_serial(s: &str) -> Result<SerialConfig, ConfigError> {
    match s {
        "stdio" | "mon:stdio" => Ok(SerialConfig::Stdio),
        "none" | "null" => Ok(SerialConfig::None),
        // QEMU's text console, with an optional size (`vc:80Cx24C`), which pmvm ignores.
        _ if s == "vc" || s.starts_with("vc:") => Ok(SerialConfig::Vc),
        _ => match s.strip_prefix("file:") {
            Some(p) if !p.is_empty() => Ok(SerialConfig::File(PathBuf::from(p))),
            _ => Err(ConfigError::new(format!(
                "-serial '{s}' is not supported; use stdio, file:PATH, vc or none"
            ))),
        },
    }
}

/// `-vnc SPEC`: kept as given for the VMM (`rfb::parse_vnc_spec` checks the details there, so
/// this crate stays free of the VNC server); only an empty spec or option is refused here.
fn parse_vnc(v: &str) -> Result<String, ConfigError> {
    if v.is_empty() || v.starts_with(',') {
        return Err(ConfigError::new(
            "-vnc: expects a display such as :0, 127.0.0.1:0, unix:PATH or none",
        ));
    }
    Ok(v.to_string())
}

/// `-vnc none[,...]`: QEMU's VNC without a listener, which pmvm (having no `change vnc
/// DISPLAY`) treats as no VNC at all.
fn is_vnc_none(v: &str) -> bool {
    v.split(',').next() == Some("none")
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
    let mut sandbox = true;
    let mut net = crate::net::NetOptions::default();
    let mut nographic = false;
    let mut vnc: Option<String> = None;
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
            // As in QEMU: the serial port (and the monitor, behind Ctrl-a c) on stdio.
            "nographic" => nographic = true,
            "vnc" => {
                let v = value(&mut it, opt)?;
                if vnc.is_some() {
                    return Err(ConfigError::new(format!(
                        "-vnc {v}: given twice; pmvm runs one VNC server"
                    )));
                }
                vnc = Some(parse_vnc(v)?);
            }
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
            "serial" => serial = Some(parse_serial(value(&mut it, opt)?)?),
            "display" => match value(&mut it, opt)? {
                "none" => {}
                other => {
                    return Err(ConfigError::new(format!(
                        "-display {other}: pmvm has no local display; use -display none, and -vnc :0 for a remote one"
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
            "sandbox" => sandbox = parse_sandbox(value(&mut it, opt)?)?,
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
                if crate::net::is_nic_driver(&d) {
                    net.device(&d, &p)?;
                } else {
                    devices.push(DeviceConfig::from_props(&d, &p)?);
                }
            }
            "netdev" => net.netdev(&keyval("-netdev", value(&mut it, opt)?, Some("type"))?)?,
            "net" => {
                let v = value(&mut it, opt)?;
                net.net(v, &keyval("-net", v, Some("type"))?)?;
            }
            "nic" => {
                let v = value(&mut it, opt)?;
                net.nic(v, &keyval("-nic", v, Some("type"))?)?;
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
                    "-{o}: option not supported by pmvm (its only disks are -drive virtio disks; it has no local display devices)"
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
    let (nics, net_warnings) = net.finish()?;
    let vnc = vnc.filter(|v| !is_vnc_none(v));
    let serial = match serial {
        Some(SerialConfig::Vc) if vnc.is_none() => {
            return Err(ConfigError::new(
                "-serial vc: pmvm shows virtual consoles only over VNC; add -vnc 127.0.0.1:0 or use -serial stdio",
            ));
        }
        Some(s) => s,
        // QEMU: with a display (here only VNC) and without -nographic the serial port is a
        // virtual console. pmvm has no local display, so without -vnc it stays on stdio.
        None if vnc.is_some() && !nographic => SerialConfig::Vc,
        None => SerialConfig::Stdio,
    };
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
        sandbox,
        objects,
        devices,
        drives: crate::drive::assign_indexes(drives)?,
        nics,
        net_warnings,
        qmp,
        monitor,
        vnc,
        require_persistence: cfg_flags.4,
        force_label_area: cfg_flags.5,
    };
    crate::validate::validate(&cfg)?;
    crate::plan::plan_devices(&cfg)?;
    Ok(Action::Run(Box::new(cfg)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(extra: &[&str]) -> Result<Box<VmConfig>, ConfigError> {
        // Any existing file will do as the kernel: validation only checks that it is there.
        let kernel = std::env::current_exe().unwrap().display().to_string();
        let mut argv = vec!["-kernel".to_string(), kernel];
        argv.extend(extra.iter().map(|s| s.to_string()));
        match parse_args(&argv)? {
            Action::Run(cfg) => Ok(cfg),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sandbox_is_on_by_default_and_takes_on_or_off() {
        assert!(run(&[]).unwrap().sandbox);
        assert!(run(&["-sandbox", "on"]).unwrap().sandbox);
        assert!(!run(&["-sandbox", "off"]).unwrap().sandbox);
        assert!(!run(&["-sandbox", "enable=off"]).unwrap().sandbox);
    }

    #[test]
    fn vnc_sends_the_serial_port_to_its_console_unless_told_otherwise() {
        let c = run(&["-vnc", ":0"]).unwrap();
        assert_eq!(c.vnc.as_deref(), Some(":0"));
        assert_eq!(c.serial, SerialConfig::Vc);
        // -display none does not change that (QEMU: no local window, serial still on vc).
        assert_eq!(
            run(&["-display", "none", "-vnc", ":0"]).unwrap().serial,
            SerialConfig::Vc
        );
        // -nographic keeps the serial port on stdio; VNC still runs.
        let c = run(&["-nographic", "-vnc", "unix:/tmp/v.sock"]).unwrap();
        assert_eq!((c.serial, c.vnc.is_some()), (SerialConfig::Stdio, true));
        let c = run(&["-vnc", ":1,password=on", "-serial", "file:/tmp/s.log"]).unwrap();
        assert_eq!(c.serial, SerialConfig::File("/tmp/s.log".into()));
        assert_eq!(
            run(&["-vnc", ":0", "-serial", "vc:80Cx24C"])
                .unwrap()
                .serial,
            SerialConfig::Vc
        );
        // Without -vnc (or with -vnc none) the serial port stays on stdio.
        assert_eq!(run(&[]).unwrap().serial, SerialConfig::Stdio);
        let c = run(&["-vnc", "none"]).unwrap();
        assert_eq!((c.serial, c.vnc), (SerialConfig::Stdio, None));
    }

    #[test]
    fn vnc_errors_name_the_option() {
        for (args, want) in [
            (&["-vnc", ""][..], "-vnc"),
            (&["-vnc", ":0", "-vnc", ":1"][..], "given twice"),
            (&["-serial", "vc"][..], "-vnc"),
            (&["-vnc"][..], "-vnc: requires an argument"),
            (&["-display", "gtk"][..], "-vnc :0"),
        ] {
            let e = run(args).unwrap_err().to_string();
            assert!(e.contains(want) && !e.contains('\n'), "{args:?}: {e}");
        }
    }

    #[test]
    fn sandbox_sub_options_and_bad_values_are_refused_by_name() {
        let e = run(&["-sandbox", "on,obsolete=deny"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'obsolete'") && e.contains("-sandbox on"), "{e}");
        let e = run(&["-sandbox", "maybe"]).unwrap_err().to_string();
        assert!(e.contains("-sandbox") && e.contains("maybe"), "{e}");
        assert!(run(&["-sandbox"]).is_err());
    }
}
