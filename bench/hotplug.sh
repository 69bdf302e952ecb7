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
. "$repo/tests/e2e/stage.sh"
export BENCH_N=${1:-${BENCH_N:-3}}

"$repo/harness/hib" setup >&2 || exit 1
extra=$(mktemp -d)
trap 'rm -rf "$extra"' EXIT
stage_extra_dir "$extra"
out=$(mktemp)
HIB_EXTRA_DIR=$extra HIB_PASS_ENV="BENCH_N" HIB_SMP=${HIB_SMP:-2} \
	HIB_TIMEOUT=${HIB_TIMEOUT:-$((300 + BENCH_N * 300))} \
	"$repo/harness/hib" run "$repo/tests/e2e/qmp/bench-l1.sh" >"$out"
rc=$?
grep -E '^(BENCH |vmm=)' "$out" >&2
[[ $rc -eq 0 ]] || { echo "bench: L1 run failed (rc $rc)" >&2; cat "$out" >&2; }

awk -v n="$BENCH_N" -v when="$(date -u +%Y-%m-%dT%H:%MZ)" '
function med(key,   m, i, j, t, a) {
	m = 0
	for (i = 1; i <= cnt[key]; i++) a[++m] = val[key, i]
	if (m == 0) return "nan"
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
function add(k, v) { cnt[k]++; val[k, cnt[k]] = v }
/^BENCH / {
	delete f
	for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
	v = f["vmm"]; runs[v]++
	if (f["ok"] == 1) { ok[v]++; add(v "r", f["region"] * 1000); add(v "p", f["pmem"] * 1000); add(v "g", f["guest_region_to_pmem"] * 1000) }
}
function fmt(x) { return x == "nan" ? "n/a" : sprintf("%.0f", x) }
function ratio(a, b) { return (a == "nan" || b == "nan" || b == 0) ? "n/a" : sprintf("%.2f", a / b) }
END {
	printf "NVDIMM hotplug latency: %d rounds, in one L1 (QEMU TCG host, nested KVM); %s\n\n", n, when
	print "| VMM | ok/runs | median device_add reply -> region1 (ms) | median reply -> /dev/pmem1 (ms) | median region1 -> pmem1, guest uptime (ms, 10 ms resolution) |"
	print "|---|---|---|---|---|"
	split("qemu pmvm", vs, " ")
	for (b = 1; b <= 2; b++) {
		v = vs[b]; r[b] = med(v "r"); p[b] = med(v "p"); g = med(v "g")
		printf "| %s | %d/%d | %s | %s | %s |\n", v, ok[v], runs[v], fmt(r[b]), fmt(p[b]), fmt(g)
	}
	printf "| pmvm/QEMU | | %s | %s | |\n", ratio(r[2], r[1]), ratio(p[2], p[1])
}' "$out"
rm -f "$out"
[[ $rc -eq 0 && -n $STAGE_PMVM ]]
