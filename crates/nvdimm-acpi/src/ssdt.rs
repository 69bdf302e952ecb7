//! The `\_SB.NVDR` (ACPI0012) AML and its SSDT.
//!
//! Design (see `docs/acpi-nvdimm.md`): one `Serialized` worker `NCAL` does every mailbox
//! transaction (so `_DSM` and `_FIT` never interleave), stores the argument into the smallest
//! input field of a ladder, rings the doorbell, reads the smallest output field that holds RLEN
//! and returns `Mid(field, 4, RLEN - 4)`. `Mid` of a Buffer is always a Buffer, so results of
//! <= 8 bytes stay Buffers even with 64-bit integers (revision-2 DSDT).

use acpi_tables::Aml;
use acpi_tables::AmlSink;
use acpi_tables::aml::{
    Add, Arg, BufferData, Concat, DeRefOf, Device, Else, Equal, Field, FieldAccessType, FieldEntry,
    FieldLockRule, FieldUpdateRule, GreaterThan, If, Index, LessEqual, LessThan, Local, Method,
    MethodCall, Mid, Name, NotEqual, ONE, ObjectType, OpRegion, OpRegionSpace, Path, Return, Scope,
    SizeOf, Store, Subtract, ToInteger, Uuid, While, ZERO,
};

use crate::header::{OemIds, build_table};
use crate::mailbox::{
    FARG_LADDER, MAILBOX_SIZE, ODAT_LADDER, OFF_FARG, PRIVATE_HANDLE, UUID_INTEL, UUID_PRIVATE,
    UUID_ROOT,
};

/// OEM table ID of the NVDIMM SSDT (as QEMU's).
pub const SSDT_OEM_TABLE_ID: [u8; 8] = *b"NVDIMM  ";
/// Revision of the NVDIMM SSDT.
pub const SSDT_REVISION: u8 = 2;
/// Maximum number of NVDIMM slots (child devices NV00..NVFF), QEMU's `ACPI_MAX_RAM_SLOTS`.
pub const MAX_SLOTS: u32 = 256;

/// Why the NVDIMM SSDT cannot be built with the given VMM parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsdtError {
    /// More slots than child device names NV00..NVFF.
    #[error(
        "{slots} NVDIMM slots requested but at most {max} are supported; lower -m slots=",
        max = MAX_SLOTS
    )]
    TooManySlots {
        /// Requested slot count.
        slots: u32,
    },
    /// The mailbox address is not 4 KiB aligned.
    #[error("NVDIMM mailbox address {gpa:#x} is not 4 KiB aligned; place it on a page boundary")]
    MailboxUnaligned {
        /// Requested mailbox GPA.
        gpa: u32,
    },
    /// The mailbox would cross 4 GiB.
    #[error(
        "NVDIMM mailbox at {gpa:#x} (+{size:#x} bytes) crosses 4 GiB; place it lower",
        size = MAILBOX_SIZE
    )]
    MailboxAbove4G {
        /// Requested mailbox GPA.
        gpa: u32,
    },
}

/// Already-encoded AML, so parts can be built separately and then composed.
struct Raw(Vec<u8>);

impl Aml for Raw {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        sink.vec(&self.0);
    }
}

fn enc(a: &dyn Aml) -> Raw {
    let mut v = Vec::new();
    a.to_aml_bytes(&mut v);
    Raw(v)
}

/// `NVxx` for slot `slot` (< 256): two upper-case hex digits, like QEMU's `NV%02X`.
pub fn child_name(slot: u32) -> Option<String> {
    (slot < MAX_SLOTS).then(|| format!("NV{slot:02X}"))
}

/// A 4-character name from the ladder tables / literals in this file (all tested).
fn p(name: &str) -> Path {
    Path::new(name)
}

fn field(region: &str, access: FieldAccessType, entries: Vec<FieldEntry>) -> Raw {
    enc(&Field::new(
        p(region),
        access,
        FieldLockRule::NoLock,
        FieldUpdateRule::Preserve,
        entries,
    ))
}

fn name4(s: &str) -> [u8; 4] {
    let mut n = [0u8; 4];
    n.copy_from_slice(&s.as_bytes()[..4]);
    n
}

/// Region + field declarations of the mailbox and the doorbell.
fn mailbox_decls(mailbox_gpa: u32, doorbell_port: u16) -> Vec<Raw> {
    let size = MAILBOX_SIZE as u32;
    let mut out = vec![
        enc(&OpRegion::new(
            p("NRAM"),
            OpRegionSpace::SystemMemory,
            &mailbox_gpa,
            &size,
        )),
        field(
            "NRAM",
            FieldAccessType::DWord,
            vec![
                FieldEntry::Named(*b"HDLE", 32),
                FieldEntry::Named(*b"REVS", 32),
                FieldEntry::Named(*b"FUNC", 32),
            ],
        ),
        field(
            "NRAM",
            FieldAccessType::DWord,
            vec![FieldEntry::Named(*b"RLEN", 32)],
        ),
    ];
    for (name, bytes) in FARG_LADDER {
        out.push(field(
            "NRAM",
            FieldAccessType::QWord,
            vec![
                FieldEntry::Reserved(OFF_FARG * 8),
                FieldEntry::Named(name4(name), bytes * 8),
            ],
        ));
    }
    for (name, bytes) in ODAT_LADDER {
        out.push(field(
            "NRAM",
            FieldAccessType::QWord,
            vec![FieldEntry::Named(name4(name), bytes * 8)],
        ));
    }
    let len = u8::try_from(crate::mailbox::DOORBELL_LEN).unwrap_or(4);
    out.push(enc(&OpRegion::new(
        p("NPIO"),
        OpRegionSpace::SystemIO,
        &doorbell_port,
        &len,
    )));
    out.push(field(
        "NPIO",
        FieldAccessType::DWord,
        vec![FieldEntry::Named(*b"NTFI", 32)],
    ));
    out
}

/// `If (size <= rung0) { Store(src, F0) } Else { If (size <= rung1) ... Else { Store(src, Fn) } }`
/// where `store(name)` builds the statement for one rung.
fn ladder(size: &dyn Aml, rungs: &[(&str, usize)], store: &dyn Fn(&str) -> Raw) -> Raw {
    match rungs {
        [] => Raw(Vec::new()),
        [(last, _)] => store(last),
        [(name, bytes), rest @ ..] => {
            let then = store(name);
            let other = ladder(size, rest, store);
            let mut v = enc(&If::new(&LessEqual::new(size, bytes), vec![&then])).0;
            Else::new(vec![&other]).to_aml_bytes(&mut v);
            Raw(v)
        }
    }
}

/// The common worker `NCAL(uuid, revision, function, arg3, handle)`.
fn ncal(mailbox_gpa: u32) -> Raw {
    const OBJ_INTEGER: u8 = 1;
    const OBJ_BUFFER: u8 = 3;
    const OBJ_PACKAGE: u8 = 4;
    let (a0, a1, a2, a3, a4) = (Arg(0), Arg(1), Arg(2), Arg(3), Arg(4));
    let (l0, l1, l2, l3) = (Local(0), Local(1), Local(2), Local(3));

    // Local0 = expected UUID for the handle.
    let uuid = enc(&If::new(
        &Equal::new(&a4, &ZERO),
        vec![&Store::new(&l0, &Uuid::new(UUID_ROOT))],
    ));
    let uuid_else = enc(&Else::new(vec![
        &If::new(
            &Equal::new(&a4, &PRIVATE_HANDLE),
            vec![&Store::new(&l0, &Uuid::new(UUID_PRIVATE))],
        ),
        &Else::new(vec![&Store::new(&l0, &Uuid::new(UUID_INTEL))]),
    ]));
    // Wrong UUID: "nothing supported" for function 0, else status 1, without a VM exit.
    let wrong_uuid = enc(&If::new(
        &NotEqual::new(&a0, &l0),
        vec![
            &If::new(
                &Equal::new(&a2, &ZERO),
                vec![&Return::new(&BufferData::new(vec![0]))],
            ),
            &Return::new(&BufferData::new(vec![1])),
        ],
    ));
    // Local1 = the single element of a one-element Package, or Arg3 itself.
    let arg = enc(&If::new(
        &Equal::new(&ObjectType::new(&a3), &OBJ_PACKAGE),
        vec![&If::new(
            &Equal::new(&SizeOf::new(&a3), &ONE),
            vec![&Store::new(
                &l1,
                &DeRefOf::new(&Index::new(&ZERO, &a3, &ZERO)),
            )],
        )],
    ));
    let in_ladder = ladder(&l2, &FARG_LADDER, &|name| enc(&Store::new(&p(name), &l1)));
    let store_buf = enc(&If::new(
        &Equal::new(&ObjectType::new(&l1), &OBJ_BUFFER),
        vec![
            &Store::new(&l2, &SizeOf::new(&l1)),
            &If::new(&GreaterThan::new(&l2, &ZERO), vec![&in_ladder]),
        ],
    ));
    let store_int = enc(&If::new(
        &Equal::new(&ObjectType::new(&l1), &OBJ_INTEGER),
        vec![&Store::new(&p(FARG_LADDER[0].0), &l1)],
    ));
    let out_ladder = ladder(&l2, &ODAT_LADDER, &|name| enc(&Store::new(&l3, &p(name))));
    let size = MAILBOX_SIZE as u32;
    let four = 4u8;
    enc(&Method::new(
        p("NCAL"),
        5,
        true,
        vec![
            &uuid,
            &uuid_else,
            &wrong_uuid,
            &Store::new(&p("HDLE"), &a4),
            &Store::new(&p("REVS"), &a1),
            &Store::new(&p("FUNC"), &a2),
            &Store::new(&l1, &a3),
            &arg,
            &store_int,
            &store_buf,
            // Doorbell: the VMM handles the request synchronously during this OUT.
            &Store::new(&p("NTFI"), &mailbox_gpa),
            &Store::new(&l2, &p("RLEN")),
            &If::new(
                &LessThan::new(&l2, &four),
                vec![&Return::new(&BufferData::new(vec![]))],
            ),
            &If::new(
                &GreaterThan::new(&l2, &size),
                vec![&Return::new(&BufferData::new(vec![]))],
            ),
            &out_ladder,
            &Return::new(&Mid::new(
                &l3,
                &four,
                &Subtract::new(&ZERO, &l2, &four),
                &ZERO,
            )),
        ],
    ))
}

/// `_FIT`: read the FIT in chunks through the private Read-FIT function, restarting from
/// offset 0 when the VMM reports status 0x100 (FIT changed by a hotplug meanwhile).
fn fit_method() -> Raw {
    let (l0, l1, l2, l3, l4) = (Local(0), Local(1), Local(2), Local(3), Local(4));
    let four = 4u8;
    let changed = crate::mailbox::status::FIT_CHANGED;
    let private_uuid = Uuid::new(UUID_PRIVATE);
    let call = MethodCall::new(
        p("\\_SB_.NVDR.NCAL"),
        vec![&private_uuid, &ONE, &ONE, &l1, &PRIVATE_HANDLE],
    );
    let restart = enc(&If::new(
        &Equal::new(&l4, &changed),
        vec![
            &Store::new(&l0, &BufferData::new(vec![])),
            &Store::new(&l1, &ZERO),
        ],
    ));
    let append = enc(&Else::new(vec![
        &If::new(&NotEqual::new(&l4, &ZERO), vec![&Return::new(&l0)]),
        &If::new(&Equal::new(&l3, &four), vec![&Return::new(&l0)]),
        &Subtract::new(&l3, &l3, &four),
        &Concat::new(&l0, &l0, &Mid::new(&l2, &four, &l3, &ZERO)),
        &Add::new(&l1, &l1, &l3),
    ]));
    enc(&Method::new(
        p("_FIT"),
        0,
        true,
        vec![
            &Store::new(&l0, &BufferData::new(vec![])),
            &Store::new(&l1, &ZERO),
            &While::new(
                &ONE,
                vec![
                    &Store::new(&l2, &call),
                    &Store::new(&l3, &SizeOf::new(&l2)),
                    &If::new(&LessThan::new(&l3, &four), vec![&Return::new(&l0)]),
                    &Store::new(
                        &l4,
                        &ToInteger::new(&ZERO, &Mid::new(&l2, &ZERO, &four, &ZERO)),
                    ),
                    &restart,
                    &append,
                ],
            ),
            // Not reached (the loop only exits by Return); keeps "all paths return a Buffer".
            &Return::new(&l0),
        ],
    ))
}

/// `_DSM` forwarding to `NCAL` with a fixed handle.
fn dsm_method(handle: u32) -> Raw {
    let call = MethodCall::new(
        p("\\_SB_.NVDR.NCAL"),
        vec![&Arg(0), &Arg(1), &Arg(2), &Arg(3), &handle],
    );
    enc(&Method::new(p("_DSM"), 4, false, vec![&Return::new(&call)]))
}

/// The AML of `Scope(\_SB) { Device(NVDR) { ... } }` for `slots` slots (NV00..), a mailbox at
/// `mailbox_gpa` and a doorbell at I/O port `doorbell_port`. Append it to any definition
/// block (the SSDT from [`build_nvdimm_ssdt`] or the DSDT).
pub fn nvdr_aml(slots: u32, mailbox_gpa: u32, doorbell_port: u16) -> Result<Vec<u8>, SsdtError> {
    check(slots, mailbox_gpa)?;
    let mut children: Vec<Raw> = Vec::new();
    children.push(enc(&Name::new(p("_HID"), &"ACPI0012")));
    children.extend(mailbox_decls(mailbox_gpa, doorbell_port));
    children.push(ncal(mailbox_gpa));
    children.push(dsm_method(crate::mailbox::ROOT_HANDLE));
    children.push(fit_method());
    for slot in 0..slots {
        // check() bounded slots to MAX_SLOTS, so the name always exists and has 4 characters.
        let Some(name) = child_name(slot) else { break };
        let handle = slot + 1;
        let adr = enc(&Name::new(p("_ADR"), &handle));
        let dsm = dsm_method(handle);
        children.push(enc(&Device::new(p(&name), vec![&adr, &dsm])));
    }
    let refs: Vec<&dyn Aml> = children.iter().map(|c| c as &dyn Aml).collect();
    let dev = Device::new(p("NVDR"), refs);
    Ok(enc(&Scope::new(p("\\_SB_"), vec![&dev])).0)
}

fn check(slots: u32, mailbox_gpa: u32) -> Result<(), SsdtError> {
    if slots > MAX_SLOTS {
        return Err(SsdtError::TooManySlots { slots });
    }
    if !mailbox_gpa.is_multiple_of(0x1000) {
        return Err(SsdtError::MailboxUnaligned { gpa: mailbox_gpa });
    }
    if u64::from(mailbox_gpa) + MAILBOX_SIZE as u64 > 1 << 32 {
        return Err(SsdtError::MailboxAbove4G { gpa: mailbox_gpa });
    }
    Ok(())
}

/// The complete NVDIMM SSDT (signature `SSDT`, revision [`SSDT_REVISION`], table ID
/// [`SSDT_OEM_TABLE_ID`], OEM/creator from `oem`) containing [`nvdr_aml`].
pub fn build_nvdimm_ssdt(
    slots: u32,
    mailbox_gpa: u32,
    doorbell_port: u16,
    oem: &OemIds,
) -> Result<Vec<u8>, SsdtError> {
    let body = nvdr_aml(slots, mailbox_gpa, doorbell_port)?;
    Ok(build_table(
        *b"SSDT",
        SSDT_REVISION,
        oem,
        SSDT_OEM_TABLE_ID,
        &body,
    ))
}
