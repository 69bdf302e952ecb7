//! A firmware reset vector for a machine that has no firmware.
//!
//! Linux picks its reboot method at boot. On a hardware-reduced ACPI machine with no EFI and no
//! `reboot=` parameter it chooses EFI (`reboot_init()` -> `efi_reboot_required()` is true for
//! HW-reduced ACPI), finds no EFI runtime, and falls back to `machine_real_restart(MRR_BIOS)`:
//! back to real mode and a jump to the BIOS reset vector, `F000:FFF0` (physical `0xffff0`).
//! With nothing there the CPU runs zeroed RAM forever and the guest never comes back (seen in
//! the nested harness). QEMU's guests land in SeaBIOS, which resets the machine. pmvm puts a
//! 13-byte real-mode stub there that does what SeaBIOS's reset amounts to: it writes the FADT
//! reset register (port 0x602 <- 1), pulses the i8042 reset line (port 0x64 <- 0xfe) in case
//! the first is ignored, and halts. Either write ends `Vm::run` with a reset.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::error::{BootError, Result};
use super::layout::{RESET_VECTOR_ADDR, ports};
use crate::devices::acpi_pm::RESET_VALUE;

/// The real-mode stub at the reset vector.
pub fn reset_stub() -> [u8; 13] {
    let [reset_lo, reset_hi] = ports::ACPI_RESET.to_le_bytes();
    [
        0xba,
        reset_lo,
        reset_hi, // mov dx, ACPI_RESET
        0xb0,
        RESET_VALUE, // mov al, RESET_VALUE
        0xee,        // out dx, al
        0xb0,
        0xfe, // mov al, 0xfe (i8042: pulse the reset line)
        0xe6,
        ports::I8042_CMD as u8, // out 0x64, al
        0xf4,                   // hlt
        0xeb,
        0xfd, // jmp back to the hlt
    ]
}

/// Writes the stub at `F000:FFF0`.
pub fn write_reset_vector(mem: &GuestMemoryMmap) -> Result<()> {
    mem.write_slice(&reset_stub(), GuestAddress(RESET_VECTOR_ADDR))
        .map_err(|e| BootError::write("the reset vector", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_bytes_are_golden_and_fit_below_1mib() {
        assert_eq!(
            reset_stub(),
            [
                0xba, 0x02, 0x06, 0xb0, 0x01, 0xee, 0xb0, 0xfe, 0xe6, 0x64, 0xf4, 0xeb, 0xfd
            ]
        );
        assert!(RESET_VECTOR_ADDR + reset_stub().len() as u64 <= 0x10_0000);
        assert_eq!(RESET_VECTOR_ADDR, 0xf_0000 + 0xfff0, "F000:FFF0");
    }

    #[test]
    fn the_jump_lands_on_the_hlt() {
        let s = reset_stub();
        let hlt = s.iter().position(|&b| b == 0xf4).expect("hlt present");
        // jmp rel8 at hlt+1: target = address after the 2-byte jmp + rel8
        let rel = s[hlt + 2] as i8 as isize;
        assert_eq!((hlt + 1 + 2) as isize + rel, hlt as isize);
    }
}
