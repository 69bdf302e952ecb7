/* A tiny PVH guest for pmvm's fast boot test: prints a marker on COM1, asks the NVDIMM _DSM
 * mailbox for DIMM 1's function bitmap (function 0), prints it, and powers off through the
 * ACPI sleep-control register. Entered in 32-bit protected mode, paging off (PVH). */
	.code32
	.section .text
	.globl _start
_start:
	mov	$0x80000, %esp	/* PVH gives no stack */
	mov	$msg, %esi
	call	puts
	/* _DSM: handle 1 (slot 0), revision 1, function 0 */
	movl	$1, 0xfe000000
	movl	$1, 0xfe000004
	movl	$0, 0xfe000008
	mov	$0x0a18, %dx
	mov	$0xfe000000, %eax
	outl	%eax, %dx
	/* reply: RLEN at +0, bitmap at +4 */
	mov	$dsm, %esi
	call	puts
	mov	0xfe000004, %ebx
	mov	%ebx, %eax
	shr	$4, %eax
	call	hexdigit
	mov	%ebx, %eax
	call	hexdigit
	mov	$nl, %esi
	call	puts
	/* poweroff: SLP_TYP=5, SLP_EN */
	mov	$0x600, %dx
	mov	$0x34, %al
	outb	%al, %dx
1:	hlt
	jmp	1b

puts:	mov	$0x3f8, %dx
2:	lodsb
	test	%al, %al
	jz	3f
	outb	%al, %dx
	jmp	2b
3:	ret

hexdigit:
	and	$0xf, %eax
	mov	$hex, %esi
	add	%eax, %esi
	mov	(%esi), %al
	mov	$0x3f8, %dx
	outb	%al, %dx
	ret

	.section .rodata
msg:	.asciz "PMVM-TINY-BOOT\n"
dsm:	.asciz "PMVM-TINY-DSM0="
nl:	.asciz "\n"
hex:	.ascii "0123456789abcdef"

	.section .note.Xen, "a", @note
	.align 4
	.long 4
	.long 4
	.long 18	/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.align 4
	.long _start
