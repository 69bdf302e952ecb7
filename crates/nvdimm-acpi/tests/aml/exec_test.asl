/*
 * Executed by tests/aml_exec.rs with ACPICA's acpiexec against a 256-slot NVDIMM SSDT.
 * acpiexec has no VMM behind the doorbell, so the mailbox keeps what the AML wrote: RLEN
 * (offset 0) reads back as HDLE = the handle, and a _DSM on handle h returns the request
 * bytes [4, h): REVS, FUNC, then FARG. That echo lets us check argument placement, field
 * ladder sizes (zero extension) and the result types with 64-bit integers (DSDT rev 2).
 * PMVT returns 0 on success, else the number of the failed check.
 */
DefinitionBlock ("", "SSDT", 2, "PMVM", "AMLTEST", 1)
{
    External (\_SB.NVDR._FIT, MethodObj)
    External (\_SB.NVDR._DSM, MethodObj)
    External (\_SB.NVDR.NV00._DSM, MethodObj)
    External (\_SB.NVDR.NV07._DSM, MethodObj)
    External (\_SB.NVDR.NV0B._DSM, MethodObj)
    External (\_SB.NVDR.NVFF._DSM, MethodObj)

    Method (FILL, 2, Serialized)  // Buffer(Arg0) filled with byte Arg1 (by doubling)
    {
        Local0 = Buffer (One) {}
        Local0 [Zero] = Arg1
        While (SizeOf (Local0) < Arg0)
        {
            Concatenate (Local0, Local0, Local0)
        }
        Return (Mid (Local0, Zero, Arg0))
    }

    Method (PK1, 1, Serialized)  // Package (1) {Arg0}
    {
        Local0 = Package (1) {Zero}
        Local0 [Zero] = Arg0
        Return (Local0)
    }

    Method (PMVT, 0, Serialized)
    {
        Local7 = ToUUID ("4309AC30-0D11-11E4-9191-0800200C9A66")

        /* 1: a 4-byte result (function 0 bitmap) is a Buffer, not an Integer */
        Local0 = \_SB.NVDR.NV07._DSM (Local7, One, Zero, Package (0) {})
        If (ObjectType (Local0) != 3) { Return (0x11) }
        If (SizeOf (Local0) != 4) { Return (0x12) }
        If (Local0 != Buffer (4) {1, 0, 0, 0}) { Return (0x13) }

        /* 2: an exactly-8-byte result is still a Buffer (QEMU's corner case) */
        Local0 = \_SB.NVDR.NV0B._DSM (Local7, One, 4, Package (1) {Buffer (Zero) {}})
        If (ObjectType (Local0) != 3) { Return (0x21) }
        If (Local0 != Buffer (8) {1, 0, 0, 0, 4, 0, 0, 0}) { Return (0x22) }

        /* 3: wrong UUID: no exit, Buffer{0} for function 0, Buffer{1} otherwise */
        Local1 = ToUUID ("9002C334-ACF3-4C0E-9642-A235F0D53BC6")
        Local0 = \_SB.NVDR.NV00._DSM (Local1, One, Zero, Package (0) {})
        If (Local0 != Buffer (1) {0}) { Return (0x31) }
        Local0 = \_SB.NVDR.NV00._DSM (Local1, One, 5, Package (0) {})
        If (Local0 != Buffer (1) {1}) { Return (0x32) }
        Local0 = \_SB.NVDR._DSM (Local7, One, Zero, Package (0) {})
        If (Local0 != Buffer (1) {0}) { Return (0x33) }

        /* 4: 600 bytes of 0xFF go to FA01; then 8 bytes go to FA00 (64 bytes, zero-extended)
              and leave the rest of FA01 alone */
        Local0 = \_SB.NVDR.NVFF._DSM (Local7, One, 6, PK1 (FILL (600, 0xFF)))
        If (Mid (Local0, 4, 4) != Buffer (4) {6, 0, 0, 0}) { Return (0x41) }
        If (Mid (Local0, 8, 244) != FILL (244, 0xFF)) { Return (0x42) }
        Local0 = \_SB.NVDR.NVFF._DSM (Local7, One, 5,
            Package (1) {Buffer (8) {0x00, 0x01, 0, 0, 0x10, 0, 0, 0}})
        If (SizeOf (Local0) != 252) { Return (0x43) }
        If (Mid (Local0, 4, 4) != Buffer (4) {5, 0, 0, 0}) { Return (0x44) }
        If (Mid (Local0, 8, 8) != Buffer (8) {0x00, 0x01, 0, 0, 0x10, 0, 0, 0}) { Return (0x45) }
        If (Mid (Local0, 16, 56) != FILL (56, 0)) { Return (0x46) }
        If (Mid (Local0, 72, 180) != FILL (180, 0xFF)) { Return (0x47) }

        /* 5: a maximal label write (8 + 128 KiB) fits FA04 */
        Local1 = FILL (0x20008, 0x5A)
        Local0 = \_SB.NVDR.NVFF._DSM (Local7, One, 6, PK1 (Local1))
        If (Mid (Local0, 8, 244) != FILL (244, 0x5A)) { Return (0x51) }

        /* 6: anything larger goes to FA05 (truncated to the mailbox) without an AML error */
        Local0 = \_SB.NVDR.NVFF._DSM (Local7, One, 6, PK1 (FILL (0x21100, 0x3C)))
        If (Mid (Local0, 8, 244) != FILL (244, 0x3C)) { Return (0x61) }

        /* 7: an Integer argument (bare or in a Package) lands as 8 LE bytes at FARG */
        Local0 = \_SB.NVDR.NVFF._DSM (Local7, One, 1, 0x12345678)
        If (Mid (Local0, 8, 12) != Buffer (12) {0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0, 0, 0, 0, 0}) { Return (0x71) }

        /* 8: _FIT returns a Buffer (here empty: the echoed "status" is REVS = 1, an error) */
        Local0 = \_SB.NVDR._FIT ()
        If (ObjectType (Local0) != 3) { Return (0x81) }
        If (SizeOf (Local0) != 0) { Return (0x82) }

        Return (Zero)
    }
}
