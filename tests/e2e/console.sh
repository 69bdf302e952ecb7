#!/bin/bash
# E2E: the stdio console's Ctrl-a escapes, as QEMU's -nographic has them (runs inside L1).
# QEMU and pmvm, same guest, same keys typed into stdin (a FIFO): once the guest runs,
# `Ctrl-a c` opens the human monitor, `info status` answers "VM status: running", `info name`
# prints the -name, `info cpus` lists 2 thread ids that are live threads of the VMM (checked
# in /proc while it runs), `info registers -a` shows RIP of both vCPUs and the VM runs on,
# `Ctrl-a c` goes back to the guest, `Ctrl-a h` lists the escapes,
# and the monitor's `quit` ends the VMM with status 0 while the guest still runs.
. "${E2E_LIB:-$HIB_OPT/e2e/lib.sh}"

work=$(mktemp -d)
printf '%s\n' 'echo "CON-GUEST-UP"' 'sleep 120' >"$work/l2.sh"
mk-l2-initrd "$work/l2.sh" "$work/initrd.img" || { fail "mk-l2-initrd"; summary; exit 1; }

for vmm in qemu pmvm; do
	bin=$(vmm_bin "$vmm")
	# QEMU: without -nodefaults, -nographic adds a NIC and VGA whose ROMs L1 does not have;
	# -serial mon:stdio is what -nographic would give (the serial/monitor mux on stdio).
	args=(-nographic)
	[[ $vmm == qemu ]] && args=(-nodefaults -display none -serial mon:stdio -L "$HIB_OPT/share/qemu")
	out=$work/$vmm.out
	rm -f "$work/fifo" "$out" "$work/$vmm.tids"
	mkfifo "$work/fifo"
	timeout 300 "$bin" -machine pc,accel=kvm -cpu host -m 512M -smp 2 -name "con-$vmm" \
		-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/initrd.img" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1" "${args[@]}" \
		<"$work/fifo" >"$out" 2>"$work/$vmm.err" &
	vpid=$!
	(
		exec 3>"$work/fifo"
		for _ in $(seq 1 1200); do grep -q CON-GUEST-UP "$out" 2>/dev/null && break; sleep 0.1; done
		printf '\001c' >&3; sleep 0.5
		printf 'info status\r' >&3; sleep 0.5
		printf 'info name\r' >&3; sleep 0.5
		printf 'info cpus\r' >&3; sleep 1
		# `timeout` runs the VMM as its child: the thread ids must be threads of that child.
		child=$(cat "/proc/$vpid/task/$vpid/children" 2>/dev/null | awk '{ print $1 }')
		for t in $(tr -d '\r' <"$out" | sed -n 's/.*CPU #[0-9]*: thread_id=\([0-9]*\).*/\1/p'); do
			if [ -n "$child" ] && [ -d "/proc/$child/task/$t" ]; then
				echo "TID-OK $t $(cat "/proc/$child/task/$t/comm")"
			else
				echo "TID-BAD $t (VMM pid ${child:-?})"
			fi
		done >"$work/$vmm.tids"
		printf 'info registers -a\r' >&3; sleep 1
		printf 'info status\r' >&3; sleep 0.5
		printf '\001c' >&3; sleep 0.3
		printf '\001h' >&3; sleep 0.3
		printf '\001c' >&3; sleep 0.3
		printf 'quit\r' >&3
		sleep 5
	) &
	feeder=$!
	wait "$vpid"
	rc=$?
	kill "$feeder" 2>/dev/null
	wait "$feeder" 2>/dev/null
	{ tr -d '\r' <"$out"; echo; } >"$out.txt"
	echo "--- $vmm output (tail):"; tail -n 16 "$out.txt" | sed 's/^/  /'
	[[ $rc -eq 0 ]] && pass "$vmm: monitor quit ends it with status 0" ||
		{ fail "$vmm: exit status $rc"; tail -n 5 "$work/$vmm.err" | sed 's/^/    /'; }
	grep -q 'CON-GUEST-UP' "$out.txt" && pass "$vmm: the guest ran" || fail "$vmm: the guest never ran"
	grep -q '(qemu) ' "$out.txt" && pass "$vmm: Ctrl-a c shows the (qemu) prompt" || fail "$vmm: no (qemu) prompt"
	grep -q 'VM status: running' "$out.txt" && pass "$vmm: info status: VM status: running" || fail "$vmm: no 'VM status: running'"
	grep -qx "con-$vmm" "$out.txt" && pass "$vmm: info name prints the -name" || fail "$vmm: info name did not print con-$vmm"
	if [[ $(grep -c '^TID-OK' "$work/$vmm.tids" 2>/dev/null) -eq 2 ]] && ! grep -q TID-BAD "$work/$vmm.tids"; then
		pass "$vmm: info cpus gives the VMM's 2 vCPU threads ($(cut -d' ' -f3- "$work/$vmm.tids" | tr '\n' ' '))"
	else
		fail "$vmm: info cpus did not give 2 live threads of the VMM"
		sed 's/^/    /' "$work/$vmm.tids" 2>/dev/null
	fi
	[[ $(grep -c '^RIP=' "$out.txt") -eq 2 && $(grep -c '^CPU#[01]$' "$out.txt") -eq 2 ]] &&
		pass "$vmm: info registers -a shows both vCPUs ($(grep -m1 '^RIP=' "$out.txt" | cut -c1-20)...)" ||
		fail "$vmm: info registers -a: $(grep -c '^RIP=' "$out.txt") RIP lines"
	[[ $(grep -c 'VM status: running' "$out.txt") -ge 2 ]] && pass "$vmm: still running after the register dump" ||
		fail "$vmm: not running after info registers"
	grep -q 'C-a c *switch between console and monitor' "$out.txt" && pass "$vmm: Ctrl-a h lists the escapes" ||
		fail "$vmm: Ctrl-a h printed no help"
	grep -q 'L2-RC=' "$out.txt" && fail "$vmm: the guest finished before quit" || pass "$vmm: quit ended a running guest"
done
summary
