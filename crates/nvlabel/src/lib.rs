//! nvlabel (placeholder, being written).
