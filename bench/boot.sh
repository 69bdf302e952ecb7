#!/bin/bash
# bench/boot.sh [N]: boot-time and VMM-memory benchmark, QEMU vs pmvm, in ONE L1 host.
# Each of N rounds (default 3) boots {bzImage, vmlinux(PVH)} x {qemu, pmvm} with 512M and
# -smp 1 (order alternates between rounds). Prints a markdown table to stdout: median time
# from VMM process start to its exit after guest poweroff, median VMM-own RSS (guest RAM and
# NVDIMM backends excluded; peak of samples while the guest runs), and pmvm/QEMU ratios.
# pmvm is built and staged like tests/e2e/run.sh (E2E_NO_BUILD, PMVM_BIN apply).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
export BENCH_N=${1:-${BENCH_N:-3}}

out=$(mktemp)
trap 'rm -f "$out"' EXIT
bench_l1 "$here/boot-l1.sh" 240 "$out"
rc=$?

awk -v n="$BENCH_N" -v when="$(date -u +%Y-%m-%dT%H:%MZ)" "$BENCH_AWK"'
/^BENCH / {
	kv()
	k = f["vmm"] SUBSEP f["kernel"]
	runs[k]++
	if (f["ok"] == 1) {
		ok[k]++
		add(k "t", f["time"]); add(k "m", f["rss_kb"] / 1024); add(k "u", f["guest_uptime"])
	}
}
END {
	printf "Boot benchmark: %d rounds, 512M, -smp 1, in one L1 (QEMU TCG host, nested KVM); %s\n\n", n, when
	print "| kernel | VMM | ok/runs | median time to exit (s) | median guest uptime at script (s) | median VMM RSS (MiB) |"
	print "|---|---|---|---|---|---|"
	split("bzImage vmlinux", ks, " "); split("qemu pmvm", vs, " ")
	for (a = 1; a <= 2; a++) for (b = 1; b <= 2; b++) {
		k = vs[b] SUBSEP ks[a]
		t[b] = med(k "t"); m[b] = med(k "m"); u = med(k "u")
		printf "| %s | %s | %d/%d | %s | %s | %s |\n", ks[a], vs[b], ok[k], runs[k], fmt(t[b], 2), fmt(u, 2), fmt(m[b], 1)
		if (b == 2) line[ks[a]] = sprintf("| %s | %s | %s |", ks[a], ratio(t[2], t[1]), ratio(m[2], m[1]))
	}
	print ""
	print "| kernel | time pmvm/QEMU | VMM memory pmvm/QEMU |"
	print "|---|---|---|"
	print line["bzImage"]; print line["vmlinux"]
}' "$out"
[[ $rc -eq 0 && -n $STAGE_PMVM ]]
