//! Pure ACPI pieces of pmvm's virtual NVDIMMs (no KVM, no file descriptors):
//!
//! - [`nfit`]: NFIT / FIT bytes, byte-identical to QEMU's ([`build_fit`], [`build_nfit`]);
//! - [`ssdt`]: the `\_SB.NVDR` (ACPI0012) AML in its own SSDT ([`build_nvdimm_ssdt`]);
//! - [`dsm`]: the host side of the `_DSM` mailbox ([`DsmDispatcher`]);
//! - [`mailbox`]: the mailbox constants both sides agree on.
//!
//! Design and numbers: `docs/acpi-nvdimm.md`.

#![forbid(unsafe_code)]

pub mod dsm;
mod fuzz;
mod header;
pub mod label;
pub mod mailbox;
pub mod nfit;
pub mod ssdt;

pub use dsm::{DsmDispatcher, DsmStats};
pub use fuzz::fuzz_dsm_mailbox;
pub use header::{OemIds, checksum_ok};
pub use label::{DimmRef, DsmTarget, LabelArea, LabelIoError, MemLabelArea};
pub use mailbox::{DOORBELL_PORT, FIT_CHUNK, MAILBOX_SIZE, MAX_XFER, status};
pub use nfit::{
    NvdimmAcpiInfo, ParsePersistenceError, Persistence, build_fit, build_nfit, device_fit_entries,
};
pub use ssdt::{SSDT_OEM_TABLE_ID, SsdtError, build_nvdimm_ssdt, nvdr_aml};
