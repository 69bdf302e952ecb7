//! ACPI tables: RSDP, XSDT, FADT (hardware-reduced), MADT, DSDT and extra tables (the NVDIMM
//! SSDT and NFIT). Devices build their own AML; this module only concatenates, places and
//! checksums. [`build_tables`] makes the blobs once; they are either placed in guest memory at
//! 0xe0000 ([`place_tables`], direct kernel boot) or handed to the firmware through fw_cfg's
//! table loader ([`loader_blobs`], firmware boot: the firmware chooses the addresses).

mod madt;
mod oem;

pub use madt::build_madt;
pub use oem::{OEM_ID, OEM_REVISION, OEM_TABLE_ID};

use acpi_tables::fadt::{FADTBuilder, Flags};
use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
use acpi_tables::rsdp::Rsdp;
use acpi_tables::sdt::Sdt;
use acpi_tables::xsdt::XSDT;
use acpi_tables::{Aml, AmlSink};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::arch::x86_64::layout::{ACPI_END, ACPI_START, ports};
use crate::devices::acpi_pm::RESET_VALUE;
/// Why the ACPI tables could not be placed.
#[derive(Debug, thiserror::Error)]
pub enum AcpiError {
    /// The tables do not fit the area below 1 MiB.
    #[error(
        "boot set-up: ACPI tables need {excess:#x} bytes more than the {area:#x}-byte area; reduce -m slots"
    )]
    TooLarge { excess: u64, area: u64 },
    /// Writing a table into guest memory failed.
    #[error("boot set-up: cannot write {what}: {source}")]
    Write {
        what: &'static str,
        #[source]
        source: vm_memory::GuestMemoryError,
    },
    /// The NVDIMM SSDT could not be built.
    #[error("boot set-up: NVDIMM SSDT: {0}")]
    NvdimmSsdt(String),
    /// The tables could not be laid out for the firmware's table loader.
    #[error("boot set-up: ACPI tables for the firmware: {0}")]
    Loader(#[from] fw_cfg::table_loader::LoaderError),
}

type Result<T> = std::result::Result<T, AcpiError>;

/// The DSDT: header (revision 2: 64-bit AML integers) + the given AML body.
pub fn build_dsdt(body: &[u8]) -> Vec<u8> {
    let mut dsdt = Sdt::new(*b"DSDT", 36, 2, OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    dsdt.append_slice(body);
    dsdt.as_slice().to_vec()
}

fn gas_io8(port: u16) -> GAS {
    GAS::new(
        AddressSpace::SystemIo,
        8,
        0,
        AccessSize::ByteAccess,
        u64::from(port),
    )
}

/// The FADT: hardware-reduced, with sleep control/status and reset registers.
pub fn build_fadt(dsdt_addr: u64) -> Vec<u8> {
    let mut fadt = FADTBuilder::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION)
        .flag(Flags::HwReducedAcpi)
        .flag(Flags::ResetRegSup)
        .flag(Flags::PwrButton)
        .flag(Flags::SlpButton)
        .dsdt_64(dsdt_addr);
    fadt.reset_reg = gas_io8(ports::ACPI_RESET);
    fadt.reset_value = RESET_VALUE;
    fadt.sleep_control_reg = gas_io8(ports::ACPI_SLEEP_CONTROL);
    fadt.sleep_status_reg = gas_io8(ports::ACPI_SLEEP_STATUS);
    fadt.hypervisor_vendor_identity = u64::from_le_bytes(*b"PMVM\0\0\0\0").into();
    let mut bytes = Vec::new();
    fadt.finalize().to_aml_bytes(&mut bytes);
    bytes
}

/// Everything the table set depends on.
pub struct AcpiInput<'a> {
    pub cpus: u32,
    /// DSDT body (AML from every device).
    pub dsdt_body: &'a [u8],
    /// Complete extra tables (SSDT, NFIT...), each with its header.
    pub extra_tables: &'a [Vec<u8>],
}

/// Every table but the FADT (which points at the DSDT) and the XSDT/RSDP (which point at the
/// rest), built once for either placement.
pub struct AcpiTables {
    pub dsdt: Vec<u8>,
    pub madt: Vec<u8>,
    /// SSDT, NFIT..., in XSDT order after the FADT and MADT.
    pub extra: Vec<Vec<u8>>,
}

/// Builds the tables from the devices' AML and tables.
pub fn build_tables(input: &AcpiInput) -> AcpiTables {
    AcpiTables {
        dsdt: build_dsdt(input.dsdt_body),
        madt: madt::build_madt(input.cpus),
        extra: input.extra_tables.to_vec(),
    }
}

/// Writes all tables; returns the RSDP address.
pub fn write_tables(mem: &GuestMemoryMmap, input: &AcpiInput) -> Result<u64> {
    place_tables(mem, &build_tables(input))
}

/// Places the tables at 0xe0000 (RSDP first) for direct kernel boot; returns the RSDP address.
pub fn place_tables(mem: &GuestMemoryMmap, tables: &AcpiTables) -> Result<u64> {
    let rsdp_addr = ACPI_START;
    let mut next = rsdp_addr + Rsdp::len() as u64;
    let mut place = |bytes: &[u8]| -> Result<u64> {
        let addr = (next + 7) & !7;
        let end = addr + bytes.len() as u64;
        if end > ACPI_END {
            return Err(AcpiError::TooLarge {
                excess: end - ACPI_END,
                area: ACPI_END - ACPI_START,
            });
        }
        mem.write_slice(bytes, GuestAddress(addr))
            .map_err(|source| AcpiError::Write {
                what: "ACPI tables",
                source,
            })?;
        next = end;
        Ok(addr)
    };

    let dsdt_addr = place(&tables.dsdt)?;
    let mut entries = vec![place(&build_fadt(dsdt_addr))?, place(&tables.madt)?];
    for t in &tables.extra {
        entries.push(place(t)?);
    }
    let mut xsdt = XSDT::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    for e in entries {
        xsdt.add_entry(e);
    }
    let mut xsdt_bytes = Vec::new();
    xsdt.to_aml_bytes(&mut xsdt_bytes);
    let xsdt_addr = place(&xsdt_bytes)?;
    let mut rsdp = Vec::new();
    Rsdp::new(OEM_ID, xsdt_addr).to_aml_bytes(&mut rsdp);
    mem.write_slice(&rsdp, GuestAddress(rsdp_addr))
        .map_err(|source| AcpiError::Write {
            what: "the RSDP",
            source,
        })?;
    Ok(rsdp_addr)
}

/// The same tables for firmware boot: `etc/acpi/tables`, `etc/acpi/rsdp` and the
/// `etc/table-loader` script that makes the firmware place, link and checksum them (the
/// FADT's DSDT pointers, both the 32- and 64-bit one, are patched by the script; SeaBIOS
/// follows only the 32-bit one to find the virtio-mmio disks in the DSDT).
pub fn loader_blobs(tables: &AcpiTables) -> Result<fw_cfg::acpi::AcpiBlobs> {
    let oem_id: [u8; 6] = OEM_ID;
    let mut set = fw_cfg::acpi::AcpiTableSet::new(oem_id, OEM_TABLE_ID, OEM_REVISION);
    set.dsdt = Some(tables.dsdt.clone());
    set.fadt = Some(build_fadt(0));
    set.tables.push(tables.madt.clone());
    set.tables.extend(tables.extra.iter().cloned());
    Ok(fw_cfg::acpi::build_acpi(&set)?)
}

/// Collects AML from several fragments.
pub fn aml_bytes(fragments: &[&dyn Aml]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fragments {
        f.to_aml_bytes(&mut out as &mut dyn AmlSink);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checksum_ok(t: &[u8]) -> bool {
        t.iter().fold(0u8, |a, b| a.wrapping_add(*b)) == 0
    }

    #[test]
    fn fadt_is_hw_reduced_with_registers() {
        let f = build_fadt(0x1234_5678);
        assert_eq!(&f[0..4], b"FACP");
        assert_eq!(
            u32::from_le_bytes(f[4..8].try_into().unwrap()) as usize,
            f.len()
        );
        assert!(checksum_ok(&f));
        let flags = u32::from_le_bytes(f[112..116].try_into().unwrap());
        assert_ne!(flags & (1 << 20), 0, "HW_REDUCED_ACPI");
        assert_ne!(flags & (1 << 10), 0, "RESET_REG_SUP");
        // RESET_REG: SystemIO, 8 bits, port 0x602; RESET_VALUE 1.
        assert_eq!(&f[116..120], &[1, 8, 0, 1]);
        assert_eq!(u64::from_le_bytes(f[120..128].try_into().unwrap()), 0x602);
        assert_eq!(f[128], 1);
        // X_DSDT
        assert_eq!(
            u64::from_le_bytes(f[140..148].try_into().unwrap()),
            0x1234_5678
        );
        // SLEEP_CONTROL_REG at 244: SystemIO port 0x600.
        assert_eq!(f[244], 1);
        assert_eq!(u64::from_le_bytes(f[248..256].try_into().unwrap()), 0x600);
    }

    #[test]
    fn loader_blobs_give_the_firmware_the_same_tables() {
        let extra = vec![
            build_dsdt(&[0x10, 0x00])
                .iter()
                .enumerate()
                .map(|(i, b)| if i < 4 { b"SSDT"[i] } else { *b })
                .collect::<Vec<u8>>(),
        ];
        let tables = build_tables(&AcpiInput {
            cpus: 2,
            dsdt_body: &[0x10, 0x00],
            extra_tables: &extra,
        });
        let blobs = loader_blobs(&tables).unwrap();
        let files = |name: &str| match name {
            fw_cfg::table_loader::ACPI_TABLES_FILE => Some(blobs.tables.clone()),
            fw_cfg::table_loader::ACPI_RSDP_FILE => Some(blobs.rsdp.clone()),
            _ => None,
        };
        let loaded = fw_cfg::interp::run(
            &blobs.loader.to_bytes(),
            files,
            fw_cfg::interp::Zones::default(),
        )
        .unwrap();
        let view = fw_cfg::interp::check_acpi(&loaded).unwrap();
        let dsdt = view.dsdt.expect("DSDT reachable through the FADT");
        // SeaBIOS follows the 32-bit DSDT pointer to find the virtio-mmio disks.
        assert_eq!(view.dsdt32, dsdt.addr);
        assert_eq!(dsdt.bytes, tables.dsdt);
        let sigs: Vec<[u8; 4]> = view.entries.iter().map(|t| t.signature).collect();
        assert_eq!(sigs, [*b"FACP", *b"APIC", *b"SSDT"]);
        assert_eq!(view.entries[1].bytes, tables.madt);
    }

    #[test]
    fn dsdt_header_and_checksum() {
        let d = build_dsdt(&[0x10, 0x00]);
        assert_eq!(&d[0..4], b"DSDT");
        assert_eq!(d[8], 2);
        assert_eq!(d.len(), 38);
        assert!(checksum_ok(&d));
    }
}
