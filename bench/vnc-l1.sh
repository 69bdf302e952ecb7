#!/bin/bash
# Runs inside L1 for bench/vnc.sh: BENCH_N rounds of pmvm boots (vmlinux, 512M, -smp 1,
# serial on stdio with the kernel's full log, so every line also goes through the VNC tee) in
# three modes: no VNC; -vnc unix: with no viewer; -vnc unix: with an idle viewer connected from
# the start (vncprobe watch: an incremental update request always pending). One "BENCH ..."
# line per boot. Order rotates between rounds.
set -uo pipefail
. "${E2E_LIB:-${HIB_OPT:-/opt}/e2e/lib.sh}"
N=${BENCH_N:-3}
probe=$HIB_OPT/bin/vncprobe
work=$(mktemp -d)
printf '%s\n' 'read -r up _ </proc/uptime' 'echo "BENCH-GUEST guest_up=$up"' 'echo "@@BOOT-OK@@"' >"$work/l2.sh"
mk-l2-initrd "$work/l2.sh" "$work/initrd.img" || exit 1
modes=(none vnc viewer)
for ((i = 1; i <= N; i++)); do
	for ((j = 0; j < 3; j++)); do
		mode=${modes[$(((i + j) % 3))]}
		sock=$work/vnc-$i.sock
		extra=()
		[[ $mode != none ]] && extra=(-vnc "unix:$sock")
		viewer=
		if [[ $mode == viewer ]]; then
			# Connect as soon as the socket is there; stay an idle viewer for the whole boot.
			(for _ in $(seq 1 400); do [[ -S $sock ]] && exec "$probe" "unix:$sock" watch=120; sleep 0.01; done) \
				>"$work/viewer-$i.out" 2>&1 &
			viewer=$!
		fi
		boot_l2 pmvm -machine pc,accel=kvm -cpu host -m 512M -smp 1 \
			-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/initrd.img" \
			-append "console=ttyS0 loglevel=7 panic=-1" -nographic -no-reboot "${extra[@]}" >/dev/null
		[[ -n $viewer ]] && { kill "$viewer" 2>/dev/null; wait "$viewer" 2>/dev/null; }
		ok=0
		[[ $L2_RC -eq 0 ]] && console_has '@@BOOT-OK@@' && ok=1
		up=$(l2_value guest_up)
		bytes=$(wc -c <"$L2_CONSOLE")
		echo "BENCH mode=$mode run=$i rc=$L2_RC ok=$ok time=$L2_TIME rss_kb=$L2_RSS_KB guest_uptime=${up:-nan} serial_bytes=$bytes hung=$L2_HUNG"
	done
done
