//! Per-vCPU CPUID, MSRs and local APIC set-up.

use kvm_bindings::{CpuId, Msrs, kvm_msr_entry};
use kvm_ioctls::VcpuFd;

use super::error::{BootError, Result};

const CPUID_1_ECX_TSC_DEADLINE: u32 = 1 << 24;
const CPUID_1_ECX_HYPERVISOR: u32 = 1 << 31;
const CPUID_1_EDX_HTT: u32 = 1 << 28;

/// Adapts the host-supported CPUID for one vCPU: APIC ids and counts, the hypervisor bit (without
/// it Linux believes it runs on bare metal, gets no kvm-clock and hangs calibrating the PIT) and
/// TSC-deadline. Everything else the host KVM supports passes through (`-cpu host`), so clwb and
/// clflushopt reach the guest when the host has them.
pub fn vcpu_cpuid(base: &CpuId, cpu_index: u32, cpu_count: u32) -> CpuId {
    let mut cpuid = base.clone();
    for entry in cpuid.as_mut_slice().iter_mut() {
        match entry.function {
            1 => {
                entry.ecx |= CPUID_1_ECX_HYPERVISOR | CPUID_1_ECX_TSC_DEADLINE;
                entry.ebx = (cpu_index << 24) | ((cpu_count.min(255)) << 16) | (entry.ebx & 0xffff);
                if cpu_count > 1 {
                    entry.edx |= CPUID_1_EDX_HTT;
                }
            }
            // Extended topology: x2APIC id of this CPU in EDX; one thread per core.
            0xb | 0x1f => {
                entry.edx = cpu_index;
                match entry.index {
                    0 => {
                        entry.eax = 0;
                        entry.ebx = 1;
                        entry.ecx = 0x100; // level 0, type SMT
                    }
                    1 => {
                        entry.eax = 32 - cpu_count.max(1).leading_zeros();
                        entry.ebx = cpu_count;
                        entry.ecx = 0x201; // level 1, type core
                    }
                    _ => {
                        entry.eax = 0;
                        entry.ebx = 0;
                        entry.ecx = entry.index;
                    }
                }
            }
            // Deterministic cache parameters: cores per package (bits 31:26).
            4 => {
                entry.eax =
                    (entry.eax & 0x03ff_ffff) | ((cpu_count.saturating_sub(1).min(63)) << 26);
            }
            // AMD: number of cores (ECX[7:0] = N-1).
            0x8000_0008 => {
                entry.ecx = (entry.ecx & !0xff) | (cpu_count.saturating_sub(1) & 0xff);
            }
            _ => {}
        }
    }
    cpuid
}

const MSR_IA32_SYSENTER_CS: u32 = 0x174;
const MSR_IA32_SYSENTER_ESP: u32 = 0x175;
const MSR_IA32_SYSENTER_EIP: u32 = 0x176;
const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_CSTAR: u32 = 0xc000_0083;
const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
const MSR_IA32_TSC: u32 = 0x10;
const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;

/// Boot MSRs: the syscall MSRs cleared, fast strings on, MTRRs enabled with write-back default.
pub fn setup_msrs(vcpu: &VcpuFd) -> Result<()> {
    let entry = |index, data| kvm_msr_entry {
        index,
        data,
        ..Default::default()
    };
    let entries = [
        entry(MSR_IA32_SYSENTER_CS, 0),
        entry(MSR_IA32_SYSENTER_ESP, 0),
        entry(MSR_IA32_SYSENTER_EIP, 0),
        entry(MSR_STAR, 0),
        entry(MSR_CSTAR, 0),
        entry(MSR_KERNEL_GS_BASE, 0),
        entry(MSR_SYSCALL_MASK, 0),
        entry(MSR_LSTAR, 0),
        entry(MSR_IA32_TSC, 0),
        entry(MSR_IA32_MISC_ENABLE, 1),
        entry(MSR_MTRR_DEF_TYPE, (1 << 11) | 6),
    ];
    let msrs = Msrs::from_entries(&entries).map_err(|e| BootError::MsrList(format!("{e:?}")))?;
    let set = vcpu
        .set_msrs(&msrs)
        .map_err(BootError::kvm("KVM_SET_MSRS"))?;
    if set != entries.len() {
        // KVM stops at the first MSR it refuses; name it so the failure can be acted on.
        let refused = entries.get(set).map(|e| e.index).unwrap_or(0);
        return Err(BootError::MsrRefused(refused));
    }
    Ok(())
}

const APIC_LVT0: usize = 0x350;
const APIC_LVT1: usize = 0x360;
const APIC_MODE_NMI: u32 = 0x4;
const APIC_MODE_EXTINT: u32 = 0x7;

fn set_apic_delivery_mode(reg: u32, mode: u32) -> u32 {
    (reg & !0x700) | (mode << 8)
}

/// LINT0 = ExtINT (the PIC), LINT1 = NMI, as a BIOS leaves them.
pub fn setup_lint(vcpu: &VcpuFd) -> Result<()> {
    let mut lapic = vcpu.get_lapic().map_err(BootError::kvm("KVM_GET_LAPIC"))?;
    for (offset, mode) in [(APIC_LVT0, APIC_MODE_EXTINT), (APIC_LVT1, APIC_MODE_NMI)] {
        let bytes: [u8; 4] = std::array::from_fn(|i| lapic.regs[offset + i] as u8);
        let value = set_apic_delivery_mode(u32::from_le_bytes(bytes), mode);
        for (i, b) in value.to_le_bytes().iter().enumerate() {
            lapic.regs[offset + i] = *b as _;
        }
    }
    vcpu.set_lapic(&lapic)
        .map_err(BootError::kvm("KVM_SET_LAPIC"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvm_bindings::kvm_cpuid_entry2;

    #[test]
    fn leaf1_gets_hypervisor_bit_and_apic_id() {
        let base = CpuId::from_entries(&[kvm_cpuid_entry2 {
            function: 1,
            ebx: 0x0000_0800,
            ..Default::default()
        }])
        .expect("one entry fits");
        let c = vcpu_cpuid(&base, 3, 4);
        let e = c.as_slice()[0];
        assert_ne!(e.ecx & CPUID_1_ECX_HYPERVISOR, 0);
        assert_eq!(e.ebx >> 24, 3);
        assert_eq!((e.ebx >> 16) & 0xff, 4);
        assert_eq!(e.ebx & 0xffff, 0x0800);
    }

    #[test]
    fn delivery_mode_bits() {
        assert_eq!(
            set_apic_delivery_mode(0x0001_0000, APIC_MODE_EXTINT),
            0x0001_0700
        );
        assert_eq!(set_apic_delivery_mode(0x700, APIC_MODE_NMI), 0x400);
    }
}
