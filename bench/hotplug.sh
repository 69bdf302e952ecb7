#!/bin/bash
# bench/hotplug.sh [N]: NVDIMM hotplug latency, QEMU vs pmvm, in ONE L1 host (tests/e2e/qmp/bench-l1.sh).
# N rounds (default 3), VMM order alternating. Each sample: an L2 guest (512M, -smp 2, PVH,
# one cold unlabelled NVDIMM) waits in a 5 ms poll loop; the real `qemu.qmp` client in L1
# object-adds a 1G memory-backend-file and device_adds an nvdimm; the clock (L1 monotonic, in
# the client) starts at the device_add reply and stops when the guest's console line for
# region1 / /dev/pmem1 appears in the serial file (re-read every 1 ms).
# Prints a markdown table of medians and the pmvm/QEMU ratio; raw BENCH lines go to stderr.
# pmvm is built and staged like tests/e2e/run.sh (E2E_NO_BUILD, PMVM_BIN apply).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"
export BENCH_N=${1:-${BENCH_N:-3}}

out=$(mktemp)
trap 'rm -f "$out"' EXIT
bench_l1 "$repo/tests/e2e/qmp/bench-l1.sh" 300 "$out"
rc=$?

awk -v n="$BENCH_N" -v when="$(date -u +%Y-%m-%dT%H:%MZ)" "$BENCH_AWK"'
/^BENCH / {
	kv()
	v = f["vmm"]; runs[v]++
	if (f["ok"] == 1) { ok[v]++; add(v "r", f["region"] * 1000); add(v "p", f["pmem"] * 1000); add(v "g", f["guest_region_to_pmem"] * 1000) }
}
END {
	printf "NVDIMM hotplug latency: %d rounds, in one L1 (QEMU TCG host, nested KVM); %s\n\n", n, when
	print "| VMM | ok/runs | median device_add reply -> region1 (ms) | median reply -> /dev/pmem1 (ms) | median region1 -> pmem1, guest uptime (ms, 10 ms resolution) |"
	print "|---|---|---|---|---|"
	split("qemu pmvm", vs, " ")
	for (b = 1; b <= 2; b++) {
		v = vs[b]; r[b] = med(v "r"); p[b] = med(v "p"); g = med(v "g")
		printf "| %s | %d/%d | %s | %s | %s |\n", v, ok[v], runs[v], fmt(r[b], 0), fmt(p[b], 0), fmt(g, 0)
	}
	printf "| pmvm/QEMU | | %s | %s | |\n", ratio(r[2], r[1]), ratio(p[2], p[1])
}' "$out"
[[ $rc -eq 0 && -n $STAGE_PMVM ]]
