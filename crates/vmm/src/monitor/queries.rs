//! The monitor's queries: answers built from the configuration and the running VM, with no
//! side effect on either.

use qmp::{MemoryDeviceInfo, QmpError};
use serde_json::{Value, json};
use vm_config::VmConfig;

use super::state::State;

fn to_value<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// `query-status`.
pub fn status(st: &State) -> Value {
    let (running, status) = match (&st.vm, st.paused) {
        (None, _) => (false, qmp::RunState::Shutdown),
        (Some(_), true) => (false, qmp::RunState::Paused),
        (Some(_), false) => (true, qmp::RunState::Running),
    };
    to_value(qmp::StatusInfo {
        running,
        singlestep: None,
        status,
    })
}

/// `query-name`.
pub fn name(cfg: &VmConfig) -> Value {
    to_value(qmp::NameInfo {
        name: cfg.name.clone(),
    })
}

/// `query-memory-devices`: what the device manager plugged (empty while no VM runs).
pub fn memory_devices(st: &State) -> Vec<MemoryDeviceInfo> {
    st.devices().map(|d| d.memory_devices()).unwrap_or_default()
}

/// `query-memory-size-summary`.
pub fn memory_size_summary(st: &State) -> Value {
    let plugged: u64 = memory_devices(st)
        .iter()
        .filter_map(|d| match d {
            MemoryDeviceInfo::Dimm(i) => Some(i.size),
            MemoryDeviceInfo::Nvdimm(_) => None,
        })
        .sum();
    json!({"base-memory": st.cfg.memory.size, "plugged-memory": plugged})
}

/// `query-cpus-fast`: each vCPU with its host thread id (for pinning).
pub fn cpus_fast(st: &State) -> Value {
    let Some(vm) = &st.vm else {
        return json!([]);
    };
    let tids = vm.control.thread_ids();
    let cpus: Vec<qmp::CpuInfoFast> = (0..vm.vcpus as u32)
        .map(|i| qmp::CpuInfoFast {
            cpu_index: i,
            qom_path: format!("/machine/unattached/device[{i}]"),
            thread_id: tids.get(i as usize).copied().flatten().unwrap_or(-1),
            // pmvm does not model sockets or SMT: each vCPU is reported as its own core of
            // socket 0 (what QEMU reports for -smp N, cores).
            props: qmp::CpuInstanceProperties {
                node_id: None,
                socket_id: Some(0),
                die_id: Some(0),
                core_id: Some(i),
                thread_id: Some(0),
            },
            target: "x86_64".into(),
        })
        .collect();
    to_value(cpus)
}

/// HMP `info registers [-a]`: pauses the vCPUs for the moment it takes.
pub fn registers(st: &State, all: bool) -> Result<Value, QmpError> {
    let vm = st.vm()?;
    let n = if all { vm.vcpus } else { vm.vcpus.min(1) };
    let text: String = vm
        .control
        .dump_registers(vm.vcpus)
        .into_iter()
        .take(n)
        .enumerate()
        .map(|(i, d)| d.unwrap_or_else(|| format!("CPU#{i}: no answer (stopped)\n")))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Value::String(text))
}

/// `query-memdev`.
pub fn memdev(cfg: &VmConfig) -> Value {
    Value::Array(
        cfg.objects
            .iter()
            .map(|o| {
                json!({"id": o.id, "size": o.size, "merge": true, "dump": true,
                       "prealloc": o.prealloc, "share": o.share, "host-nodes": [],
                       "policy": "default"})
            })
            .collect(),
    )
}

/// `query-block`: the `-drive` disks.
pub fn block(cfg: &VmConfig) -> Value {
    Value::Array(cfg.drives.iter().map(block_info).collect())
}

/// `query-block` for one drive. The size is read now (the image may have grown since start,
/// but the guest keeps the capacity it was given, which is what a restart would give too).
fn block_info(d: &vm_config::DriveConfig) -> Value {
    use std::io::{Seek, SeekFrom};
    let file = d.file.display().to_string();
    let size = std::fs::File::open(&d.file)
        .and_then(|mut f| f.seek(SeekFrom::End(0)))
        .map_or(0, |s| s / 512 * 512);
    let info = qmp::types::BlockInfo {
        device: d.id.clone(),
        kind: "unknown".into(),
        removable: false,
        locked: false,
        io_status: Some("ok".into()),
        inserted: Some(qmp::types::BlockDeviceInfo {
            file: file.clone(),
            ro: d.readonly,
            drv: "raw".into(),
            encrypted: false,
            backing_file_depth: 0,
            detect_zeroes: "off".into(),
            bps: 0,
            bps_rd: 0,
            bps_wr: 0,
            iops: 0,
            iops_rd: 0,
            iops_wr: 0,
            image: qmp::types::ImageInfo {
                filename: file,
                format: "raw".into(),
                virtual_size: size,
            },
            cache: qmp::types::BlockdevCacheInfo {
                writeback: !d.cache.write_through(),
                direct: d.cache.direct(),
                no_flush: d.cache == vm_config::DriveCache::Unsafe,
            },
            write_threshold: 0,
        }),
    };
    serde_json::to_value(info).unwrap_or(Value::Null)
}
