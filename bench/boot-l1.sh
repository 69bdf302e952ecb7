#!/bin/bash
# Runs inside L1 for bench/boot.sh: BENCH_N rounds of {bzImage, vmlinux} x {qemu, pmvm},
# 512M, -smp 1; one "BENCH ..." line per boot. Order alternates between rounds.
set -uo pipefail
. "${E2E_LIB:-${HIB_OPT:-/opt}/e2e/lib.sh}"
N=${BENCH_N:-3}
work=$(mktemp -d)
printf '%s\n' 'read -r up _ </proc/uptime' 'echo "BENCH-GUEST guest_up=$up"' 'echo "@@BOOT-OK@@"' >"$work/l2.sh"
mk-l2-initrd "$work/l2.sh" "$work/initrd.img" || exit 1
for ((i = 1; i <= N; i++)); do
	if ((i % 2)); then order="qemu pmvm"; else order="pmvm qemu"; fi
	for kernel in bzImage vmlinux; do
		for vmm in $order; do
			if [[ ! -x $(vmm_bin "$vmm") ]]; then
				echo "BENCH vmm=$vmm kernel=$kernel run=$i rc=127 ok=0 time=nan rss_kb=nan guest_uptime=nan"
				continue
			fi
			boot_l2 "$vmm" -machine pc,accel=kvm -cpu host -m 512M -smp 1 \
				-kernel "$HIB_OPT/l2/$kernel" -initrd "$work/initrd.img" \
				-append "console=ttyS0 quiet loglevel=3 panic=-1" -nographic -no-reboot >/dev/null
			ok=0
			[[ $L2_RC -eq 0 ]] && console_has '@@BOOT-OK@@' && ok=1
			up=$(l2_value guest_up)
			echo "BENCH vmm=$vmm kernel=$kernel run=$i rc=$L2_RC ok=$ok time=$L2_TIME rss_kb=$L2_RSS_KB guest_uptime=${up:-nan} hung=$L2_HUNG"
		done
	done
done
