//! Attaching a host NVDIMM to a running VM, which oVirt could not do: the same assignment
//! and layout check as a cold attach, then the device's own `-object`/`-device` text (the
//! very strings a cold start passes, from [`super::cmdline::nvdimm_args`]) goes to pmvm as
//! the human-monitor commands `object_add` and `device_add` over QMP. pmvm checks slots,
//! maxmem and alignment itself (the same code as at start) and the guest's NVDIMM driver
//! adds the region without a reboot. The VM's `maxmem` cannot change while it runs, so the
//! room comes from `--hotplug-room` at create time.

use serde_json::{Value, json};

use super::cmdline;
use super::error::VmError;
use super::ops::{Manager, connect_retry};
use super::state::Assignment;

impl Manager {
    /// Hot-adds assignment `a` to running VM `name`; on a refused `device_add` the backend
    /// object is removed again, so the VM is left as it was.
    pub(super) fn hotplug(&self, name: &str, a: &Assignment) -> Result<(), VmError> {
        let qmp_err = |reason: String| VmError::Qmp {
            name: name.to_owned(),
            reason,
        };
        let n = cmdline::nvdimm_args(a)?;
        // (connect_retry has negotiated capabilities already.)
        let mut c =
            connect_retry(&self.store.qmp_socket(name)).map_err(|e| qmp_err(e.to_string()))?;
        let mut hmp = |line: String| -> Result<(), VmError> {
            let out = c
                .execute(
                    "human-monitor-command",
                    Some(json!({ "command-line": line })),
                )
                .map_err(|e| qmp_err(e.to_string()))?;
            // HMP prints nothing on success and "Error: ..." otherwise.
            if out.is_null() || out.as_str().is_some_and(|s| s.trim().is_empty()) {
                return Ok(());
            }
            Err(VmError::Layout(format!(
                "{}: {}",
                line.split(',').next().unwrap_or_default(),
                text(&out)
            )))
        };
        hmp(format!("object_add {}", n.object))?;
        if let Err(e) = hmp(format!("device_add {}", n.device)) {
            let memdev = n
                .object
                .split(',')
                .find_map(|kv| kv.strip_prefix("id="))
                .unwrap_or_default()
                .to_owned();
            let _ = hmp(format!("object_del {memdev}"));
            return Err(e);
        }
        Ok(())
    }
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(
        || v.to_string(),
        |s| s.trim().trim_start_matches("Error: ").to_owned(),
    )
}
