#!/bin/bash
# hib: HIB_TIMEOUT=900
# Guest reboot: with -no-reboot pmvm ends with status 0, through the ACPI reset register
# (Linux's default, reboot=a) and through the i8042 keyboard controller (reboot=k); without
# -no-reboot the guest boots again (a second boot is seen on the console), and `quit` on the
# human monitor then ends pmvm with status 0. QEMU runs the -no-reboot cases as the reference.
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

# Without -no-reboot: the guest comes back; quit through the monitor once it has booted twice.
con=$work/console
mkfifo "$work/fifo"
(
	exec 3>"$work/fifo"
	for _ in $(seq 1 1800); do [[ $(grep -c RB-BOOTED "$con" 2>/dev/null) -ge 2 ]] && break; sleep 0.1; done
	echo quit >&3
	sleep 2
) &
feeder=$!
timeout 300 "$(vmm_bin pmvm)" -machine pc,accel=kvm -cpu host -m 512M -smp 1 -kernel "$HIB_OPT/l2/vmlinux" \
	-initrd "$work/initrd.cpio" -append "console=ttyS0 quiet loglevel=3 panic=-1" \
	-serial "file:$con" -monitor stdio <"$work/fifo" >"$work/monitor" 2>"$work/stderr"
rc=$?
kill "$feeder" 2>/dev/null
wait "$feeder" 2>/dev/null
boots=$(grep -c RB-BOOTED "$con")
[[ $boots -ge 2 ]] && pass "pmvm: without -no-reboot the guest boots again ($boots boots seen)" ||
	{ fail "pmvm: guest did not come back after reboot ($boots boots)"; tail -5 "$work/stderr"; }
[[ $rc -eq 0 ]] && pass "pmvm: monitor quit ends pmvm with status 0" || fail "pmvm: exit status $rc after quit"
rm -rf "$work"
summary
