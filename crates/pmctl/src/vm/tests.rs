//! Unit tests of the VM manager.
