//! The network commands: `info network`, `hostfwd_add`, `hostfwd_remove` (HMP) and `set_link`
//! (HMP and QMP). Rule changes also go into the configuration the monitor keeps, so a guest
//! reset (which rebuilds the VM and its user networks) keeps them, as QEMU's netdevs survive
//! a reset.

use qmp::QmpError;
use serde_json::{Value, json};
use vm_config::{HostFwd, NetBackendConfig};

use super::state::State;
use crate::devices::net::NetDev;

fn generic(msg: impl Into<String>) -> QmpError {
    QmpError::generic(msg.into())
}

/// QEMU's name of NIC `i`: `<model>.<n>`, n counting NICs of that model.
fn nic_name(nets: &[NetDev], i: usize) -> String {
    let model = &nets[i].cfg.model;
    let n = nets[..i].iter().filter(|m| &m.cfg.model == model).count();
    format!("{model}.{n}")
}

/// The NIC a name designates: its netdev id, or QEMU's NIC name `<model>.<n>`.
fn find<'a>(nets: &'a [NetDev], name: &str) -> Option<(usize, &'a NetDev)> {
    nets.iter()
        .enumerate()
        .find(|(i, n)| n.cfg.id == name || nic_name(nets, *i) == name)
}

/// The user network `netdev` names, or the first one.
fn user_net<'a>(nets: &'a [NetDev], netdev: Option<&str>) -> Result<(usize, &'a NetDev), QmpError> {
    match netdev {
        Some(n) => find(nets, n).ok_or_else(|| generic(format!("unknown netdev '{n}'"))),
        None => nets
            .iter()
            .enumerate()
            .find(|(_, n)| matches!(n.cfg.backend, NetBackendConfig::User { .. }))
            .ok_or_else(|| {
                generic("no user network (-net user, -nic user or -netdev user) to forward to")
            }),
    }
}

/// HMP `info network`.
pub fn info(st: &State) -> Result<Value, QmpError> {
    let vm = st.vm()?;
    let text: String = (0..vm.nets.len())
        .map(|i| vm.nets[i].info(&nic_name(&vm.nets, i)))
        .collect();
    Ok(Value::String(text))
}

/// HMP `hostfwd_add [netdev] rule`.
pub fn hostfwd_add(st: &mut State, netdev: Option<&str>, rule: &str) -> Result<Value, QmpError> {
    let r = HostFwd::parse(rule)
        .map_err(|e| generic(format!("invalid host forwarding rule '{rule}': {e}")))?;
    let nets = st.vm()?.nets.clone();
    let (i, net) = user_net(&nets, netdev)?;
    net.add_hostfwd(&r).map_err(generic)?;
    if let Some(NetBackendConfig::User { hostfwd, .. }) =
        st.cfg.nics.get_mut(i).map(|n| &mut n.backend)
    {
        hostfwd.push(r);
    }
    Ok(json!({}))
}

/// Parses `[tcp|udp]:[hostaddr]:hostport`.
fn listening_side(rule: &str) -> Result<(bool, std::net::Ipv4Addr, u16), String> {
    let (proto, rest) = rule
        .split_once(':')
        .ok_or("expected [tcp|udp]:[hostaddr]:hostport")?;
    let udp = match proto {
        "" | "tcp" => false,
        "udp" => true,
        p => return Err(format!("protocol '{p}' is not tcp or udp")),
    };
    let (a, p) = rest
        .rsplit_once(':')
        .ok_or("expected [tcp|udp]:[hostaddr]:hostport")?;
    let addr = if a.is_empty() {
        std::net::Ipv4Addr::UNSPECIFIED
    } else {
        a.parse()
            .map_err(|_| format!("'{a}' is not an IPv4 address"))?
    };
    let port = p
        .parse()
        .map_err(|_| format!("port '{p}' is not a number"))?;
    Ok((udp, addr, port))
}

/// HMP `hostfwd_remove [netdev] [tcp|udp]:[hostaddr]:hostport`.
pub fn hostfwd_remove(st: &mut State, netdev: Option<&str>, rule: &str) -> Result<Value, QmpError> {
    let (udp, addr, port) =
        listening_side(rule).map_err(|e| generic(format!("invalid format '{rule}': {e}")))?;
    let nets = st.vm()?.nets.clone();
    let (i, net) = user_net(&nets, netdev)?;
    net.remove_hostfwd(udp, addr, port)
        .map_err(|e| generic(format!("host forwarding rule for {rule} not found ({e})")))?;
    if let Some(NetBackendConfig::User { hostfwd, .. }) =
        st.cfg.nics.get_mut(i).map(|n| &mut n.backend)
    {
        hostfwd.retain(|h| !(h.udp == udp && h.host_addr == addr && h.host_port == port));
    }
    Ok(json!({}))
}

/// `set_link name on|off`.
pub fn set_link(st: &State, name: &str, up: bool) -> Result<Value, QmpError> {
    let nets = st.vm()?.nets.clone();
    let (_, net) = find(&nets, name).ok_or_else(|| {
        QmpError::new(
            qmp::ErrorClass::DeviceNotFound,
            format!("Device '{name}' not found"),
        )
    })?;
    net.link.set(up);
    Ok(json!({}))
}
