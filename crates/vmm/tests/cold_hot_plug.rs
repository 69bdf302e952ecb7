//! One code path for a memory device, cold or hot: the same NVDIMM plugged once on the command
//! line and once through QMP (`object-add` + `device_add`, through the monitor as a client sends
//! them) into otherwise identical VMs gives byte-identical FIT bytes (the NFIT's body at boot,
//! the `_FIT` answer after a hot plug), the same slot, address and size, and the same
//! `query-memory-devices` answer except `hotplugged`.
//!
//! Needs `/dev/kvm` (any KVM that can create a VM and memory slots; no guest code runs).

use std::sync::{Arc, Mutex};

use kvm_ioctls::Kvm;
use qmp::{Command, DeviceAdd, ObjectAdd, QmpHandler};
use serde_json::Value;
use vm_config::{Action, VmConfig, parse_args};
use vmm::device_manager::DeviceManager;
use vmm::devices::EventSink;
use vmm::memory::{RamSplit, create_guest_memory, register_memory};
use vmm::monitor::Monitor;
use vmm::vcpu::{RunState, VcpuControl};
use vmm::vm::VmHandle;

fn config(extra: &str) -> VmConfig {
    let args: Vec<String> =
        format!("-kernel /proc/self/exe -machine pc,nvdimm=on -m 512M,slots=4,maxmem=8G {extra}")
            .split_whitespace()
            .map(str::to_string)
            .collect();
    match parse_args(&args).expect("valid command line") {
        Action::Run(c) => *c,
        _ => panic!("not a run"),
    }
}

/// A VM with its devices but no vCPU, attached to a monitor as `Vm::build` + `runner` do.
fn machine(cfg: &VmConfig) -> (Arc<Monitor>, Arc<Mutex<DeviceManager>>) {
    let kvm = Kvm::new().expect("/dev/kvm is needed for this test");
    let vm = kvm.create_vm().expect("create a VM");
    vm.create_irq_chip().expect("in-kernel irqchip");
    let ram = pmem_layout::RamLayout::new(cfg.memory.size);
    let split = RamSplit {
        below_4g: ram.below_4g,
        above_4g: ram.above_4g,
    };
    let mem = create_guest_memory(split, nvdimm_acpi::MAILBOX_SIZE as u64).unwrap();
    let first = register_memory(&vm, &mem).unwrap();
    let (tx, _rx) = std::sync::mpsc::channel();
    let sink = EventSink(tx);
    let mut dm = DeviceManager::new(Arc::new(vm), mem, sink.clone(), cfg, first, 509).unwrap();
    dm.add_platform_devices(cfg, None).unwrap();
    dm.plug_configured_memory_devices(cfg).unwrap();
    let dm = Arc::new(Mutex::new(dm));
    let monitor = Monitor::new(cfg.clone());
    monitor.attach(VmHandle {
        sink,
        control: VcpuControl::new(RunState::Paused),
        vcpus: 0,
        devices: dm.clone(),
        nets: Default::default(),
    });
    (monitor, dm)
}

fn props(kv: &[(&str, &str)]) -> vm_config::Props {
    vm_config::Props(
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn memory_devices(m: &Monitor) -> Vec<Value> {
    match m.execute(Command::QueryMemoryDevices).unwrap() {
        Value::Array(a) => a,
        other => panic!("{other}"),
    }
}

fn without_hotplugged(mut v: Value) -> (Value, Value) {
    let flag = v["data"]
        .as_object_mut()
        .and_then(|o| o.remove("hotplugged"))
        .unwrap_or(Value::Null);
    (v, flag)
}

#[test]
fn an_nvdimm_plugged_cold_or_hot_gives_identical_fit_and_query_answers() {
    let dir = std::env::temp_dir().join(format!("pmvm-coldhot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("cold.img"), dir.join("hot.img"));
    let object = |p: &std::path::Path| {
        format!(
            "memory-backend-file,id=mem1,share=on,mem-path={},size=258M",
            p.display()
        )
    };
    let device = "nvdimm,id=nv1,memdev=mem1,label-size=2M";

    let cold_cfg = config(&format!("-object {} -device {device}", object(&a)));
    let (cold, cold_dm) = machine(&cold_cfg);

    let (hot, hot_dm) = machine(&config(""));
    assert!(memory_devices(&hot).is_empty());
    let boot_tables = hot_dm.lock().unwrap().extra_tables(4).unwrap();
    assert!(
        !boot_tables.iter().any(|t| &t[0..4] == b"NFIT"),
        "no static NFIT without NVDIMMs at boot (as QEMU)"
    );
    let object = ObjectAdd::new(props(&[
        ("qom-type", "memory-backend-file"),
        ("id", "mem1"),
        ("share", "on"),
        ("mem-path", &b.display().to_string()),
        ("size", "258M"),
    ]))
    .unwrap();
    hot.execute(Command::ObjectAdd(object)).expect("object-add");
    let device = DeviceAdd::new(props(&[
        ("driver", "nvdimm"),
        ("id", "nv1"),
        ("memdev", "mem1"),
        ("label-size", "2M"),
    ]))
    .unwrap();
    hot.execute(Command::DeviceAdd(device)).expect("device_add");

    // The FIT: the cold VM's NFIT body and its controller's FIT, the hot VM's `_FIT`.
    let cold_fit = cold_dm
        .lock()
        .unwrap()
        .nvdimm()
        .unwrap()
        .lock()
        .unwrap()
        .fit()
        .to_vec();
    let hot_fit = hot_dm
        .lock()
        .unwrap()
        .nvdimm()
        .unwrap()
        .lock()
        .unwrap()
        .fit()
        .to_vec();
    assert!(!cold_fit.is_empty());
    assert_eq!(
        cold_fit, hot_fit,
        "FIT bytes differ between cold and hot plug"
    );
    let tables = cold_dm.lock().unwrap().extra_tables(4).unwrap();
    let nfit = tables
        .iter()
        .find(|t| &t[0..4] == b"NFIT")
        .expect("an NFIT at boot");
    assert_eq!(&nfit[nvdimm_acpi::nfit::NFIT_HEADER_SIZE..], &hot_fit[..]);

    // query-memory-devices: identical but for `hotplugged`.
    let (c, h) = (memory_devices(&cold), memory_devices(&hot));
    assert_eq!(c.len(), 1);
    assert_eq!(h.len(), 1);
    let (c0, c_flag) = without_hotplugged(c[0].clone());
    let (h0, h_flag) = without_hotplugged(h[0].clone());
    assert_eq!(c0, h0);
    assert_eq!((c_flag, h_flag), (Value::Bool(false), Value::Bool(true)));
    assert_eq!(c0["type"], "nvdimm");
    assert_eq!(c0["data"]["size"], (256u64 << 20));

    // A second device_add of the same id is refused and leaves nothing behind.
    let again = hot.execute(Command::DeviceAdd(
        DeviceAdd::new(props(&[
            ("driver", "nvdimm"),
            ("id", "nv1"),
            ("memdev", "mem1"),
        ]))
        .unwrap(),
    ));
    assert!(again.is_err());
    assert_eq!(memory_devices(&hot).len(), 1);
    drop((cold, hot, cold_dm, hot_dm));
    let _ = std::fs::remove_dir_all(&dir);
}
