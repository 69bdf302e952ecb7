#!/bin/bash
# bench/vnc.sh [N]: does -vnc slow a boot down? pmvm boots in ONE L1 host, N rounds (default
# 3) of three modes: no VNC, -vnc with no viewer, -vnc with an idle viewer connected during the
# whole boot (bench/vnc-l1.sh). The kernel logs at loglevel 7 on the serial port, which the
# VNC text console renders too. Prints a markdown table: median time from VMM start to exit
# after the guest powers off, guest uptime when its script ran, VMM-own RSS.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
export BENCH_N=${1:-${BENCH_N:-3}}

out=$(mktemp)
trap 'rm -f "$out"' EXIT
bench_l1 "$here/vnc-l1.sh" 120 "$out"
rc=$?

awk -v n="$BENCH_N" -v when="$(date -u +%Y-%m-%dT%H:%MZ)" "$BENCH_AWK"'
/^BENCH / {
	kv()
	k = f["mode"]
	runs[k]++
	if (f["ok"] == 1) {
		ok[k]++
		add(k "t", f["time"]); add(k "m", f["rss_kb"] / 1024); add(k "u", f["guest_uptime"]); add(k "b", f["serial_bytes"])
	}
}
END {
	printf "VNC boot benchmark (pmvm): %d rounds, vmlinux, 512M, -smp 1, loglevel=7 on ttyS0, in one L1 (QEMU TCG host, nested KVM); %s\n\n", n, when
	print "| mode | ok/runs | median time to exit (s) | median guest uptime at script (s) | median VMM RSS (MiB) | serial bytes |"
	print "|---|---|---|---|---|---|"
	split("none vnc viewer", ms, " ")
	desc["none"] = "no -vnc"; desc["vnc"] = "-vnc unix:, no viewer"; desc["viewer"] = "-vnc unix:, idle viewer connected"
	for (a = 1; a <= 3; a++) {
		k = ms[a]
		printf "| %s | %d/%d | %s | %s | %s | %s |\n", desc[k], ok[k], runs[k], fmt(med(k "t"), 2), fmt(med(k "u"), 2), fmt(med(k "m"), 1), fmt(med(k "b"), 0)
	}
}' "$out"
exit "$rc"
