//! pmem-layout (placeholder, being written).
