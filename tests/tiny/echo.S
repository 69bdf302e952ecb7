/* A tiny PVH guest for pmvm's VNC tests (crates/pmvm/tests/vnc.rs, vnc_check.py): prints a
 * marker on COM1, then echoes whatever the UART receives (CR as CRLF). It polls the line status
 * register with a pause loop between reads, so it makes few VM exits. */
	.code32
	.section .text
	.globl _start
_start:
	mov	$0x80000, %esp
	mov	$msg, %esi
	call	puts
poll:	mov	$0x3fd, %dx
	inb	%dx, %al
	test	$1, %al
	jnz	got
	mov	$0x20000, %ecx
1:	pause
	dec	%ecx
	jnz	1b
	jmp	poll
got:	mov	$0x3f8, %dx
	inb	%dx, %al
	cmp	$0x0d, %al
	jne	2f
	outb	%al, %dx
	mov	$0x0a, %al
2:	outb	%al, %dx
	jmp	poll
puts:	mov	$0x3f8, %dx
3:	lodsb
	test	%al, %al
	jz	4f
	outb	%al, %dx
	jmp	3b
4:	ret
	.section .rodata
msg:	.asciz "PMVM-VNC-ECHO ready\r\n"
	.section .note.Xen, "a", @note
	.align 4
	.long 4
	.long 4
	.long 18
	.asciz "Xen"
	.align 4
	.long _start
