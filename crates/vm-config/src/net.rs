//! Networking options in QEMU's syntax: `-net nic` + `-net user|tap` (QEMU connects every
//! `-net` to hub 0), `-nic user|tap,...`, and `-netdev user|tap,id=ID` + `-device
//! virtio-net-pci|virtio-net-device|e1000,...,netdev=ID`. Every NIC is given to the guest as
//! virtio-net (QEMU's `pc` gives an e1000 for `-net nic`; pmvm says so once, naming the guest
//! driver, as it does for IDE disks). See docs/virtio-net.md.

use std::net::Ipv4Addr;

use crate::ConfigError;
use crate::keyval::Props;

/// QEMU's user network: the guest's DHCP address (`hostfwd` without a guest address uses it).
pub const GUEST_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);

/// QEMU's first default MAC address; NIC n without `mac=` gets the last byte + n.
pub const DEFAULT_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/// One `hostfwd=` rule: `[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFwd {
    pub udp: bool,
    /// `0.0.0.0` (every host address) when empty.
    pub host_addr: Ipv4Addr,
    pub host_port: u16,
    /// The guest's DHCP address ([`GUEST_ADDR`]) when empty.
    pub guest_addr: Ipv4Addr,
    pub guest_port: u16,
    /// The rule as written, for messages.
    pub text: String,
}

fn addr(what: &str, s: &str, default: Ipv4Addr) -> Result<Ipv4Addr, String> {
    if s.is_empty() {
        return Ok(default);
    }
    s.parse()
        .map_err(|_| format!("{what} address '{s}' is not an IPv4 address"))
}

fn port(what: &str, s: &str, zero_ok: bool) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(0) if !zero_ok => Err(format!("{what} port 0 is not valid")),
        Ok(p) => Ok(p),
        Err(_) => Err(format!("{what} port '{s}' is not a number from 1 to 65535")),
    }
}

impl HostFwd {
    /// Parses a rule; the error says what is wrong in it (the caller names the option).
    pub fn parse(s: &str) -> Result<HostFwd, String> {
        let usage = "expected [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport";
        let (proto, rest) = match s.split_once(':') {
            Some((p, r)) => (p, r),
            None => return Err(usage.into()),
        };
        let udp = match proto {
            "" | "tcp" => false,
            "udp" => true,
            p => return Err(format!("protocol '{p}' is not tcp or udp; {usage}")),
        };
        let (host, guest) = rest.split_once('-').ok_or_else(|| usage.to_string())?;
        let (haddr, hport) = host.rsplit_once(':').ok_or_else(|| usage.to_string())?;
        let (gaddr, gport) = guest.rsplit_once(':').ok_or_else(|| usage.to_string())?;
        Ok(HostFwd {
            udp,
            host_addr: addr("host", haddr, Ipv4Addr::UNSPECIFIED)?,
            // Port 0: the host picks one (QEMU allows it too).
            host_port: port("host", hport, true)?,
            guest_addr: addr("guest", gaddr, GUEST_ADDR)?,
            guest_port: port("guest", gport, false)?,
            text: s.to_string(),
        })
    }
}

/// One `guestfwd=` rule: `[tcp]:server:port-cmd:command` (a guest connection to server:port
/// runs the command with the connection on its stdin and stdout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestFwd {
    pub addr: Ipv4Addr,
    pub port: u16,
    pub cmd: String,
}

impl GuestFwd {
    /// Parses a rule; the error says what is wrong in it.
    pub fn parse(s: &str) -> Result<GuestFwd, String> {
        let usage = "expected [tcp]:server:port-cmd:command";
        let (fwd, target) = s.split_once('-').ok_or_else(|| usage.to_string())?;
        let fwd = fwd.strip_prefix("tcp:").unwrap_or(fwd);
        let (a, p) = fwd.split_once(':').ok_or_else(|| usage.to_string())?;
        let a: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("guest server address '{a}' is not an IPv4 address"))?;
        let port = port("guest server", p, false)?;
        let Some(cmd) = target.strip_prefix("cmd:") else {
            return Err(format!(
                "'{target}': pmvm forwards to commands only (no chardevs); write cmd:COMMAND, \
                 e.g. cmd:nc HOST PORT"
            ));
        };
        if cmd.is_empty() {
            return Err("empty command".into());
        }
        Ok(GuestFwd {
            addr: a,
            port,
            cmd: cmd.to_string(),
        })
    }
}

/// The host side of a NIC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetBackendConfig {
    /// User networking (libslirp): 10.0.2.0/24, gateway 10.0.2.2, DNS 10.0.2.3.
    User {
        hostfwd: Vec<HostFwd>,
        guestfwd: Vec<GuestFwd>,
        /// `restrict=on`: the guest reaches nothing outside (hostfwd still works).
        restrict: bool,
    },
    /// A tap device (`ifname=`, created or attached) or an inherited fd (`fd=`).
    Tap {
        ifname: Option<String>,
        fd: Option<i32>,
    },
    /// `-net nic` with nothing on its hub: the NIC's frames go nowhere (QEMU warns the same).
    None,
}

/// One NIC with its backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NicConfig {
    /// The netdev's name: `-netdev id=`, `user.N`/`tap.N` for `-net`, `__org.qemu.nicN` for
    /// `-nic` (QEMU's names); the monitor's `hostfwd_add`/`set_link` take it.
    pub id: String,
    /// The option that made it, for messages (`-net user`, `-netdev user,id=n0`).
    pub option: String,
    /// The guest model asked for (`e1000`, `virtio-net-pci`).
    pub model: String,
    pub mac: [u8; 6],
    pub backend: NetBackendConfig,
}

impl NicConfig {
    /// The notice printed when the model is not virtio (as for IDE disks).
    pub fn model_notice(&self) -> Option<String> {
        (!is_virtio(&self.model)).then(|| {
            format!(
                "pmvm: {}: NIC model {} is given to the guest as virtio-net (Linux driver \
                 virtio_net over virtio_mmio); pmvm has no {} emulation",
                self.option, self.model, self.model
            )
        })
    }

    /// The MAC address as `52:54:00:12:34:56`.
    pub fn mac_string(&self) -> String {
        format_mac(&self.mac)
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn is_virtio(model: &str) -> bool {
    matches!(
        model,
        "virtio"
            | "virtio-net"
            | "virtio-net-pci"
            | "virtio-net-device"
            | "virtio-net-pci-non-transitional"
    )
}

/// Models QEMU's pc machine offers; all become virtio-net.
const MODELS: &[&str] = &[
    "virtio",
    "virtio-net",
    "virtio-net-pci",
    "virtio-net-device",
    "virtio-net-pci-non-transitional",
    "e1000",
    "e1000-82540em",
    "e1000-82544gc",
    "e1000-82545em",
    "e1000e",
    "rtl8139",
    "ne2k_pci",
    "pcnet",
    "i82551",
    "i82557b",
    "i82559er",
    "vmxnet3",
];

/// Whether `-device DRIVER` is a NIC.
pub fn is_nic_driver(driver: &str) -> bool {
    MODELS.contains(&driver) && driver != "virtio"
}

fn check_model(option: &str, m: &str) -> Result<(), ConfigError> {
    if MODELS.contains(&m) {
        Ok(())
    } else {
        Err(ConfigError::new(format!(
            "{option}: model={m}: unsupported NIC model; use virtio-net-pci (or one of {})",
            MODELS.join(", ")
        )))
    }
}

fn parse_mac(option: &str, key: &str, s: &str) -> Result<[u8; 6], ConfigError> {
    let err = || {
        ConfigError::new(format!(
            "{option}: {key}={s}: expected a MAC address like 52:54:00:12:34:56"
        ))
    };
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(err());
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        if p.len() != 2 {
            return Err(err());
        }
        *m = u8::from_str_radix(p, 16).map_err(|_| err())?;
    }
    if mac[0] & 1 != 0 {
        return Err(ConfigError::new(format!(
            "{option}: {key}={s}: a multicast address cannot be a NIC's address (the first byte must be even)"
        )));
    }
    Ok(mac)
}

/// A backend's properties (`user` or `tap`), for `-netdev`, `-net` and `-nic`.
fn backend(
    option: &str,
    kind: &str,
    p: &Props,
    extra: &[&str],
) -> Result<NetBackendConfig, ConfigError> {
    let known: Vec<&str> = match kind {
        "user" => vec![
            "hostfwd",
            "guestfwd",
            "restrict",
            "net",
            "host",
            "dhcpstart",
            "dns",
            "ipv4",
            "ipv6",
        ],
        "tap" => vec!["ifname", "fd", "script", "downscript", "vhost"],
        "none" => vec![],
        other => {
            return Err(ConfigError::new(format!(
                "{option}: network backend '{other}' is not supported by pmvm; use user or tap"
            )));
        }
    };
    if let Some(k) =
        p.0.iter()
            .map(|(k, _)| k.as_str())
            .find(|k| !known.contains(k) && !extra.contains(k))
    {
        return Err(ConfigError::new(format!(
            "{option}: parameter '{k}' is not supported by pmvm (it knows {})",
            known.join(", ")
        )));
    }
    match kind {
        "user" => {
            // QEMU's defaults are the only network pmvm gives; other values are refused.
            for (k, dflt) in [
                ("net", "10.0.2.0/24"),
                ("host", "10.0.2.2"),
                ("dhcpstart", "10.0.2.15"),
                ("dns", "10.0.2.3"),
            ] {
                if let Some(v) = p
                    .get(k)
                    .filter(|v| *v != dflt && !(k == "net" && *v == "10.0.2.0"))
                {
                    return Err(ConfigError::new(format!(
                        "{option}: {k}={v}: pmvm's user network is fixed at QEMU's defaults ({k}={dflt})"
                    )));
                }
            }
            if p.flag(option, "ipv4")? == Some(false) {
                return Err(ConfigError::new(format!(
                    "{option}: ipv4=off: pmvm's user network is IPv4"
                )));
            }
            let mut hostfwd = Vec::new();
            let mut guestfwd = Vec::new();
            for (k, v) in &p.0 {
                match k.as_str() {
                    "hostfwd" => hostfwd
                        .push(HostFwd::parse(v).map_err(|e| {
                            ConfigError::new(format!("{option}: hostfwd={v}: {e}"))
                        })?),
                    "guestfwd" => {
                        guestfwd.push(GuestFwd::parse(v).map_err(|e| {
                            ConfigError::new(format!("{option}: guestfwd={v}: {e}"))
                        })?)
                    }
                    _ => {}
                }
            }
            for (i, a) in hostfwd.iter().enumerate() {
                if let Some(b) = hostfwd[..i].iter().find(|b| {
                    b.udp == a.udp
                        && b.host_port == a.host_port
                        && a.host_port != 0
                        && (b.host_addr == a.host_addr
                            || b.host_addr.is_unspecified()
                            || a.host_addr.is_unspecified())
                }) {
                    return Err(ConfigError::new(format!(
                        "{option}: hostfwd={} and hostfwd={} both take host port {}",
                        b.text, a.text, a.host_port
                    )));
                }
            }
            Ok(NetBackendConfig::User {
                hostfwd,
                guestfwd,
                restrict: p.flag(option, "restrict")?.unwrap_or(false),
            })
        }
        "tap" => {
            for k in ["script", "downscript"] {
                if let Some(v) = p.get(k).filter(|v| *v != "no" && !v.is_empty()) {
                    return Err(ConfigError::new(format!(
                        "{option}: {k}={v}: pmvm runs no scripts; use {k}=no and configure the tap beforehand (ip link set NAME up, master BRIDGE)"
                    )));
                }
            }
            if p.flag(option, "vhost")? == Some(true) {
                return Err(ConfigError::new(format!(
                    "{option}: vhost=on is not supported by pmvm; drop it"
                )));
            }
            let fd = p
                .get("fd")
                .map(|v| {
                    v.parse::<i32>().ok().filter(|f| *f >= 0).ok_or_else(|| {
                        ConfigError::new(format!(
                            "{option}: fd={v}: expected a file descriptor number"
                        ))
                    })
                })
                .transpose()?;
            let ifname = p.get("ifname").map(str::to_string);
            if fd.is_some() && ifname.is_some() {
                return Err(ConfigError::new(format!(
                    "{option}: give either ifname= or fd=, not both"
                )));
            }
            if let Some(n) = &ifname
                && (n.is_empty() || n.len() > 15 || n.contains('/'))
            {
                return Err(ConfigError::new(format!(
                    "{option}: ifname={n}: an interface name has 1 to 15 characters and no '/'"
                )));
            }
            Ok(NetBackendConfig::Tap { ifname, fd })
        }
        _ => Ok(NetBackendConfig::None),
    }
}

/// What the network options of a command line collect, in order.
#[derive(Default, Debug)]
pub struct NetOptions {
    /// `-netdev`: (id, option text, backend).
    netdevs: Vec<(String, String, NetBackendConfig)>,
    /// `-device NIC,netdev=ID`: (model, netdev id, mac, option text).
    devices: Vec<(String, String, Option<[u8; 6]>, String)>,
    /// `-net nic`: (model, mac).
    hub_nics: Vec<(String, Option<[u8; 6]>)>,
    /// `-net user|tap`: (kind, option text, backend).
    hub_backends: Vec<(String, String, NetBackendConfig)>,
    /// `-nic`: complete NICs.
    nics: Vec<(String, Option<[u8; 6]>, String, NetBackendConfig)>,
}

fn option_text(opt: &str, s: &str) -> String {
    let first = s.split(',').next().unwrap_or_default();
    format!("-{opt} {first}")
}

impl NetOptions {
    /// `-netdev TYPE,id=ID,...`.
    pub fn netdev(&mut self, p: &Props) -> Result<(), ConfigError> {
        let kind = p.get("type").unwrap_or_default();
        let id = p.get("id").filter(|i| !i.is_empty()).ok_or_else(|| {
            ConfigError::new(format!(
                "-netdev {kind}: id= is missing (give -netdev {kind},id=NAME)"
            ))
        })?;
        let option = format!("-netdev {kind},id={id}");
        if self.netdevs.iter().any(|n| n.0 == id) {
            return Err(ConfigError::new(format!(
                "{option}: Duplicate ID '{id}' for netdev"
            )));
        }
        let b = backend(&option, kind, p, &["type", "id"])?;
        if b == NetBackendConfig::None {
            return Err(ConfigError::new(format!("{option}: use user or tap")));
        }
        self.netdevs.push((id.to_string(), option, b));
        Ok(())
    }

    /// `-device MODEL,netdev=ID[,mac=][,id=]`.
    pub fn device(&mut self, driver: &str, p: &Props) -> Result<(), ConfigError> {
        let option = format!("-device {driver}");
        if let Some(k) = p.unknown(&["driver", "netdev", "mac", "id", "bus", "addr", "romfile"]) {
            return Err(ConfigError::new(format!(
                "{option}: property '{k}' is not supported by pmvm (netdev, mac, id)"
            )));
        }
        let netdev = p.get("netdev").ok_or_else(|| {
            ConfigError::new(format!(
                "{option}: netdev= is missing (pair it with -netdev user,id=NAME)"
            ))
        })?;
        let mac = p
            .get("mac")
            .map(|m| parse_mac(&option, "mac", m))
            .transpose()?;
        self.devices
            .push((driver.to_string(), netdev.to_string(), mac, option));
        Ok(())
    }

    /// `-net nic|user|tap|none,...`.
    pub fn net(&mut self, s: &str, p: &Props) -> Result<(), ConfigError> {
        let kind = p.get("type").unwrap_or_default();
        let option = option_text("net", s);
        if let Some(v) = p.get("vlan") {
            return Err(ConfigError::new(format!(
                "{option}: vlan={v}: QEMU removed vlan= (every -net joins hub 0); use -netdev and -device for separate networks"
            )));
        }
        match kind {
            "nic" => {
                if let Some(k) = p.unknown(&["type", "model", "macaddr", "name", "id"]) {
                    return Err(ConfigError::new(format!(
                        "{option}: parameter '{k}' is not supported by pmvm (model, macaddr)"
                    )));
                }
                let model = p.get("model").unwrap_or("e1000");
                if model == "help" || model == "?" {
                    return Err(ConfigError::new(format!(
                        "available NIC models: {}",
                        MODELS.join(", ")
                    )));
                }
                check_model(&option, model)?;
                let mac = p
                    .get("macaddr")
                    .map(|m| parse_mac(&option, "macaddr", m))
                    .transpose()?;
                self.hub_nics.push((model.to_string(), mac));
            }
            "none" => {}
            _ => {
                let b = backend(&option, kind, p, &["type", "name", "id"])?;
                self.hub_backends.push((kind.to_string(), option, b));
            }
        }
        Ok(())
    }

    /// `-nic user|tap|none[,model=][,mac=],backend options`.
    pub fn nic(&mut self, s: &str, p: &Props) -> Result<(), ConfigError> {
        let kind = p.get("type").unwrap_or_default();
        let option = option_text("nic", s);
        if kind == "none" {
            return Ok(());
        }
        let model = p.get("model").unwrap_or("e1000");
        check_model(&option, model)?;
        let mac = p
            .get("mac")
            .map(|m| parse_mac(&option, "mac", m))
            .transpose()?;
        let b = backend(&option, kind, p, &["type", "model", "mac", "id"])?;
        self.nics.push((model.to_string(), mac, option, b));
        Ok(())
    }

    /// Pairs NICs with backends and hands out default MACs. Returns the NICs and the warnings
    /// QEMU would also print (a hub without a NIC or without a backend).
    pub fn finish(self) -> Result<(Vec<NicConfig>, Vec<String>), ConfigError> {
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        let mut default_macs = 0u8;
        let mut mac_or_default = |mac: Option<[u8; 6]>| {
            mac.unwrap_or_else(|| {
                let mut m = DEFAULT_MAC;
                m[5] = m[5].wrapping_add(default_macs);
                default_macs = default_macs.wrapping_add(1);
                m
            })
        };
        // -net: hub 0. pmvm has no hub: one NIC and at most one backend on it.
        if self.hub_nics.len() > 1 {
            return Err(ConfigError::new(format!(
                "-net nic: {} NICs on hub 0; pmvm has no hub to join them: use -nic or -netdev/-device pairs, one backend per NIC",
                self.hub_nics.len()
            )));
        }
        if self.hub_backends.len() > 1 {
            return Err(ConfigError::new(format!(
                "{}: a second backend on hub 0 ({}); pmvm has no hub: use one -net user or -net tap",
                self.hub_backends[1].1, self.hub_backends[0].1
            )));
        }
        match (
            self.hub_nics.into_iter().next(),
            self.hub_backends.into_iter().next(),
        ) {
            (Some((model, mac)), backend) => {
                let (id, option, backend) = match backend {
                    Some((kind, option, b)) => (format!("{kind}.0"), option, b),
                    None => {
                        warnings.push("pmvm: warning: -net nic: hub 0 has no host network (no -net user or -net tap); the NIC's frames go nowhere".into());
                        (
                            "hub0port0".into(),
                            "-net nic".into(),
                            NetBackendConfig::None,
                        )
                    }
                };
                out.push(NicConfig {
                    id,
                    option,
                    model,
                    mac: mac_or_default(mac),
                    backend,
                });
            }
            (None, Some((_, option, _))) => {
                warnings.push(format!("pmvm: warning: {option}: hub 0 has no NIC (add -net nic); the backend is not used"));
            }
            (None, None) => {}
        }
        for (i, (model, mac, option, backend)) in self.nics.into_iter().enumerate() {
            out.push(NicConfig {
                id: format!("__org.qemu.nic{i}"),
                option,
                model,
                mac: mac_or_default(mac),
                backend,
            });
        }
        let mut used = vec![false; self.netdevs.len()];
        for (model, netdev, mac, option) in self.devices {
            let Some(i) = self.netdevs.iter().position(|n| n.0 == netdev) else {
                return Err(ConfigError::new(format!(
                    "{option},netdev={netdev}: no -netdev has id '{netdev}' (add -netdev user,id={netdev})"
                )));
            };
            if used[i] {
                return Err(ConfigError::new(format!(
                    "{option},netdev={netdev}: netdev '{netdev}' is already used by another NIC"
                )));
            }
            used[i] = true;
            let (id, nd_option, backend) = self.netdevs[i].clone();
            out.push(NicConfig {
                id,
                option: nd_option,
                model,
                mac: mac_or_default(mac),
                backend,
            });
        }
        for ((_, option, _), used) in self.netdevs.iter().zip(used) {
            if !used {
                warnings.push(format!(
                    "pmvm: warning: {option}: no NIC uses it (add -device virtio-net-pci,netdev=ID)"
                ));
            }
        }
        Ok((out, warnings))
    }
}

#[cfg(test)]
#[path = "net_tests.rs"]
mod tests;
