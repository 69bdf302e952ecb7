#!/bin/bash
# hib: HIB_TIMEOUT=900
# RAM DIMMs: one pc-dimm cold-plugged and one hot-added through the human monitor
# (object_add memory-backend-ram + device_add pc-dimm), under QEMU (reference) and pmvm: the
# guest sees both as memory blocks, onlines them, and MemTotal grows by their size; both VMMs
# report them in `info memory-devices` (asked while the guest still runs; then `quit`).
. "${E2E_LIB:-$HIB_OPT/e2e/lib.sh}"

work=$(mktemp -d)
cat >"$work/l2.sh" <<'X'
#!/bin/sh
blocks() { ls -d /sys/devices/system/memory/memory* | wc -l; }
echo "DIMM-BOOT-BLOCKS=$(blocks)"
echo "DIMM-WAITING"
n0=$(blocks); i=0
while [ "$(blocks)" -eq "$n0" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
echo "DIMM-HOT-BLOCKS=$(blocks)"
for b in /sys/devices/system/memory/memory*; do [ "$(cat $b/state)" = offline ] && echo online >$b/state; done
echo "DIMM-OFFLINE-LEFT=$(cat /sys/devices/system/memory/memory*/state | grep -c offline)"
echo "DIMM-MEMTOTAL=$(awk '/MemTotal/ { print $2 }' /proc/meminfo)"
sleep 60 # the host asks `info memory-devices` and then quits: no race with our poweroff
X
mk-l2-initrd "$work/l2.sh" "$work/initrd.cpio" || { fail "mk-l2-initrd"; summary; exit 1; }

for vmm in qemu pmvm; do
	bin=$(vmm_bin "$vmm") extra=()
	[[ $vmm == qemu ]] && extra=(-L "$HIB_OPT/share/qemu" -nodefaults -display none)
	con=$work/$vmm.console mon=$work/$vmm.monitor
	rm -f "$work/fifo" "$con"
	mkfifo "$work/fifo"
	(
		exec 3>"$work/fifo"
		for _ in $(seq 1 1200); do grep -q DIMM-WAITING "$con" 2>/dev/null && break; sleep 0.1; done
		echo "object_add memory-backend-ram,id=ram2,size=256M" >&3
		echo "device_add pc-dimm,id=dimm2,memdev=ram2" >&3
		for _ in $(seq 1 600); do grep -q DIMM-MEMTOTAL "$con" 2>/dev/null && break; sleep 0.1; done
		echo "info memory-devices" >&3
		sleep 1
		echo "quit" >&3
		sleep 1
	) &
	feeder=$!
	timeout 300 "$bin" -machine pc,accel=kvm -cpu host -m 512M,slots=4,maxmem=4G -smp 2 \
		-object memory-backend-ram,id=ram1,size=256M -device pc-dimm,id=dimm1,memdev=ram1 \
		-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/initrd.cpio" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1" -serial "file:$con" -monitor stdio \
		-no-reboot "${extra[@]}" <"$work/fifo" >"$mon" 2>"$work/$vmm.stderr"
	rc=$?
	kill "$feeder" 2>/dev/null
	wait "$feeder" 2>/dev/null
	grep DIMM- "$con" | sed "s/^/  $vmm: /"
	[[ $rc -eq 0 ]] && pass "$vmm: exit status 0" || { fail "$vmm: exit status $rc"; tail -3 "$work/$vmm.stderr"; }
	boot=$(grep -o 'DIMM-BOOT-BLOCKS=[0-9]*' "$con" | cut -d= -f2)
	hot=$(grep -o 'DIMM-HOT-BLOCKS=[0-9]*' "$con" | cut -d= -f2)
	total=$(grep -o 'DIMM-MEMTOTAL=[0-9]*' "$con" | cut -d= -f2)
	# 512 MiB of RAM = 4 blocks of 128 MiB, the cold 256 MiB DIMM adds 2, the hot one 2 more.
	[[ $boot == 6 ]] && pass "$vmm: cold-plugged DIMM visible at boot (6 memory blocks)" || fail "$vmm: boot blocks '$boot'"
	[[ $hot == 8 ]] && pass "$vmm: hot-added DIMM visible without reboot (8 blocks)" || fail "$vmm: blocks after hotplug '$hot'"
	check "$vmm: every block onlined" grep -q 'DIMM-OFFLINE-LEFT=0' "$con"
	# MemTotal after onlining: ~1 GiB minus the kernel's reservations.
	[[ -n $total && $total -gt 900000 ]] && pass "$vmm: MemTotal ${total} kB after onlining" || fail "$vmm: MemTotal '$total'"
	eval "TOTAL_$vmm=${total:-0}"
	check "$vmm: info memory-devices lists the hot DIMM" grep -q 'dimm2' "$mon"
done
# The guest gets at least as much usable memory from the DIMMs under pmvm as under QEMU (measured:
# QEMU 926160 kB, pmvm 992596 kB: the same 1 GiB, QEMU's guest keeps ~64 MiB more for itself).
[[ ${TOTAL_pmvm:-0} -ge $((TOTAL_qemu * 99 / 100)) ]] && pass "pmvm MemTotal ${TOTAL_pmvm} kB >= QEMU ${TOTAL_qemu} kB" ||
	fail "pmvm MemTotal ${TOTAL_pmvm} kB below QEMU's ${TOTAL_qemu} kB"
rm -rf "$work"
summary
