#!/bin/bash
# hib: HIB_TIMEOUT=900
# NVDIMM hotplug through the human monitor, the seed's lines as written (object_add + device_add),
# under QEMU (reference) and pmvm in the same L1: the guest sees the new region without a reboot
# and creates an fsdax namespace on it; `info memory-devices` lists it as hotplugged; hotplug past
# -m slots fails with an error naming slots while the guest keeps running. Prints the time from
# the device_add command to the new region in the guest (console marker), per VMM.
. "${E2E_LIB:-$HIB_OPT/e2e/lib.sh}"

work=$(mktemp -d)
cat >"$work/l2.sh" <<'X'
#!/bin/sh
echo "HP-WAITING"
i=0; while [ ! -e /sys/bus/nd/devices/region1 ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
[ -e /sys/bus/nd/devices/region1 ] && echo "HP-SEEN" || echo "HP-TIMEOUT"
ndctl disable-region region1 >/dev/null && ndctl init-labels -f nmem1 >/dev/null && ndctl enable-region region1 >/dev/null
ndctl create-namespace -r region1 -m fsdax >/dev/null && [ -b /dev/pmem1 ] && echo "HP-NAMESPACE-OK"
echo "HP-REGION1-SIZE=$(cat /sys/bus/nd/devices/region1/size)"
X
mk-l2-initrd "$work/l2.sh" "$work/initrd.img" || { fail "mk-l2-initrd"; summary; exit 1; }

# run_hotplug VMM SLOTS EXPECT_OK: boots with one NVDIMM, hot-adds a second through -monitor stdio.
run_hotplug() {
	local vmm=$1 slots=$2 tag=$1-slots$2 bin extra=()
	bin=$(vmm_bin "$vmm")
	[[ $vmm == qemu ]] && extra=(-L "$HIB_OPT/share/qemu" -nodefaults -display none)
	rm -f "$work"/nv*.img "$work/fifo" "$work/$tag".*
	mkfifo "$work/fifo"
	local console=$work/$tag.console mon=$work/$tag.monitor
	(
		exec 3>"$work/fifo"
		for _ in $(seq 1 1200); do grep -q HP-WAITING "$console" 2>/dev/null && break; sleep 0.1; done
		echo "object_add memory-backend-file,id=mem3,share=on,mem-path=$work/nv3.img,size=1G" >&3
		sleep 0.5
		echo "$EPOCHREALTIME" >"$work/$tag.t0"
		echo "device_add nvdimm,id=nvdimm2,memdev=mem3,label-size=128K" >&3
		for _ in $(seq 1 1200); do grep -qE "HP-SEEN|HP-TIMEOUT" "$console" 2>/dev/null && break; sleep 0.05; done
		echo "$EPOCHREALTIME" >"$work/$tag.t1"
		if [[ $vmm == pmvm ]]; then
			# The sandbox: every thread of the running pmvm (after a hot plug) and its filter mode.
			local p t
			p=$(pidof pmvm | cut -d' ' -f1)
			for t in /proc/"$p"/task/*; do
				echo "$(cat "$t/comm") $(awk '/^Seccomp:/ {print $2}' "$t/status")"
			done >"$work/$tag.seccomp"
		fi
		echo "info memory-devices" >&3
		echo "info status" >&3
		for _ in $(seq 1 600); do grep -q "L2-RC=" "$console" 2>/dev/null && break; sleep 0.1; done
		sleep 1
	) &
	local feeder=$!
	timeout 300 "$bin" -machine pc,accel=kvm,nvdimm=on -cpu host -m "512M,slots=$slots,maxmem=8G" -smp 2 \
		-object "memory-backend-file,id=mem1,share=on,mem-path=$work/nv0.img,size=1G" \
		-device nvdimm,id=nv1,memdev=mem1,label-size=128K \
		-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/initrd.img" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1" -serial "file:$console" -monitor stdio \
		-no-reboot "${extra[@]}" <"$work/fifo" >"$mon" 2>"$work/$tag.stderr"
	local rc=$?
	kill "$feeder" 2>/dev/null
	wait "$feeder" 2>/dev/null
	echo "--- $tag monitor:"; sed 's/^/  /' "$mon" | tr -d '\r' | grep -v '^  *$' | head -40
	echo "--- $tag console (tail):"; tail -n 8 "$console" | sed 's/^/  /'
	[[ $rc -eq 0 ]] && pass "$tag: exit status 0" || { fail "$tag: exit status $rc"; tail -5 "$work/$tag.stderr"; }
	HP_RC=$rc
}

for vmm in qemu pmvm; do
	run_hotplug "$vmm" 4
	tag=$vmm-slots4
	if [[ $vmm == pmvm ]]; then
		echo "--- $tag threads and their seccomp mode:"; sed 's/^/  /' "$work/$tag.seccomp"
		n=$(wc -l <"$work/$tag.seccomp")
		if [[ $n -ge 5 ]] && ! grep -qv ' 2$' "$work/$tag.seccomp" && grep -q '^vcpu1 ' "$work/$tag.seccomp"; then
			pass "$tag: sandbox on by default: all $n threads of the running pmvm show Seccomp: 2"
		else
			fail "$tag: sandbox: threads not all filtered (Seccomp: 2)"
		fi
	fi
	if grep -q HP-SEEN "$work/$tag.console"; then
		pass "$tag: hot-added NVDIMM region appears in the guest without a reboot"
		lat=$(awk -v a="$(cat "$work/$tag.t0")" -v b="$(cat "$work/$tag.t1")" 'BEGIN { printf "%.2f", b - a }')
		echo "HOTPLUG-LATENCY $vmm ${lat}s"
		eval "LAT_$vmm=$lat"
	else
		fail "$tag: hot-added region never appeared"
	fi
	if [[ $vmm == pmvm ]]; then
		check "$tag: fsdax namespace created on the hot-added NVDIMM" grep -q HP-NAMESPACE-OK "$work/$tag.console"
	elif grep -q HP-NAMESPACE-OK "$work/$tag.console"; then
		echo "INFO: $tag: fsdax namespace on the hot-added NVDIMM works under QEMU too"
	else
		# QEMU packs the new device right after the first one, off a 16 MiB boundary; pmvm
		# starts every device on a 128 MiB boundary. Reference behaviour, not a failure.
		echo "INFO: $tag: QEMU cannot create fsdax on its hot-added NVDIMM: $(grep -m1 misaligned "$work/$tag.console")"
	fi
	size=$(grep -o 'HP-REGION1-SIZE=[0-9]*' "$work/$tag.console" | cut -d= -f2)
	[[ $size == $(((1 << 30) - (128 << 10))) ]] && pass "$tag: region1 size $size" || fail "$tag: region1 size '$size'"
	check "$tag: info memory-devices lists nvdimm2" grep -q 'nvdimm2' "$work/$tag.monitor"
	check "$tag: nvdimm2 reported hotplugged" grep -q 'hotplugged: true' "$work/$tag.monitor"
done
[[ -n ${LAT_qemu:-} && -n ${LAT_pmvm:-} ]] &&
	echo "HOTPLUG-RATIO pmvm/qemu $(awk -v a="$LAT_pmvm" -v b="$LAT_qemu" 'BEGIN { printf "%.2f", a / b }')"

# Past the slot limit (slots=1: room for the cold NVDIMM only): refused, the guest keeps running.
run_hotplug pmvm 1
tag=pmvm-slots1
grep -qi 'slots' "$work/$tag.monitor" && pass "$tag: device_add past slots refused naming slots" ||
	fail "$tag: no slots error in the monitor output"
check "$tag: guest kept running (status running after the refusal)" grep -q 'VM status: running' "$work/$tag.monitor"
check "$tag: guest finished its script" grep -q 'L2-RC=' "$work/$tag.console"
rm -rf "$work"
summary
