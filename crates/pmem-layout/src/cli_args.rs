//! The exact `-object memory-backend-file,...` / `-device nvdimm,...`
//! arguments for a sized host device (what `pmctl` prints and what pmvm or
//! QEMU accept). Sizes are written with the largest exact binary suffix, so
//! they parse back to the same byte counts.

use crate::error::SizingError;
use crate::size::format_size_arg;
use crate::sizing::GuestSizing;

/// What to put on the command line besides the sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvdimmArgsSpec<'a> {
    /// Device id (`-device nvdimm,id=`); the backend gets `mem<id>`.
    pub id: &'a str,
    /// Host path (`mem-path=`): `/dev/daxX.Y` or a file on a DAX filesystem.
    pub mem_path: &'a str,
    /// `share=on` (writes reach the device). Default on.
    pub share: bool,
    /// `pmem=on` (MAP_SYNC, persistent label writes). Default on.
    pub pmem: bool,
    /// `unarmed=on` (guest marks the region read-only). Default off.
    pub unarmed: bool,
    /// Explicit `slot=` (keep slots stable: NFIT handle/serial derive from it).
    pub slot: Option<u32>,
    /// Guest NUMA node (`node=`).
    pub node: Option<u32>,
}

impl<'a> NvdimmArgsSpec<'a> {
    /// Defaults: share=on, pmem=on, armed, automatic slot, no node.
    pub fn new(id: &'a str, mem_path: &'a str) -> NvdimmArgsSpec<'a> {
        NvdimmArgsSpec {
            id,
            mem_path,
            share: true,
            pmem: true,
            unarmed: false,
            slot: None,
            node: None,
        }
    }
}

/// The two argument strings (values for `-object` and `-device`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvdimmArgs {
    /// Value of `-object`.
    pub object: String,
    /// Value of `-device`.
    pub device: String,
}

/// Escape a value for a QEMU `key=value,...` option string (`,` -> `,,`).
pub fn escape_opt_value(s: &str) -> String {
    s.replace(',', ",,")
}

/// QEMU's `id_wellformed`: a letter, then letters, digits, `-`, `.`, `_`.
fn id_wellformed(id: &str) -> bool {
    let mut c = id.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic())
        && c.all(|x| x.is_ascii_alphanumeric() || matches!(x, '-' | '.' | '_'))
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// Build the arguments for `sizing` (from [`crate::guest_nvdimm_size`]).
/// The backend always gets an explicit `align=` so the VMM's split equals
/// the manager's (`sizing.align`, 128 MiB when the device reports none).
pub fn nvdimm_cli_args(
    spec: &NvdimmArgsSpec<'_>,
    sizing: &GuestSizing,
) -> Result<NvdimmArgs, SizingError> {
    if !id_wellformed(spec.id) {
        return Err(SizingError::BadId {
            id: spec.id.to_owned(),
        });
    }
    let memdev = format!("mem{}", spec.id);
    let mut object = format!(
        "memory-backend-file,id={memdev},share={},mem-path={},size={},align={}",
        on_off(spec.share),
        escape_opt_value(spec.mem_path),
        format_size_arg(sizing.backend_size),
        format_size_arg(sizing.align),
    );
    if spec.pmem {
        object.push_str(",pmem=on");
    }
    let mut device = format!(
        "nvdimm,id={},memdev={memdev},label-size={}",
        spec.id,
        format_size_arg(sizing.label_size)
    );
    if let Some(slot) = spec.slot {
        device.push_str(&format!(",slot={slot}"));
    }
    if let Some(node) = spec.node {
        device.push_str(&format!(",node={node}"));
    }
    if spec.unarmed {
        device.push_str(",unarmed=on");
    }
    Ok(NvdimmArgs { object, device })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MIB, guest_nvdimm_size};

    #[test]
    fn golden_devdax_args() {
        let g = guest_nvdimm_size(17_177_772_032, Some(2 * MIB)).unwrap();
        let mut spec = NvdimmArgsSpec::new("nvdimm0", "/dev/dax0.0");
        spec.slot = Some(0);
        spec.node = Some(0);
        let a = nvdimm_cli_args(&spec, &g).unwrap();
        assert_eq!(
            a.object,
            "memory-backend-file,id=memnvdimm0,share=on,mem-path=/dev/dax0.0,size=16130M,align=2M,pmem=on"
        );
        assert_eq!(
            a.device,
            "nvdimm,id=nvdimm0,memdev=memnvdimm0,label-size=128K,slot=0,node=0"
        );
    }

    #[test]
    fn escaping_and_ids() {
        let g = guest_nvdimm_size(1 << 33, None).unwrap();
        let mut spec = NvdimmArgsSpec::new("nv1", "/mnt/pmem/a,b");
        spec.pmem = false;
        spec.share = false;
        spec.unarmed = true;
        let a = nvdimm_cli_args(&spec, &g).unwrap();
        assert_eq!(
            a.object,
            "memory-backend-file,id=memnv1,share=off,mem-path=/mnt/pmem/a,,b,size=8G,align=128M"
        );
        assert_eq!(
            a.device,
            "nvdimm,id=nv1,memdev=memnv1,label-size=128K,unarmed=on"
        );
        for bad in ["", "1nv", "nv,1", "nv 1", "nv=1"] {
            assert!(
                nvdimm_cli_args(&NvdimmArgsSpec::new(bad, "/x"), &g).is_err(),
                "{bad}"
            );
        }
    }
}
