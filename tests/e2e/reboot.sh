#!/bin/bash
# hib: HIB_TIMEOUT=900
# Guest reboot: with -no-reboot pmvm ends with status 0, through the ACPI reset register
# (Linux's default, reboot=a) and through the i8042 keyboard controller (reboot=k); without
# QEMU runs the same cases as the reference.
. "${E2E_LIB:-$HIB_OPT/e2e/lib.sh}"

work=$(mktemp -d)
cat >"$work/l2.sh" <<'X'
#!/bin/sh
echo "RB-BOOTED"
reboot -f
X
mk-l2-initrd "$work/l2.sh" "$work/initrd.cpio" || { fail "mk-l2-initrd"; summary; exit 1; }

for vmm in qemu pmvm; do
	for method in a k; do
		boot_l2 "$vmm" -machine pc,accel=kvm -cpu host -m 512M -smp 1 -kernel "$HIB_OPT/l2/vmlinux" \
			-initrd "$work/initrd.cpio" -append "console=ttyS0 quiet loglevel=3 panic=-1 reboot=$method" \
			-nographic -no-reboot
		if [[ $L2_RC -eq 0 ]] && console_has RB-BOOTED; then
			pass "$vmm: reboot=$method with -no-reboot: guest rebooted, VMM exited 0 (${L2_TIME}s)"
		else
			fail "$vmm: reboot=$method with -no-reboot: rc=$L2_RC hung=$L2_HUNG"
			tail -5 "$L2_STDERR"
		fi
	done
done

# Not tested yet: reboot WITHOUT -no-reboot. pmvm rebuilds the VM on a reset (a tiny guest
# reboots hundreds of times a second on the host's KVM), but a Linux guest in L1 was seen not to
# come back after "reboot: machine restart" (session 1 note); the case belongs here once fixed.
rm -rf "$work"
summary
