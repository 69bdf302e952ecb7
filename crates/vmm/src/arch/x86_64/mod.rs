//! x86_64: fixed layout, boot protocols, registers, CPUID/MSRs.
pub mod boot;
pub mod cpu;
pub mod error;
pub mod firmware;
pub mod layout;
pub mod regs;
pub mod reset_vector;
