//! The KVM glue: memory, vCPUs, devices, ACPI placement.
