//! Typed commands and their argument checking (QEMU's QAPI input visitor, by hand).
//!
//! Argument errors use QEMU's texts: "Parameter 'x' is missing", "Invalid parameter type for
//! 'x', expected: string", "Parameter 'x' is unexpected", "Parameter 'x' does not accept value
//! 'y'". Checks happen before the handler runs, so a rejected command has no side effect.

use crate::error::QmpError;
use crate::json::{Json, Number, format_number};

/// Properties in the client's order, values normalised to command-line text: the same type
/// the `-object`/`-device` parser of `vm-config` produces, so the VMM reads both alike.
pub use vm_config::Props;

/// `object-add` (QEMU 6+ flat form): `{"qom-type": ..., "id": ..., <props>}`.
///
/// Keeps every member, `qom-type` and `id` included, in the order the client sent them; both
/// are checked to be present when the value is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectAdd {
    props: Props,
}

impl ObjectAdd {
    /// Checks that `props` has `qom-type` and `id` ("Parameter 'qom-type' is missing", ...).
    pub fn new(props: Props) -> Result<Self, QmpError> {
        require(&props, "qom-type")?;
        require(&props, "id")?;
        Ok(ObjectAdd { props })
    }

    /// QOM type, e.g. "memory-backend-file".
    pub fn qom_type(&self) -> &str {
        self.props.get("qom-type").unwrap_or_default()
    }

    /// Object id.
    pub fn id(&self) -> &str {
        self.props.get("id").unwrap_or_default()
    }

    /// All members, in order: booleans as "on"/"off", numbers in decimal.
    pub fn props(&self) -> &Props {
        &self.props
    }

    /// The same object as a `-object` argument: `memory-backend-file,id=mem3,size=4294967296`
    /// (type first, then `id`, then the rest in order; commas in values doubled), so the VMM
    /// can reuse its command-line parser.
    pub fn to_opts_string(&self) -> String {
        opts_string(&self.props, "qom-type")
    }
}

/// `device_add`: `{"driver": ..., "id": ..., <props>}`.
///
/// Keeps every member, `driver` and `id` included, in the order the client sent them;
/// `driver` is checked to be present when the value is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAdd {
    props: Props,
}

impl DeviceAdd {
    /// Checks that `props` has `driver` ("Parameter 'driver' is missing").
    pub fn new(props: Props) -> Result<Self, QmpError> {
        require(&props, "driver")?;
        Ok(DeviceAdd { props })
    }

    /// Device driver, e.g. "nvdimm".
    pub fn driver(&self) -> &str {
        self.props.get("driver").unwrap_or_default()
    }

    /// Device id, if given.
    pub fn id(&self) -> Option<&str> {
        self.props.get("id")
    }

    /// All members (including `bus`), in order, normalised like [`ObjectAdd::props`].
    pub fn props(&self) -> &Props {
        &self.props
    }

    /// The same device as a `-device` argument: `nvdimm,id=nv2,memdev=mem3` (driver first,
    /// then `id`, then the rest in order).
    pub fn to_opts_string(&self) -> String {
        opts_string(&self.props, "driver")
    }
}

fn require(props: &Props, key: &str) -> Result<(), QmpError> {
    match props.get(key) {
        Some(_) => Ok(()),
        None => Err(QmpError::generic(format!("Parameter '{key}' is missing"))),
    }
}

/// `props` as command-line text: the first `type_key` member as a bare value, then the first
/// `id`, then every other member in order.
fn opts_string(props: &Props, type_key: &str) -> String {
    let first = |key: &str| props.0.iter().position(|(k, _)| k == key);
    let type_at = first(type_key);
    let id_at = first("id");
    let mut s = type_at
        .map(|i| escape_opt(&props.0[i].1))
        .unwrap_or_default();
    if let Some(i) = id_at {
        push_opt(&mut s, "id", &props.0[i].1);
    }
    for (i, (k, v)) in props.0.iter().enumerate() {
        if Some(i) != type_at && Some(i) != id_at {
            push_opt(&mut s, k, v);
        }
    }
    s
}

fn escape_opt(v: &str) -> String {
    v.replace(',', ",,")
}

fn push_opt(s: &mut String, k: &str, v: &str) {
    s.push(',');
    s.push_str(&escape_opt(k));
    s.push('=');
    s.push_str(&escape_opt(v));
}

/// A command, decoded and type-checked.
///
/// `QmpCapabilities`, `QueryVersion`, `QueryCommands` and `HumanMonitorCommand` are answered by
/// the server itself; a [`crate::QmpHandler`] sees every other variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `qmp_capabilities {"enable": [...]}`.
    QmpCapabilities {
        /// Capabilities to enable (we offer none, so this must be empty).
        enable: Vec<String>,
    },
    /// `query-version`.
    QueryVersion,
    /// `query-commands`.
    QueryCommands,
    /// `query-status` → [`crate::types::StatusInfo`].
    QueryStatus,
    /// `query-name` → [`crate::types::NameInfo`].
    QueryName,
    /// `query-memory-devices` → `Vec<`[`crate::types::MemoryDeviceInfo`]`>`.
    QueryMemoryDevices,
    /// `query-memory-size-summary` → [`crate::types::MemoryInfo`].
    QueryMemorySizeSummary,
    /// `query-memdev` → `Vec<`[`crate::types::Memdev`]`>`.
    QueryMemdev,
    /// `query-cpus-fast` → `Vec<`[`crate::types::CpuInfoFast`]`>`.
    QueryCpusFast,
    /// `query-block` → `Vec<`[`crate::types::BlockInfo`]`>` (the `-drive` disks).
    QueryBlock,
    /// HMP `info registers [-a]` (no QMP form, as in QEMU) → a string: the current vCPU's
    /// registers, or every vCPU's with `all`.
    InfoRegisters {
        /// `-a`: all vCPUs.
        all: bool,
    },
    /// HMP `info network` (no QMP form, as in QEMU) → a string: each NIC and its backend.
    InfoNetwork,
    /// HMP `hostfwd_add [netdev_id] [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport`.
    HostfwdAdd {
        /// The user network (the first one if absent).
        netdev: Option<String>,
        /// The rule, as on the command line.
        rule: String,
    },
    /// HMP `hostfwd_remove [netdev_id] [tcp|udp]:[hostaddr]:hostport`.
    HostfwdRemove {
        /// The user network (the first one if absent).
        netdev: Option<String>,
        /// The listening side of the rule.
        rule: String,
    },
    /// `set_link {"name": ..., "up": ...}`: a NIC's link up or down.
    SetLink {
        /// The NIC or netdev name.
        name: String,
        /// Link up.
        up: bool,
    },
    /// `object-add`.
    ObjectAdd(ObjectAdd),
    /// `object-del {"id": ...}`.
    ObjectDel {
        /// Object id.
        id: String,
    },
    /// `device_add`.
    DeviceAdd(DeviceAdd),
    /// `device_del {"id": ...}` (id or QOM path).
    DeviceDel {
        /// Device id or QOM path.
        id: String,
    },
    /// `stop`: pause the vCPUs.
    Stop,
    /// `cont`: resume the vCPUs.
    Cont,
    /// `system_powerdown`: press the ACPI power button.
    SystemPowerdown,
    /// `system_reset`: reset the machine.
    SystemReset,
    /// `quit`: the VMM should exit (after replying).
    Quit,
    /// `query-vnc` → [`crate::vnc::VncInfo`].
    QueryVnc,
    /// `set_password {"protocol": "vnc", "password": ...}` (HMP `set_password`, `change vnc
    /// password`).
    SetPassword {
        /// `vnc` or `spice`.
        protocol: String,
        /// The new password.
        password: String,
        /// `fail`, `disconnect` or `keep` (VNC: only `keep`).
        connected: Option<String>,
        /// VNC display id.
        display: Option<String>,
    },
    /// `human-monitor-command {"command-line": ..., "cpu-index": ...}`.
    HumanMonitorCommand {
        /// The HMP command line.
        command_line: String,
        /// CPU to make current (ignored).
        cpu_index: Option<i64>,
    },
}

/// One command of the table: its QMP name, whether the schema declares a return value, and
/// how its arguments are decoded.
#[derive(Clone, Copy, Debug)]
pub struct CommandSpec {
    /// The QMP name, e.g. "device_add".
    pub name: &'static str,
    /// True if the schema declares a return value; otherwise the reply is always `{}`.
    pub has_return: bool,
    decode: fn(&mut Args<'_>) -> Result<Command, QmpError>,
}

impl CommandSpec {
    /// Decodes this command's `arguments` (an object's members; `None` = no arguments).
    pub fn decode(&self, arguments: Option<&[(String, Json)]>) -> Result<Command, QmpError> {
        let mut a = Args::new(arguments.unwrap_or(&[]));
        let cmd = (self.decode)(&mut a)?;
        a.finish()?;
        Ok(cmd)
    }
}

/// Generates, from one declaration, [`COMMANDS`], [`COMMAND_NAMES`], [`Command::name`] and
/// [`Command::has_return`]. `qmp` rows are QMP commands (in `query-commands` order) with the
/// expression that decodes their arguments from `Args` `$a`; `hmp_only` rows have no QMP form.
macro_rules! command_table {
    (
        qmp {
            $( $pat:pat => $name:literal, returns: $ret:literal, |$a:ident| $decode:expr; )*
        }
        hmp_only {
            $( $hpat:pat => $hname:literal, returns: $hret:literal; )*
        }
    ) => {
        /// Every QMP command we implement, in the order `query-commands` lists them.
        pub const COMMANDS: &[CommandSpec] = &[
            $( CommandSpec { name: $name, has_return: $ret, decode: |$a| Ok($decode) }, )*
        ];

        /// The names of [`COMMANDS`], in the same order.
        pub const COMMAND_NAMES: &[&str] = &[ $( $name, )* ];

        impl Command {
            /// The QMP name of the command (HMP-only commands: their HMP name).
            pub fn name(&self) -> &'static str {
                match self {
                    $( $pat => $name, )*
                    $( $hpat => $hname, )*
                }
            }

            /// True if the schema declares a return value; otherwise the reply is always `{}`.
            pub fn has_return(&self) -> bool {
                match self {
                    $( $pat => $ret, )*
                    $( $hpat => $hret, )*
                }
            }
        }
    };
}

command_table! {
    qmp {
        Command::QmpCapabilities { .. } => "qmp_capabilities", returns: false,
            |a| Command::QmpCapabilities { enable: a.capabilities("enable")? };
        Command::QueryVersion => "query-version", returns: true, |_a| Command::QueryVersion;
        Command::QueryCommands => "query-commands", returns: true, |_a| Command::QueryCommands;
        Command::QueryStatus => "query-status", returns: true, |_a| Command::QueryStatus;
        Command::QueryName => "query-name", returns: true, |_a| Command::QueryName;
        Command::QueryMemoryDevices => "query-memory-devices", returns: true,
            |_a| Command::QueryMemoryDevices;
        Command::QueryMemorySizeSummary => "query-memory-size-summary", returns: true,
            |_a| Command::QueryMemorySizeSummary;
        Command::QueryMemdev => "query-memdev", returns: true, |_a| Command::QueryMemdev;
        Command::QueryCpusFast => "query-cpus-fast", returns: true, |_a| Command::QueryCpusFast;
        Command::QueryBlock => "query-block", returns: true, |_a| Command::QueryBlock;
        Command::SetLink { .. } => "set_link", returns: false, |a| Command::SetLink {
            name: a.req_str("name")?,
            up: a.req_bool("up")?,
        };
        Command::ObjectAdd(_) => "object-add", returns: false, |a| {
            a.check_str("qom-type", true)?;
            a.check_str("id", true)?;
            Command::ObjectAdd(ObjectAdd::new(a.all_as_props()?)?)
        };
        Command::ObjectDel { .. } => "object-del", returns: false,
            |a| Command::ObjectDel { id: a.req_str("id")? };
        Command::DeviceAdd(_) => "device_add", returns: false, |a| {
            a.check_str("driver", true)?;
            a.check_str("id", false)?;
            Command::DeviceAdd(DeviceAdd::new(a.all_as_props()?)?)
        };
        Command::DeviceDel { .. } => "device_del", returns: false,
            |a| Command::DeviceDel { id: a.req_str("id")? };
        Command::Stop => "stop", returns: false, |_a| Command::Stop;
        Command::Cont => "cont", returns: false, |_a| Command::Cont;
        Command::SystemPowerdown => "system_powerdown", returns: false,
            |_a| Command::SystemPowerdown;
        Command::SystemReset => "system_reset", returns: false, |_a| Command::SystemReset;
        Command::Quit => "quit", returns: false, |_a| Command::Quit;
        Command::QueryVnc => "query-vnc", returns: true, |_a| Command::QueryVnc;
        Command::SetPassword { .. } => "set_password", returns: false,
            |a| set_password(
                a.req_str("protocol")?,
                a.req_str("password")?,
                a.opt_str("connected")?,
                a.opt_str("display")?,
            )?;
        Command::HumanMonitorCommand { .. } => "human-monitor-command", returns: true,
            |a| Command::HumanMonitorCommand {
                command_line: a.req_str("command-line")?,
                cpu_index: a.opt_int("cpu-index")?,
            };
    }
    hmp_only {
        Command::InfoRegisters { .. } => "info registers", returns: true;
        Command::InfoNetwork => "info network", returns: true;
        Command::HostfwdAdd { .. } => "hostfwd_add", returns: false;
        Command::HostfwdRemove { .. } => "hostfwd_remove", returns: false;
    }
}

fn one_of(name: &str, v: &str, allowed: &[&str]) -> Result<(), QmpError> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(QmpError::generic(format!(
            "Parameter '{name}' does not accept value '{v}'"
        )))
    }
}

/// Builds `set_password` after QAPI's checks: `protocol` is `vnc` or `spice`, `connected` is
/// `fail`, `disconnect` or `keep`.
pub fn set_password(
    protocol: String,
    password: String,
    connected: Option<String>,
    display: Option<String>,
) -> Result<Command, QmpError> {
    one_of("protocol", &protocol, &["vnc", "spice"])?;
    if let Some(c) = &connected {
        one_of("connected", c, &["fail", "disconnect", "keep"])?;
    }
    Ok(Command::SetPassword {
        protocol,
        password,
        connected,
        display,
    })
}

impl Command {
    /// Decodes command `name` with `arguments` (an object's members; `None` = no arguments).
    pub fn from_qmp(name: &str, arguments: Option<&[(String, Json)]>) -> Result<Command, QmpError> {
        match COMMANDS.iter().find(|c| c.name == name) {
            Some(spec) => spec.decode(arguments),
            None => Err(QmpError::command_not_found(format!(
                "The command {name} has not been found"
            ))),
        }
    }
}

/// Argument visitor: members are taken by name; whatever is left over is an error.
struct Args<'a> {
    members: &'a [(String, Json)],
    used: Vec<bool>,
}

fn bad_type(name: &str, expected: &str) -> QmpError {
    QmpError::generic(format!(
        "Invalid parameter type for '{name}', expected: {expected}"
    ))
}

impl<'a> Args<'a> {
    fn new(members: &'a [(String, Json)]) -> Self {
        Args {
            members,
            used: vec![false; members.len()],
        }
    }

    fn take(&mut self, name: &str) -> Option<&'a Json> {
        let i = self.members.iter().position(|(k, _)| k == name)?;
        self.used[i] = true;
        Some(&self.members[i].1)
    }

    fn opt_str(&mut self, name: &str) -> Result<Option<String>, QmpError> {
        match self.take(name) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad_type(name, "string")),
        }
    }

    fn req_str(&mut self, name: &str) -> Result<String, QmpError> {
        self.opt_str(name)?
            .ok_or_else(|| QmpError::generic(format!("Parameter '{name}' is missing")))
    }

    fn req_bool(&mut self, name: &str) -> Result<bool, QmpError> {
        match self.take(name) {
            None => Err(QmpError::generic(format!("Parameter '{name}' is missing"))),
            Some(Json::Bool(b)) => Ok(*b),
            Some(_) => Err(bad_type(name, "boolean")),
        }
    }

    fn opt_int(&mut self, name: &str) -> Result<Option<i64>, QmpError> {
        match self.take(name) {
            None => Ok(None),
            Some(Json::Number(Number::Int(i))) => Ok(Some(*i)),
            Some(_) => Err(bad_type(name, "integer")),
        }
    }

    /// `'*enable': ['QMPCapability']`; the only capability QEMU knows is "oob".
    fn capabilities(&mut self, name: &str) -> Result<Vec<String>, QmpError> {
        let list = match self.take(name) {
            None => return Ok(Vec::new()),
            Some(Json::Array(l)) => l,
            Some(_) => return Err(bad_type(name, "array")),
        };
        // The first element decides: anything but "oob" is not a QMPCapability, and "oob" is
        // never offered (see docs/qmp.md), so only an empty list is accepted.
        if let Some(v) = list.first() {
            let Json::String(s) = v else {
                return Err(bad_type(&format!("{name}[0]"), "string"));
            };
            if s != "oob" {
                return Err(QmpError::generic(format!(
                    "Parameter '{name}[0]' does not accept value '{s}'"
                )));
            }
            return Err(QmpError::generic(format!("Capability {s} not available")));
        }
        Ok(Vec::new())
    }

    /// Checks that member `name` is a string (and present, if `required`) without taking it.
    fn check_str(&self, name: &str, required: bool) -> Result<(), QmpError> {
        match self.members.iter().find(|(k, _)| k == name) {
            None if required => Err(QmpError::generic(format!("Parameter '{name}' is missing"))),
            None | Some((_, Json::String(_))) => Ok(()),
            Some(_) => Err(bad_type(name, "string")),
        }
    }

    /// Every member, in order, as command-line style properties (and marks them all used).
    fn all_as_props(&mut self) -> Result<Props, QmpError> {
        let mut props = Vec::new();
        for (i, (k, v)) in self.members.iter().enumerate() {
            self.used[i] = true;
            props.push((k.clone(), prop_text(k, v)?));
        }
        Ok(Props(props))
    }

    fn finish(self) -> Result<(), QmpError> {
        match self.used.iter().position(|u| !u) {
            None => Ok(()),
            Some(i) => Err(QmpError::generic(format!(
                "Parameter '{}' is unexpected",
                self.members[i].0
            ))),
        }
    }
}

/// A property value as the command line would spell it: strings as-is, booleans "on"/"off",
/// numbers in decimal (integral doubles without a fraction).
pub fn prop_text(name: &str, v: &Json) -> Result<String, QmpError> {
    match v {
        Json::String(s) => Ok(s.clone()),
        Json::Bool(true) => Ok("on".to_string()),
        Json::Bool(false) => Ok("off".to_string()),
        Json::Number(Number::Float(f))
            if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 =>
        {
            // Exactly integral and below 2^53: print as an integer ("4294967296", not "4.29e9").
            // The cast is exact by the range check above.
            Ok(format!("{}", *f as i64))
        }
        Json::Number(n) => Ok(format_number(*n)),
        Json::Null | Json::Array(_) | Json::Object(_) => {
            Err(bad_type(name, "string, number or boolean"))
        }
    }
}
