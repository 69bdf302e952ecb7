//! vm-config (placeholder, being written).
