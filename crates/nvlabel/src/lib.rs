//! Namespace label storage area (LSA) format of NVDIMMs, as Linux and ndctl
//! use it (UEFI 2.7 "NVDIMM Label Protocol", Linux `drivers/nvdimm/label.h`).
//!
//! Layout: index block 0, index block 1 (each `I` bytes, a 72-byte header plus
//! a free bitmap), then `nslot` label slots of 128 (v1.1) or 256 (v1.2) bytes.
//! Nothing is updated in place: labels go to free slots and the other index
//! block is rewritten with the next sequence number.
//!
//! Pure, no I/O: every function works on a byte slice holding the LSA (for a
//! QEMU/pmvm backend file, its last `label-size` bytes). All reads are
//! bounds-checked; hostile input yields errors or findings, never panics.
//! See docs/labels.md for the design and the safety rules.

#![forbid(unsafe_code)]

mod bytes;
pub mod check;
pub mod classify;
pub mod cookie;
mod fletcher;
mod fuzz;
pub mod guid;
pub mod index;
pub mod json;
pub mod label;
pub mod layout;
pub mod parse;
pub mod raw;
pub mod write;

pub use check::{CheckOptions, Problem, Report, Severity, check};
pub use classify::{AreaState, classify};
pub use cookie::InterleaveSetInfo;
pub use fletcher::fletcher64;
pub use fuzz::fuzz_label_area;
pub use guid::{PMEM_TYPE_GUID, format_uuid, parse_guid, parse_uuid};
pub use index::{IndexHeader, IndexProblem};
pub use json::{JsonStyle, ReadLabelsJson, read_labels_json, to_ndctl_string};
pub use label::Label;
pub use layout::{
    Geometry, LabelVersion, best_seq, geometry, inc_seq, num_label_slots, sizeof_namespace_index,
};
pub use parse::{ActiveLabel, LabelArea, ParseError, parse};
pub use raw::{RawView, raw_view};
pub use write::{WriteError, add_label, init, remove_label};
