/* A 1 KiB disk image for the firmware boot test (crates/pmvm/tests/firmware_boot.rs): a boot
 * sector that the firmware loads at 0x7c00 from a virtio disk, prints a marker through the
 * BIOS video service (SeaBIOS sends it to the serial console), reads LBA 1 through the BIOS
 * disk service (INT 13h AH=42h, so through SeaBIOS's virtio-blk driver again) and prints the
 * marker stored there, then powers off through pmvm's ACPI sleep-control register.
 * Assembled at test time: gcc -nostdlib -Wl,-Ttext=0x7c00 -Wl,--oformat=binary. */
	.code16
	.text
	.globl	_start
_start:
	cli
	xor	%ax, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$0x7c00, %sp
	sti
	mov	$msg, %si
	call	puts
	/* read LBA 1 to 0000:8000; DL still holds the boot drive the BIOS gave us */
	mov	$dap, %si
	mov	$0x42, %ah
	int	$0x13
	jc	fail
	mov	$0x8000, %si
	call	puts
	/* SeaBIOS's serial console writes lazily: an empty line pushes the marker out */
	mov	$crlf, %si
	call	puts
poweroff:
	/* SLP_TYP=5, SLP_EN */
	mov	$0x600, %dx
	mov	$0x34, %al
	outb	%al, %dx
1:	hlt
	jmp	1b
fail:
	mov	$errmsg, %si
	call	puts
	jmp	poweroff
puts:
	lodsb
	test	%al, %al
	jz	2f
	mov	$0x0e, %ah
	mov	$0x0007, %bx
	int	$0x10
	jmp	puts
2:	ret
	.p2align 2
dap:	.byte	0x10, 0
	.word	1		/* sectors */
	.word	0x8000, 0	/* offset, segment */
	.quad	1		/* LBA */
msg:	.asciz	"PMVM-MBR-BOOT\r\n"
crlf:	.asciz	"\r\n"
errmsg:	.asciz	"PMVM-MBR-READ-FAILED\r\n"
	.org	510
	.byte	0x55, 0xaa
	.asciz	"PMVM-MBR-SECTOR1\r\n"
	.org	1024
