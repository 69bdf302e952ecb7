//! A fake VMM behind the QMP handler trait: keeps objects and devices in memory and answers
//! the memory queries the way pmvm will. Shared by the tests and `examples/fake_vm.rs`.

#![allow(dead_code)]

use std::sync::{Mutex, OnceLock};

use qmp::{
    Command, DeviceAdd, Event, Memdev, MemoryDeviceInfo, MemoryInfo, NameInfo, ObjectAdd,
    PcdimmDeviceInfo, QmpError, QmpHandler, QmpServer, RunState, ShutdownCause, StatusInfo,
};
use serde_json::{Value, json};

#[derive(Default)]
struct State {
    running: bool,
    quit: bool,
    objects: Vec<ObjectAdd>,
    devices: Vec<(DeviceAdd, i64, u64, u64)>,
    log: Vec<Command>,
}

/// The fake VMM.
pub struct FakeVm {
    state: Mutex<State>,
    /// Set after the server exists, so commands can emit events.
    pub server: OnceLock<QmpServer>,
}

pub const BASE: u64 = 4 << 30;
pub const WINDOW: u64 = 0x1_4000_0000;

fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1u64 << 10),
        'M' => (&s[..s.len() - 1], 1 << 20),
        'G' => (&s[..s.len() - 1], 1 << 30),
        'T' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

impl FakeVm {
    pub fn new() -> Self {
        FakeVm {
            state: Mutex::new(State {
                running: true,
                ..State::default()
            }),
            server: OnceLock::new(),
        }
    }

    /// Every command the handler saw, in order.
    pub fn log(&self) -> Vec<Command> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn quit_requested(&self) -> bool {
        self.state.lock().unwrap().quit
    }

    fn emit(&self, e: Event) {
        if let Some(s) = self.server.get() {
            s.emit(e);
        }
    }
}

impl QmpHandler for FakeVm {
    fn execute(&self, cmd: Command) -> Result<Value, QmpError> {
        let mut st = self.state.lock().unwrap();
        st.log.push(cmd.clone());
        match cmd {
            Command::QueryStatus => Ok(serde_json::to_value(StatusInfo {
                running: st.running,
                singlestep: None,
                status: if st.running {
                    RunState::Running
                } else {
                    RunState::Paused
                },
            })
            .unwrap()),
            Command::QueryName => Ok(serde_json::to_value(NameInfo {
                name: Some("fake".into()),
            })
            .unwrap()),
            Command::QueryCpusFast => Ok(serde_json::to_value(
                (0..2u32)
                    .map(|i| qmp::CpuInfoFast {
                        cpu_index: i,
                        qom_path: format!("/machine/unattached/device[{i}]"),
                        thread_id: 4242 + i64::from(i),
                        props: qmp::CpuInstanceProperties {
                            socket_id: Some(0),
                            die_id: Some(0),
                            core_id: Some(i),
                            thread_id: Some(0),
                            node_id: None,
                        },
                        target: "x86_64".into(),
                    })
                    .collect::<Vec<_>>(),
            )
            .unwrap()),
            Command::QueryBlock => Ok(serde_json::json!([{
                "device": "virtio0", "type": "unknown", "removable": false, "locked": false,
                "io-status": "ok",
                "inserted": {"file": "/vm/f27.raw", "ro": true, "drv": "raw", "encrypted": false,
                    "backing_file_depth": 0, "detect_zeroes": "off", "bps": 0, "bps_rd": 0,
                    "bps_wr": 0, "iops": 0, "iops_rd": 0, "iops_wr": 0,
                    "image": {"filename": "/vm/f27.raw", "format": "raw", "virtual-size": 1048576},
                    "cache": {"writeback": true, "direct": false, "no-flush": false},
                    "write_threshold": 0}}])),
            Command::QueryMemorySizeSummary => {
                let plugged = st.devices.iter().map(|d| d.3).sum();
                Ok(serde_json::to_value(MemoryInfo {
                    base_memory: BASE,
                    plugged_memory: Some(plugged),
                })
                .unwrap())
            }
            Command::QueryMemoryDevices => {
                let list: Vec<MemoryDeviceInfo> = st
                    .devices
                    .iter()
                    .map(|(d, slot, addr, size)| {
                        let memdev = d.props().get("memdev").map(str::to_string);
                        MemoryDeviceInfo::Nvdimm(PcdimmDeviceInfo {
                            id: d.id().map(str::to_string),
                            addr: *addr,
                            size: *size,
                            slot: *slot,
                            node: 0,
                            memdev: format!("/objects/{}", memdev.unwrap_or_default()),
                            hotplugged: true,
                            hotpluggable: true,
                        })
                    })
                    .collect();
                Ok(serde_json::to_value(list).unwrap())
            }
            Command::QueryMemdev => {
                let list: Vec<Memdev> = st
                    .objects
                    .iter()
                    .map(|o| Memdev {
                        id: Some(o.id().to_string()),
                        size: o.props().get("size").and_then(parse_size).unwrap_or(0),
                        merge: false,
                        dump: true,
                        prealloc: false,
                        share: o.props().get("share") == Some("on"),
                        reserve: None,
                        host_nodes: vec![],
                        policy: Default::default(),
                    })
                    .collect();
                Ok(serde_json::to_value(list).unwrap())
            }
            Command::ObjectAdd(o) => {
                if st.objects.iter().any(|x| x.id() == o.id()) {
                    return Err(QmpError::generic(format!(
                        "attempt to add duplicate property '{}' to object (type 'container')",
                        o.id()
                    )));
                }
                st.objects.push(o);
                Ok(json!({}))
            }
            Command::ObjectDel { id } => {
                let Some(i) = st.objects.iter().position(|o| o.id() == id) else {
                    return Err(QmpError::generic(format!("object '{id}' not found")));
                };
                let used = st
                    .devices
                    .iter()
                    .any(|d| d.0.props().get("memdev") == Some(id.as_str()));
                if used {
                    return Err(QmpError::generic(format!(
                        "object '{id}' is in use, can not be deleted"
                    )));
                }
                st.objects.remove(i);
                Ok(json!({}))
            }
            Command::DeviceAdd(d) => {
                if d.driver() != "nvdimm" {
                    return Err(QmpError::generic(format!(
                        "'{}' is not a valid device model name",
                        d.driver()
                    )));
                }
                let memdev = d.props().get("memdev").map(str::to_string);
                let Some(memdev) = memdev else {
                    return Err(QmpError::generic("'memdev' property is not set"));
                };
                let Some(obj) = st.objects.iter().find(|o| o.id() == memdev) else {
                    return Err(QmpError::generic(format!(
                        "Property 'nvdimm.memdev' can't find value '{memdev}'"
                    )));
                };
                let size = obj.props().get("size").and_then(parse_size).unwrap_or(0);
                let slot = st.devices.len() as i64;
                let addr = WINDOW + st.devices.iter().map(|d| d.3).sum::<u64>();
                st.devices.push((d, slot, addr, size));
                Ok(json!({}))
            }
            Command::DeviceDel { id } => {
                if st.devices.iter().any(|d| d.0.id() == Some(id.as_str())) {
                    Err(QmpError::generic(
                        "nvdimm device hot unplug is not supported yet.",
                    ))
                } else {
                    Err(QmpError::device_not_found(&id))
                }
            }
            Command::Stop => {
                st.running = false;
                drop(st);
                self.emit(Event::stop());
                Ok(Value::Null)
            }
            Command::Cont => {
                st.running = true;
                drop(st);
                self.emit(Event::resume());
                Ok(Value::Null)
            }
            Command::SystemPowerdown => {
                drop(st);
                self.emit(Event::powerdown());
                Ok(Value::Null)
            }
            Command::SystemReset => {
                drop(st);
                self.emit(Event::reset(false, ShutdownCause::HostQmpSystemReset));
                Ok(Value::Null)
            }
            Command::Quit => {
                st.quit = true;
                drop(st);
                self.emit(Event::shutdown(false, ShutdownCause::HostQmpQuit));
                Ok(Value::Null)
            }
            other => Err(QmpError::generic(format!(
                "unexpected command {}",
                other.name()
            ))),
        }
    }
}
