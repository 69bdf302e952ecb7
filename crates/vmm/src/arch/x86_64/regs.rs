//! Boot-time register state: GDT, identity page tables, segment and control registers.

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_segment};
use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::error::{BootError, Result};
use super::layout::*;

const X86_CR0_PE: u64 = 0x1;
const X86_CR0_ET: u64 = 0x10;
const X86_CR0_PG: u64 = 0x8000_0000;
const X86_CR4_PAE: u64 = 0x20;
const EFER_LME: u64 = 0x100;
const EFER_LMA: u64 = 0x400;

/// How the boot CPU enters the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryMode {
    /// Linux 64-bit boot protocol: long mode, paging on, `rsi` = zero page.
    Linux64,
    /// PVH: 32-bit flat protected mode, paging off, `rbx` = `hvm_start_info`.
    Pvh,
}

/// A GDT entry from flags, base and limit (the classic packing).
const fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    ((base as u64 & 0xff00_0000) << (56 - 24))
        | ((flags as u64 & 0x0000_f0ff) << 40)
        | ((limit as u64 & 0x000f_0000) << (48 - 16))
        | ((base as u64 & 0x00ff_ffff) << 16)
        | (limit as u64 & 0x0000_ffff)
}

fn segment_from_gdt(entry: u64, table_index: u8) -> kvm_segment {
    let bit = |shift: u32, mask: u64| ((entry >> shift) & mask) as u8;
    let base = ((entry >> 16) & 0x00ff_ffff) | ((entry >> 32) & 0xff00_0000);
    let limit_raw = ((entry & 0xffff) | ((entry >> 32) & 0x000f_0000)) as u32;
    let g = bit(55, 1);
    let limit = if g == 1 {
        (limit_raw << 12) | 0xfff
    } else {
        limit_raw
    };
    kvm_segment {
        base,
        limit,
        selector: u16::from(table_index) * 8,
        type_: bit(40, 0xf),
        present: bit(47, 1),
        dpl: bit(45, 0x3),
        db: bit(54, 1),
        s: bit(44, 1),
        l: bit(53, 1),
        g,
        avl: bit(52, 1),
        padding: 0,
        unusable: u8::from(bit(47, 1) == 0),
    }
}

/// Writes the GDT and IDT, (for Linux64) the identity page tables, and loads the segment and
/// control registers of the boot vCPU.
pub fn setup_sregs(mem: &GuestMemoryMmap, vcpu: &VcpuFd, mode: EntryMode) -> Result<()> {
    let code = match mode {
        EntryMode::Linux64 => gdt_entry(0xa09b, 0, 0xfffff),
        EntryMode::Pvh => gdt_entry(0xc09b, 0, 0xfffff),
    };
    let gdt = [
        gdt_entry(0, 0, 0),
        code,
        gdt_entry(0xc093, 0, 0xfffff),
        gdt_entry(0x008b, 0, 0xfffff),
    ];
    for (i, entry) in gdt.iter().enumerate() {
        mem.write_obj(*entry, GuestAddress(GDT_ADDR + i as u64 * 8))
            .map_err(|e| BootError::write("the GDT", e))?;
    }
    mem.write_obj(0u64, GuestAddress(IDT_ADDR))
        .map_err(|e| BootError::write("the IDT", e))?;

    let mut sregs = vcpu.get_sregs().map_err(BootError::kvm("KVM_GET_SREGS"))?;
    let code_seg = segment_from_gdt(gdt[1], 1);
    let data_seg = segment_from_gdt(gdt[2], 2);
    let tss_seg = segment_from_gdt(gdt[3], 3);
    sregs.gdt.base = GDT_ADDR;
    sregs.gdt.limit = (gdt.len() * 8 - 1) as u16;
    sregs.idt.base = IDT_ADDR;
    sregs.idt.limit = 7;
    sregs.cs = code_seg;
    sregs.ds = data_seg;
    sregs.es = data_seg;
    sregs.fs = data_seg;
    sregs.gs = data_seg;
    sregs.ss = data_seg;
    sregs.tr = tss_seg;

    match mode {
        EntryMode::Linux64 => {
            setup_page_tables(mem)?;
            sregs.cr3 = PML4_ADDR;
            sregs.cr4 |= X86_CR4_PAE;
            sregs.cr0 |= X86_CR0_PE | X86_CR0_PG;
            sregs.efer |= EFER_LME | EFER_LMA;
        }
        EntryMode::Pvh => {
            sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
            sregs.cr4 = 0;
            sregs.efer = 0;
        }
    }
    vcpu.set_sregs(&sregs)
        .map_err(BootError::kvm("KVM_SET_SREGS"))
}

/// Identity-maps the first 1 GiB with 2 MiB pages (enough for the kernel to set up its own).
fn setup_page_tables(mem: &GuestMemoryMmap) -> Result<()> {
    let err = |e| BootError::write("the boot page tables", e);
    mem.write_obj(PDPTE_ADDR | 0x03, GuestAddress(PML4_ADDR))
        .map_err(err)?;
    mem.write_obj(PDE_ADDR | 0x03, GuestAddress(PDPTE_ADDR))
        .map_err(err)?;
    for i in 0..512u64 {
        mem.write_obj((i << 21) | 0x83, GuestAddress(PDE_ADDR + i * 8))
            .map_err(err)?;
    }
    Ok(())
}

/// General-purpose registers of the boot vCPU.
pub fn setup_regs(vcpu: &VcpuFd, entry: u64, mode: EntryMode) -> Result<()> {
    let mut regs = kvm_regs {
        rflags: 0x2,
        rip: entry,
        ..Default::default()
    };
    match mode {
        EntryMode::Linux64 => {
            regs.rsp = BOOT_STACK_POINTER;
            regs.rbp = BOOT_STACK_POINTER;
            regs.rsi = ZERO_PAGE_ADDR;
        }
        EntryMode::Pvh => regs.rbx = PVH_INFO_ADDR,
    }
    vcpu.set_regs(&regs).map_err(BootError::kvm("KVM_SET_REGS"))
}

/// x87 and SSE control words as after FNINIT.
pub fn setup_fpu(vcpu: &VcpuFd) -> Result<()> {
    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu).map_err(BootError::kvm("KVM_SET_FPU"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gdt_entries_match_the_classic_values() {
        assert_eq!(gdt_entry(0xa09b, 0, 0xfffff), 0x00af_9b00_0000_ffff);
        assert_eq!(gdt_entry(0xc093, 0, 0xfffff), 0x00cf_9300_0000_ffff);
        assert_eq!(gdt_entry(0x008b, 0, 0xfffff), 0x000f_8b00_0000_ffff);
    }

    #[test]
    fn code_segment_decodes_to_long_mode() {
        let s = segment_from_gdt(gdt_entry(0xa09b, 0, 0xfffff), 1);
        assert_eq!(
            (s.l, s.db, s.present, s.type_, s.selector),
            (1, 0, 1, 0xb, 8)
        );
        assert_eq!(s.limit, 0xffff_ffff);
        let p = segment_from_gdt(gdt_entry(0xc09b, 0, 0xfffff), 1);
        assert_eq!((p.l, p.db), (0, 1));
    }
}

/// A vCPU's registers in the layout of QEMU's `info registers` (the general registers, RIP,
/// RFLAGS, CS, the control registers and EFER), for the human monitor.
pub fn format_registers(index: u32, r: &kvm_regs, s: &kvm_bindings::kvm_sregs) -> String {
    let f = |b: u64, c: char| if r.rflags & (1 << b) != 0 { c } else { '-' };
    let flags: String = [
        f(11, 'O'),
        f(10, 'D'),
        f(7, 'S'),
        f(6, 'Z'),
        f(4, 'A'),
        f(2, 'P'),
        f(0, 'C'),
    ]
    .iter()
    .collect();
    format!(
        "CPU#{index}\n\
         RAX={:016x} RBX={:016x} RCX={:016x} RDX={:016x}\n\
         RSI={:016x} RDI={:016x} RBP={:016x} RSP={:016x}\n\
         R8 ={:016x} R9 ={:016x} R10={:016x} R11={:016x}\n\
         R12={:016x} R13={:016x} R14={:016x} R15={:016x}\n\
         RIP={:016x} RFL={:08x} [{flags}] CPL={}\n\
         CS ={:04x} {:016x} {:08x}\n\
         CR0={:08x} CR2={:016x} CR3={:016x} CR4={:08x}\n\
         EFER={:016x}\n",
        r.rax,
        r.rbx,
        r.rcx,
        r.rdx,
        r.rsi,
        r.rdi,
        r.rbp,
        r.rsp,
        r.r8,
        r.r9,
        r.r10,
        r.r11,
        r.r12,
        r.r13,
        r.r14,
        r.r15,
        r.rip,
        r.rflags,
        s.cs.dpl,
        s.cs.selector,
        s.cs.base,
        s.cs.limit,
        s.cr0,
        s.cr2,
        s.cr3,
        s.cr4,
        s.efer
    )
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn registers_print_like_qemu() {
        let r = kvm_regs {
            rax: 0x1234,
            rip: 0xffff_ffff_8100_0000,
            rflags: 0x246,
            r8: 8,
            ..Default::default()
        };
        let s = kvm_bindings::kvm_sregs {
            cr0: 0x8005_0033,
            efer: 0xd01,
            cs: kvm_segment {
                selector: 0x10,
                ..Default::default()
            },
            ..Default::default()
        };
        let t = format_registers(1, &r, &s);
        assert!(
            t.starts_with("CPU#1\nRAX=0000000000001234 RBX=0000000000000000"),
            "{t}"
        );
        assert!(t.contains("\nR8 =0000000000000008 "), "{t}");
        assert!(
            t.contains("\nRIP=ffffffff81000000 RFL=00000246 [---Z-P-] CPL=0\n"),
            "{t}"
        );
        assert!(t.contains("\nCR0=80050033 "), "{t}");
        assert!(t.ends_with("EFER=0000000000000d01\n"), "{t}");
    }
}
