//! pmvm's machine: KVM, guest memory, vCPUs, platform devices, virtual NVDIMMs and the ACPI
//! tables that describe them.

pub mod acpi;
pub mod arch;
pub mod bus;
pub mod console;
pub mod console_mux;
pub mod device_manager;
pub mod devices;
pub mod error;
pub mod memory;
pub mod monitor;
pub mod runner;
pub mod seccomp;
pub mod signals;
pub mod terminal;
pub mod vcpu;
pub mod vm;
pub mod vm_handle;
pub mod vnc;

pub use error::{Error, Result};
pub use runner::run_vm;
