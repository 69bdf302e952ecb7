#!/bin/bash
# bench/boot.sh [N]: boot-time and VMM-memory benchmark, QEMU vs pmvm, in ONE L1 host.
# Each of N rounds (default 3) boots {bzImage, vmlinux(PVH)} x {qemu, pmvm} with 512M and
# -smp 1 (order alternates between rounds). Prints a markdown table to stdout: median time
# from VMM process start to its exit after guest poweroff, median VMM-own RSS (guest RAM and
# NVDIMM backends excluded; peak of samples while the guest runs), and pmvm/QEMU ratios.
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
	HIB_TIMEOUT=${HIB_TIMEOUT:-$((300 + BENCH_N * 240))} \
	"$repo/harness/hib" run "$here/boot-l1.sh" >"$out"
rc=$?
grep '^BENCH ' "$out" >&2
[[ $rc -eq 0 ]] || { echo "bench: L1 run failed (rc $rc)" >&2; cat "$out" >&2; }

awk -v n="$BENCH_N" -v host="$(uname -r)" -v when="$(date -u +%Y-%m-%dT%H:%MZ)" '
function med(key,   m, i, j, t, a) {
	m = 0
	for (i = 1; i <= cnt[key]; i++) a[++m] = val[key, i]
	if (m == 0) return "nan"
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
/^BENCH / {
	delete f
	for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
	k = f["vmm"] SUBSEP f["kernel"]
	runs[k]++
	if (f["ok"] == 1) {
		ok[k]++
		cnt[k "t"]++; val[k "t", cnt[k "t"]] = f["time"]
		cnt[k "m"]++; val[k "m", cnt[k "m"]] = f["rss_kb"] / 1024
		cnt[k "u"]++; val[k "u", cnt[k "u"]] = f["guest_uptime"]
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
		printf "| %s | %s | %d/%d | %s | %s | %s |\n", ks[a], vs[b], ok[k], runs[k],
			(t[b] == "nan" ? "n/a" : sprintf("%.2f", t[b])), (u == "nan" ? "n/a" : sprintf("%.2f", u)),
			(m[b] == "nan" ? "n/a" : sprintf("%.1f", m[b]))
		if (b == 2) ratio[ks[a]] = sprintf("| %s | %s | %s |", ks[a],
			(t[1] == "nan" || t[2] == "nan") ? "n/a" : sprintf("%.2f", t[2] / t[1]),
			(m[1] == "nan" || m[2] == "nan" || m[1] == 0) ? "n/a" : sprintf("%.2f", m[2] / m[1]))
	}
	print ""
	print "| kernel | time pmvm/QEMU | VMM memory pmvm/QEMU |"
	print "|---|---|---|"
	print ratio["bzImage"]; print ratio["vmlinux"]
}' "$out"
rm -f "$out"
[[ $rc -eq 0 && -n $STAGE_PMVM ]]
