//! Mailbox protocol constants shared by the AML (guest side) and the `_DSM` dispatcher
//! (host side). See `docs/acpi-nvdimm.md` for the sizes and why.
//!
//! Layout (same header as QEMU's 4 KiB page, but 132 KiB long):
//!
//! | in (written by AML) | out (written by the VMM) |
//! |---|---|
//! | `0x00 HDLE u32` handle | `0x00 RLEN u32` bytes written incl. RLEN |
//! | `0x04 REVS u32` `_DSM` revision | `0x04 ODAT` status/bitmap, then payload |
//! | `0x08 FUNC u32` `_DSM` function | |
//! | `0x0C FARG` function argument | |

/// Size of the mailbox in guest RAM (132 KiB). Must lie below 4 GiB, page aligned, E820-reserved.
pub const MAILBOX_SIZE: usize = 0x21000;
/// Largest label read/write per `_DSM` call (128 KiB: the whole minimum label area at once).
pub const MAX_XFER: u32 = 0x20000;
/// Largest FIT chunk returned by one private Read-FIT call: the mailbox minus RLEN and status.
pub const FIT_CHUNK: usize = MAILBOX_SIZE - 8;
/// Default doorbell I/O port (QEMU's `NVDIMM_ACPI_IO_BASE`); 4 bytes wide, 32-bit OUT only.
pub const DOORBELL_PORT: u16 = 0x0A18;
/// Width of the doorbell in bytes.
pub const DOORBELL_LEN: u16 = 4;

/// Offset of HDLE (input) / RLEN (output).
pub const OFF_HDLE: usize = 0;
/// Offset of REVS (input).
pub const OFF_REVS: usize = 4;
/// Offset of FUNC (input).
pub const OFF_FUNC: usize = 8;
/// Offset of FARG, the function argument (input).
pub const OFF_FARG: usize = 12;
/// Offset of ODAT, the status/bitmap + payload (output).
pub const OFF_ODAT: usize = 4;

/// Handle of the NVDR root device.
pub const ROOT_HANDLE: u32 = 0;
/// Handle of the private root functions (Read FIT); never visible to the OS.
pub const PRIVATE_HANDLE: u32 = 0x10000;

/// `_DSM` UUID of the NFIT root device (ACPI spec).
pub const UUID_ROOT: &str = "2F10E7A4-9E91-11E4-89D3-123B93F75CBA";
/// `_DSM` UUID of QEMU's private root functions (Read FIT), reused for compatibility.
pub const UUID_PRIVATE: &str = "648B9CF2-CDA1-4312-8AD9-49C4AF32BD62";
/// `_DSM` UUID of the Intel NVDIMM command family (label functions 4/5/6).
pub const UUID_INTEL: &str = "4309AC30-0D11-11E4-9191-0800200C9A66";

/// Input ("FARG") field ladder: (AML name, bytes). Each field starts at [`OFF_FARG`]; the AML
/// stores the argument into the smallest one that holds it (ACPICA writes a whole field per
/// Store). Rungs: a small argument, 8+512, 8+4096, 8+32768, 8+[`MAX_XFER`], everything.
pub const FARG_LADDER: [(&str, usize); 6] = [
    ("FA00", 64),
    ("FA01", 8 + 512),
    ("FA02", 8 + 4096),
    ("FA03", 8 + 32768),
    ("FA04", 8 + MAX_XFER as usize),
    ("FA05", MAILBOX_SIZE - OFF_FARG),
];

/// Output field ladder: (AML name, bytes). Each field starts at offset 0 (it includes RLEN,
/// which keeps every QWord access aligned); the AML reads the smallest one with
/// `bytes >= RLEN` and returns `Mid(field, 4, RLEN - 4)`. Rungs: RLEN + status + 64/512/4096/
/// 32768/[`MAX_XFER`] bytes of payload, and the whole mailbox (FIT chunks).
pub const ODAT_LADDER: [(&str, usize); 6] = [
    ("OB00", 8 + 64),
    ("OB01", 8 + 512),
    ("OB02", 8 + 4096),
    ("OB03", 8 + 32768),
    ("OB04", 8 + MAX_XFER as usize),
    ("OB05", MAILBOX_SIZE),
];

/// `_DSM` status codes (low 16 bits of the status word).
pub mod status {
    /// Success.
    pub const SUCCESS: u32 = 0;
    /// Not supported: unknown function, revision != 1, no label area, write to a read-only DIMM.
    pub const NOT_SUPPORTED: u32 = 1;
    /// Non-existing memory device: non-zero function on an empty slot.
    pub const NO_SUCH_DEVICE: u32 = 2;
    /// Invalid input parameters: bad offset/length, truncated request, FIT offset past the end.
    pub const INVALID_INPUT: u32 = 3;
    /// Hardware error: the host failed to read or write the label area (pmvm addition; QEMU has
    /// no such case). Linux maps every non-zero status to -EIO.
    pub const HW_ERROR: u32 = 4;
    /// FIT changed while it was being read (private Read-FIT only): the AML restarts at 0.
    pub const FIT_CHANGED: u32 = 0x100;
}

/// Function-0 bitmap of a DIMM with a label area: bit 0 + functions 4, 5, 6.
pub const DIMM_LABEL_FUNCS: u32 = 0x71;
/// Function-0 bitmap of the private root handle: functions 0 and 1 (Read FIT).
pub const PRIVATE_FUNCS: u32 = 0x3;
