//! The NVDIMM root device (`\_SB.NVDR`): the `_DSM` mailbox and doorbell, the FIT, and the
//! set of NVDIMMs (cold- and hot-plugged).

use nvdimm_acpi::{
    DimmRef, DsmDispatcher, DsmTarget, MAILBOX_SIZE, OemIds, Persistence, build_fit, build_nfit,
};
use vm_memory::{Bytes, GuestAddress};

use super::{Labels, Nvdimm};
use crate::acpi::AcpiError;
use crate::acpi::{OEM_ID, OEM_REVISION, OEM_TABLE_ID};
use crate::arch::x86_64::layout::NVDIMM_MAILBOX_ADDR;
use crate::bus::BusDevice;
use crate::memory::GuestRam;

/// OEM identities for the NFIT and the NVDIMM SSDT.
pub fn oem_ids() -> OemIds {
    OemIds {
        oem_id: OEM_ID,
        oem_table_id: OEM_TABLE_ID,
        oem_revision: OEM_REVISION,
        creator_id: *b"PMVM",
        creator_revision: 1,
    }
}

/// Owns the NVDIMMs and serves the guest's `_DSM` calls.
pub struct NvdimmController {
    mem: GuestRam,
    dimms: Vec<Nvdimm>,
    persistence: Option<Persistence>,
    fit: Vec<u8>,
    dispatcher: DsmDispatcher,
    mailbox: Vec<u8>,
}

struct Target<'a> {
    dimms: &'a [Nvdimm],
    fit: &'a [u8],
    labels: Option<Labels<'a>>,
}

impl DsmTarget for Target<'_> {
    fn dimm(&mut self, handle: u32) -> Option<DimmRef<'_>> {
        let dimm = self
            .dimms
            .iter()
            .find(|d| d.plan.slot.wrapping_add(1) == handle)?;
        self.labels = dimm.label_area().map(|_| Labels(dimm));
        Some(DimmRef {
            labels: self
                .labels
                .as_mut()
                .map(|l| l as &mut dyn nvdimm_acpi::LabelArea),
        })
    }

    fn fit(&self) -> &[u8] {
        self.fit
    }
}

impl NvdimmController {
    /// A controller for `dimms` (in command-line order); `mem` holds the mailbox.
    pub fn new(mem: GuestRam, dimms: Vec<Nvdimm>, persistence: Option<Persistence>) -> Self {
        let mut c = NvdimmController {
            mem,
            dimms,
            persistence,
            fit: Vec::new(),
            dispatcher: DsmDispatcher::new(),
            mailbox: vec![0; MAILBOX_SIZE],
        };
        c.rebuild_fit();
        c
    }

    fn rebuild_fit(&mut self) {
        let infos: Vec<_> = self.dimms.iter().map(Nvdimm::acpi_info).collect();
        self.fit = build_fit(&infos, self.persistence);
    }

    /// The static NFIT (only when NVDIMMs exist at boot, as QEMU does).
    pub fn nfit(&self) -> Option<Vec<u8>> {
        (!self.dimms.is_empty()).then(|| build_nfit(&self.fit, &oem_ids()))
    }

    /// The NVDIMM SSDT with one child per slot.
    pub fn ssdt(&self, slots: u32) -> Result<Vec<u8>, AcpiError> {
        nvdimm_acpi::build_nvdimm_ssdt(
            slots,
            NVDIMM_MAILBOX_ADDR as u32,
            nvdimm_acpi::DOORBELL_PORT,
            &oem_ids(),
        )
        .map_err(|e| AcpiError::NvdimmSsdt(e.to_string()))
    }

    /// Adds a hot-plugged NVDIMM; earlier FIT entries stay byte-identical.
    pub fn add(&mut self, dimm: Nvdimm) {
        self.dimms.push(dimm);
        self.rebuild_fit();
        self.dispatcher.fit_changed();
    }

    /// The FIT as the guest's `_FIT` reads it (the NFIT's body at boot).
    pub fn fit(&self) -> &[u8] {
        &self.fit
    }

    /// The NVDIMMs.
    pub fn dimms(&self) -> &[Nvdimm] {
        &self.dimms
    }

    /// DSM call counters.
    pub fn stats(&self) -> &nvdimm_acpi::DsmStats {
        self.dispatcher.stats()
    }

    fn doorbell(&mut self) {
        // Copy the request out of guest memory first: the guest cannot change it mid-call.
        if self
            .mem
            .read_slice(&mut self.mailbox, GuestAddress(NVDIMM_MAILBOX_ADDR))
            .is_err()
        {
            return;
        }
        let mut target = Target {
            dimms: &self.dimms,
            fit: &self.fit,
            labels: None,
        };
        let reply = self.dispatcher.handle(&self.mailbox, &mut target);
        let _ = self
            .mem
            .write_slice(&reply, GuestAddress(NVDIMM_MAILBOX_ADDR));
    }
}

impl BusDevice for NvdimmController {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        // The AML writes the mailbox address as one 32-bit OUT; other accesses are ignored.
        if offset == 0 && data == (NVDIMM_MAILBOX_ADDR as u32).to_le_bytes() {
            self.doorbell();
        }
    }
}
