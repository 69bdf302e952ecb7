//! qmp (placeholder, being written).
