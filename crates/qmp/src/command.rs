//! Typed commands and their argument checking (QEMU's QAPI input visitor, by hand).
//!
//! Argument errors use QEMU's texts: "Parameter 'x' is missing", "Invalid parameter type for
//! 'x', expected: string", "Parameter 'x' is unexpected", "Parameter 'x' does not accept value
//! 'y'". Checks happen before the handler runs, so a rejected command has no side effect.

use crate::error::QmpError;
use crate::json::{Json, Number, format_number};

/// Properties in the client's order, values normalised to command-line text.
pub type Props = Vec<(String, String)>;

/// `object-add` (QEMU 6+ flat form): `{"qom-type": ..., "id": ..., <props>}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectAdd {
    /// QOM type, e.g. "memory-backend-file".
    pub qom_type: String,
    /// Object id.
    pub id: String,
    /// The other properties, in order: booleans as "on"/"off", numbers in decimal.
    pub props: Props,
}

impl ObjectAdd {
    /// The same object as a `-object` argument: `memory-backend-file,id=mem3,size=4294967296`
    /// (commas in values doubled), so the VMM can reuse its command-line parser.
    pub fn to_opts_string(&self) -> String {
        let mut s = escape_opt(&self.qom_type);
        push_opt(&mut s, "id", &self.id);
        for (k, v) in &self.props {
            push_opt(&mut s, k, v);
        }
        s
    }
}

/// `device_add`: `{"driver": ..., "id": ..., <props>}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAdd {
    /// Device driver, e.g. "nvdimm".
    pub driver: String,
    /// Device id, if given.
    pub id: Option<String>,
    /// The other properties (including `bus`), in order, normalised like [`ObjectAdd::props`].
    pub props: Props,
}

impl DeviceAdd {
    /// The same device as a `-device` argument: `nvdimm,id=nv2,memdev=mem3`.
    pub fn to_opts_string(&self) -> String {
        let mut s = escape_opt(&self.driver);
        if let Some(id) = &self.id {
            push_opt(&mut s, "id", id);
        }
        for (k, v) in &self.props {
            push_opt(&mut s, k, v);
        }
        s
    }
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
    /// `human-monitor-command {"command-line": ..., "cpu-index": ...}`.
    HumanMonitorCommand {
        /// The HMP command line.
        command_line: String,
        /// CPU to make current (ignored).
        cpu_index: Option<i64>,
    },
}

/// Every command name we implement, in the order `query-commands` lists them.
pub const COMMAND_NAMES: &[&str] = &[
    "qmp_capabilities",
    "query-version",
    "query-commands",
    "query-status",
    "query-name",
    "query-memory-devices",
    "query-memory-size-summary",
    "query-memdev",
    "query-cpus-fast",
    "query-block",
    "set_link",
    "object-add",
    "object-del",
    "device_add",
    "device_del",
    "stop",
    "cont",
    "system_powerdown",
    "system_reset",
    "quit",
    "human-monitor-command",
];

impl Command {
    /// The QMP name of the command.
    pub fn name(&self) -> &'static str {
        match self {
            Command::QmpCapabilities { .. } => "qmp_capabilities",
            Command::QueryVersion => "query-version",
            Command::QueryCommands => "query-commands",
            Command::QueryStatus => "query-status",
            Command::QueryName => "query-name",
            Command::QueryMemoryDevices => "query-memory-devices",
            Command::QueryMemorySizeSummary => "query-memory-size-summary",
            Command::QueryMemdev => "query-memdev",
            Command::QueryCpusFast => "query-cpus-fast",
            Command::QueryBlock => "query-block",
            Command::InfoRegisters { .. } => "info registers",
            Command::InfoNetwork => "info network",
            Command::HostfwdAdd { .. } => "hostfwd_add",
            Command::HostfwdRemove { .. } => "hostfwd_remove",
            Command::SetLink { .. } => "set_link",
            Command::ObjectAdd(_) => "object-add",
            Command::ObjectDel { .. } => "object-del",
            Command::DeviceAdd(_) => "device_add",
            Command::DeviceDel { .. } => "device_del",
            Command::Stop => "stop",
            Command::Cont => "cont",
            Command::SystemPowerdown => "system_powerdown",
            Command::SystemReset => "system_reset",
            Command::Quit => "quit",
            Command::HumanMonitorCommand { .. } => "human-monitor-command",
        }
    }

    /// True if the schema declares a return value; otherwise the reply is always `{}`.
    pub fn has_return(&self) -> bool {
        matches!(
            self,
            Command::QueryVersion
                | Command::QueryCommands
                | Command::QueryStatus
                | Command::QueryName
                | Command::QueryMemoryDevices
                | Command::QueryMemorySizeSummary
                | Command::QueryMemdev
                | Command::QueryCpusFast
                | Command::QueryBlock
                | Command::InfoRegisters { .. }
                | Command::InfoNetwork
                | Command::HumanMonitorCommand { .. }
        )
    }

    /// Decodes command `name` with `arguments` (an object's members; `None` = no arguments).
    pub fn from_qmp(name: &str, arguments: Option<&[(String, Json)]>) -> Result<Command, QmpError> {
        let mut a = Args::new(arguments.unwrap_or(&[]));
        let cmd = match name {
            "qmp_capabilities" => Command::QmpCapabilities {
                enable: a.capabilities("enable")?,
            },
            "query-version" => Command::QueryVersion,
            "query-commands" => Command::QueryCommands,
            "query-status" => Command::QueryStatus,
            "query-name" => Command::QueryName,
            "query-memory-devices" => Command::QueryMemoryDevices,
            "query-memory-size-summary" => Command::QueryMemorySizeSummary,
            "query-memdev" => Command::QueryMemdev,
            "query-cpus-fast" => Command::QueryCpusFast,
            "query-block" => Command::QueryBlock,
            "set_link" => Command::SetLink {
                name: a.req_str("name")?,
                up: a.req_bool("up")?,
            },
            "object-add" => {
                let qom_type = a.req_str("qom-type")?;
                let id = a.req_str("id")?;
                Command::ObjectAdd(ObjectAdd {
                    qom_type,
                    id,
                    props: a.rest_as_props()?,
                })
            }
            "object-del" => Command::ObjectDel {
                id: a.req_str("id")?,
            },
            "device_add" => {
                let driver = a.req_str("driver")?;
                let id = a.opt_str("id")?;
                Command::DeviceAdd(DeviceAdd {
                    driver,
                    id,
                    props: a.rest_as_props()?,
                })
            }
            "device_del" => Command::DeviceDel {
                id: a.req_str("id")?,
            },
            "stop" => Command::Stop,
            "cont" => Command::Cont,
            "system_powerdown" => Command::SystemPowerdown,
            "system_reset" => Command::SystemReset,
            "quit" => Command::Quit,
            "human-monitor-command" => Command::HumanMonitorCommand {
                command_line: a.req_str("command-line")?,
                cpu_index: a.opt_int("cpu-index")?,
            },
            _ => {
                return Err(QmpError::command_not_found(format!(
                    "The command {name} has not been found"
                )));
            }
        };
        a.finish()?;
        Ok(cmd)
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

    /// All members not taken yet, as command-line style properties (and marks them used).
    fn rest_as_props(&mut self) -> Result<Props, QmpError> {
        let mut props = Vec::new();
        for (i, (k, v)) in self.members.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            self.used[i] = true;
            props.push((k.clone(), prop_text(k, v)?));
        }
        Ok(props)
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
