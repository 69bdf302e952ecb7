//! Label-area safety at start-up. QEMU silently reinterprets the last `label-size` bytes of a
//! backend as labels (the seed warns this can corrupt a guest file system that lived there) and
//! silently exposes old labels as data when `label-size` is dropped. pmvm looks first.

use nvlabel::{AreaState, classify};

use super::Nvdimm;
/// A label area that holds data which is not labels.
#[derive(Debug, thiserror::Error)]
#[error(
    "nvdimm {id}: the last {size} bytes of backend '{backend}' ({path}, offset {offset:#x}) hold data that is neither zero nor a \
     namespace label index; using them as the label area would destroy that data (a file system \
     written without label-size?). Start without label-size to keep the data, or add -force-label-area \
     to overwrite it"
)]
pub struct LabelAreaError {
    pub id: String,
    pub size: u64,
    pub backend: String,
    pub path: String,
    pub offset: u64,
}

/// The label area a device without `label-size` would have had under oVirt's fixed 128 KiB.
const PROBE_SIZE: u64 = 128 << 10;

fn backend_path(dimm: &Nvdimm) -> String {
    dimm.backend
        .probe
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "anonymous RAM".into())
}

/// Refuses a label area holding foreign data (unless `force`), warns about a labelled backend
/// started without `label-size`.
pub fn check(dimm: &Nvdimm, force: bool) -> Result<(), LabelAreaError> {
    let len = dimm.backend.len() as u64;
    match dimm.label_area() {
        Some((off, size)) => {
            let mut area = vec![0u8; size as usize];
            if dimm.backend.read(off, &mut area).is_none() {
                return Ok(());
            }
            if classify(&area) == AreaState::Foreign {
                let err = LabelAreaError {
                    id: dimm.plan.id.clone(),
                    size,
                    backend: dimm.backend.id.clone(),
                    path: backend_path(dimm),
                    offset: off,
                };
                if !force {
                    return Err(err);
                }
                eprintln!("pmvm: warning: {err} (forced)");
            }
        }
        None if len >= PROBE_SIZE * 2 => {
            let mut tail = vec![0u8; PROBE_SIZE as usize];
            if dimm.backend.read(len - PROBE_SIZE, &mut tail).is_some()
                && let AreaState::Labels { active, .. } = classify(&tail)
            {
                eprintln!(
                    "pmvm: warning: nvdimm {}: backend '{}' ({}) ends with a valid namespace label area ({active} labels) \
                         but the device has no label-size: the guest sees the old labels as data and its namespaces \
                         are gone; add label-size=128K to use them",
                    dimm.plan.id,
                    dimm.backend.id,
                    backend_path(dimm)
                );
            }
        }
        None => {}
    }
    Ok(())
}
