//! nvdimm-acpi (placeholder, being written).
