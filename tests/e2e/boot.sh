#!/bin/bash
# hib: HIB_TIMEOUT=900
# E2E boot test (runs inside the harness's L1): boot an L2 guest with QEMU and with pmvm,
# each with the PVH vmlinux and with the bzImage, and check what the guest sees.
# Settings: BOOT_VMMS (default "qemu pmvm"), BOOT_KERNELS (default "vmlinux bzImage"),
# BOOT_SMP (2), BOOT_MEM (512M).
set -uo pipefail
. "${E2E_LIB:-${HIB_OPT:-/opt}/e2e/lib.sh}"

VMMS=${BOOT_VMMS:-qemu pmvm}
KERNELS=${BOOT_KERNELS:-vmlinux bzImage}
SMP=${BOOT_SMP:-2}
MEM=${BOOT_MEM:-512M}
MEM_KB=$(($(size_to_bytes "$MEM") >> 10))
# MemTotal is RAM minus what the kernel reserves (kernel image, memmap, firmware areas):
# accept 80 % .. 100 % of -m.
MEM_MIN_KB=$((MEM_KB * 80 / 100))

work=$(mktemp -d)
cat >"$work/l2.sh" <<'EOF'
n=$(grep -c '^processor' /proc/cpuinfo)
mem=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
clwb=no
grep -qw clwb /proc/cpuinfo && clwb=yes
read -r up _ </proc/uptime
echo "BOOT cpus=$n memtotal_kb=$mem clwb=$clwb uptime=$up"
echo "@@BOOT-OK@@"
EOF
mk-l2-initrd "$work/l2.sh" "$work/initrd.img" || { fail "mk-l2-initrd"; summary; exit; }

declare -A R_CPUS R_MEM R_CLWB R_OK
for kernel in $KERNELS; do
	for vmm in $VMMS; do
		id="$vmm/$kernel"
		echo "=== $id"
		if [[ $vmm == pmvm && ! -x $(vmm_bin pmvm) ]]; then
			fail "$id: pmvm binary missing at $(vmm_bin pmvm) (tests/e2e/run.sh stages target/release/pmvm as bin/pmvm)"
			continue
		fi
		boot_l2 "$vmm" -machine pc,accel=kvm -cpu host -m "$MEM" -smp "$SMP" \
			-kernel "$HIB_OPT/l2/$kernel" -initrd "$work/initrd.img" \
			-append "console=ttyS0 quiet loglevel=3 panic=-1" -nographic -no-reboot
		rc=$?
		if [[ $L2_HUNG -eq 1 ]]; then
			fail "$id: HANG (no exit within ${L2_TIMEOUT:-180}s, twice)"
			continue
		fi
		grep -E '^(BOOT|@@)' "$L2_CONSOLE" | tr -d '\r' | sed 's/^/    /'
		[[ $rc -eq 0 ]] && pass "$id: exit status 0" || fail "$id: exit status $rc (want 0)"
		if console_has '@@BOOT-OK@@'; then pass "$id: marker @@BOOT-OK@@ seen"; else
			fail "$id: marker @@BOOT-OK@@ not seen; console tail:"
			tail -n 15 "$L2_CONSOLE" | sed 's/^/    /'
			continue
		fi
		cpus=$(l2_value cpus) mem=$(l2_value memtotal_kb) clwb=$(l2_value clwb)
		R_CPUS[$id]=$cpus R_MEM[$id]=$mem R_CLWB[$id]=$clwb R_OK[$id]=1
		[[ $cpus == "$SMP" ]] && pass "$id: cpus=$cpus" || fail "$id: cpus=$cpus (want $SMP)"
		if [[ $mem =~ ^[0-9]+$ ]] && ((mem >= MEM_MIN_KB && mem <= MEM_KB)); then
			pass "$id: MemTotal=${mem}kB within [$MEM_MIN_KB, $MEM_KB]"
		else
			fail "$id: MemTotal=${mem}kB not within [$MEM_MIN_KB, $MEM_KB]"
		fi
		[[ $clwb == yes ]] && pass "$id: clwb in CPU flags" || fail "$id: clwb missing from CPU flags"
		echo "    time=${L2_TIME}s vmm_rss=${L2_RSS_KB}KiB"
	done
	# pmvm must show the guest what QEMU shows it.
	q="qemu/$kernel" p="pmvm/$kernel"
	if [[ -n ${R_OK[$q]:-} && -n ${R_OK[$p]:-} ]]; then
		[[ ${R_CPUS[$p]} == "${R_CPUS[$q]}" && ${R_CLWB[$p]} == "${R_CLWB[$q]}" ]] &&
			pass "$kernel: pmvm cpus/clwb match QEMU" ||
			fail "$kernel: pmvm cpus=${R_CPUS[$p]} clwb=${R_CLWB[$p]} vs QEMU cpus=${R_CPUS[$q]} clwb=${R_CLWB[$q]}"
		d=$((R_MEM[$p] - R_MEM[$q]))
		((d < 0)) && d=$((-d))
		# same RAM, same kernel: allow 2 % of -m for differences in firmware reservations
		if ((d <= MEM_KB * 2 / 100)); then
			pass "$kernel: pmvm MemTotal ${R_MEM[$p]}kB ~ QEMU ${R_MEM[$q]}kB"
		else
			fail "$kernel: pmvm MemTotal ${R_MEM[$p]}kB vs QEMU ${R_MEM[$q]}kB (differ by ${d}kB)"
		fi
	elif [[ " $VMMS " == *" pmvm "* && " $VMMS " == *" qemu "* ]]; then
		fail "$kernel: cannot compare pmvm with QEMU (a boot failed above)"
	fi
done
rm -rf "$work"
summary
