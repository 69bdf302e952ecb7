//! Virtual NVDIMMs: one [`Nvdimm`] per `-device nvdimm`, each with its backend, guest range,
//! label area and FIT fragment; the [`controller::NvdimmController`] owns them all, answers the
//! `_DSM` doorbell and serves the FIT.

pub mod backend;
pub mod controller;
pub mod label_safety;

use std::sync::Arc;

use kvm_bindings::{KVM_MEM_READONLY, kvm_userspace_memory_region};
use kvm_ioctls::VmFd;
use nvdimm_acpi::{LabelArea, LabelIoError, NvdimmAcpiInfo};
use vm_config::DevicePlan;

use backend::Backend;

/// One virtual NVDIMM.
pub struct Nvdimm {
    pub plan: DevicePlan,
    pub backend: Arc<Backend>,
}

impl Nvdimm {
    /// The device's NFIT identity and range.
    pub fn acpi_info(&self) -> NvdimmAcpiInfo {
        NvdimmAcpiInfo {
            slot: self.plan.slot,
            gpa: self.plan.gpa,
            pmem_size: self.plan.size,
            node: self.plan.node,
            unarmed: self.plan.unarmed,
        }
    }

    /// Label area (offset in the backend, size), if the device has one.
    pub fn label_area(&self) -> Option<(u64, u64)> {
        self.plan
            .nvdimm
            .filter(|s| s.label_size > 0)
            .map(|s| (s.label_offset, s.label_size))
    }

    /// Maps the pmem part (never the label area) into the guest as memory slot `slot`.
    pub fn map_into_guest(&self, vm: &VmFd, slot: u32) -> Result<(), kvm_ioctls::Error> {
        let region = kvm_userspace_memory_region {
            slot,
            flags: if self.backend.readonly {
                KVM_MEM_READONLY
            } else {
                0
            },
            guest_phys_addr: self.plan.gpa,
            memory_size: self.plan.size,
            userspace_addr: self.backend.host_addr(),
        };
        // SAFETY: [userspace_addr, +memory_size) lies inside the backend mapping (pmem size <=
        // backend size), which the Nvdimm keeps alive as long as the VM exists.
        unsafe { vm.set_user_memory_region(region) }
    }

    /// The start-up report line: backend, persistence, layout.
    /// For a pc-dimm: see [`memory_block_warning`].
    pub fn memory_block_warning(&self) -> Option<String> {
        memory_block_warning(&self.plan.id, self.plan.gpa, self.plan.size)
    }

    pub fn describe(&self) -> String {
        let p = &self.backend.probe;
        let path = p
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "anonymous RAM".into());
        let sync = if self.backend.map_sync {
            ", MAP_SYNC"
        } else {
            ""
        };
        let labels = match self.label_area() {
            Some((off, size)) => format!(
                "label area {} at backend offset {off:#x}",
                pmem_layout::format_size(size)
            ),
            None => "no label area".into(),
        };
        format!(
            "nvdimm {}: {} of pmem at {:#x} (slot {}), {labels}; backend {} = {path}{sync}{}: {}",
            self.plan.id,
            pmem_layout::format_size(self.plan.size),
            self.plan.gpa,
            self.plan.slot,
            self.backend.id,
            if self.backend.shared {
                ", share=on"
            } else {
                ", share=off (guest writes stay private)"
            },
            p.explanation
        )
    }
}

/// The label area of one NVDIMM as the `_DSM` dispatcher sees it.
pub struct Labels<'a>(pub &'a Nvdimm);

impl LabelArea for Labels<'_> {
    fn label_size(&self) -> u32 {
        self.0.label_area().map(|(_, s)| s as u32).unwrap_or(0)
    }

    fn read_only(&self) -> bool {
        self.0.backend.readonly
    }

    fn read(&self, offset: u32, out: &mut [u8]) -> std::result::Result<(), LabelIoError> {
        let base = self.check(offset, out.len())?;
        self.0
            .backend
            .read(base + u64::from(offset), out)
            .ok_or_else(|| self.oob(offset, out.len()))
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> std::result::Result<(), LabelIoError> {
        let base = self.check(offset, data.len())?;
        match self.0.backend.write_durable(base + u64::from(offset), data) {
            None => Err(LabelIoError::ReadOnly),
            Some(Ok(())) => Ok(()),
            Some(Err(source)) => {
                tracing::error!(
                    "nvdimm {}: label write not durable: {source}",
                    self.0.plan.id
                );
                Err(LabelIoError::Io { offset, source })
            }
        }
    }
}

impl Labels<'_> {
    fn oob(&self, offset: u32, len: usize) -> LabelIoError {
        LabelIoError::OutOfRange {
            offset,
            len,
            size: self.label_size(),
        }
    }

    /// Bounds-checks an access against the label area; returns the area's backend offset.
    fn check(&self, offset: u32, len: usize) -> std::result::Result<u64, LabelIoError> {
        let (base, size) = self.0.label_area().ok_or_else(|| self.oob(offset, len))?;
        if u64::from(offset) + len as u64 > size {
            return Err(self.oob(offset, len));
        }
        Ok(base)
    }
}

/// A warning when a RAM DIMM is not whole 128 MiB memory blocks: Linux (x86_64) adds hotplugged
/// RAM in memory blocks and refuses, silently, a range that does not start and end on block
/// boundaries. QEMU does not check this either.
pub fn memory_block_warning(id: &str, gpa: u64, size: u64) -> Option<String> {
    const BLOCK: u64 = 128 << 20;
    (!size.is_multiple_of(BLOCK) || !gpa.is_multiple_of(BLOCK)).then(|| {
        format!(
            "pmvm: warning: pc-dimm {id}: {} at {gpa:#x} is not whole 128 MiB memory blocks; a Linux \
             guest refuses to add such memory (use a size that is a multiple of 128M)",
            pmem_layout::format_size(size)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::memory_block_warning;

    #[test]
    fn whole_blocks_pass_partial_ones_warn() {
        assert_eq!(memory_block_warning("d", 0x1_0000_0000, 256 << 20), None);
        let w = memory_block_warning("d", 0x1_0000_0000, 200 << 20).expect("200M warns");
        assert!(w.contains("pc-dimm d") && w.contains("128M"), "{w}");
        assert!(
            memory_block_warning("d", 0x1_0400_0000, 128 << 20).is_some(),
            "64 MiB-aligned start"
        );
    }
}
