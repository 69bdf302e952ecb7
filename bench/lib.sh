# shellcheck shell=bash
# Shared by bench/*.sh (sourced): run one L1 script in the harness with pmvm staged, and the awk
# helpers that turn its "BENCH k=v ..." lines into medians and ratios.
#
#   bench_l1 SCRIPT SECS_PER_ROUND OUT [ENV...]   harness setup + stage pmvm + `hib run SCRIPT`
#       in ONE L1 (HIB_SMP default 2), stdout to OUT, BENCH lines (and, if the run failed, the
#       whole output) to stderr. Returns the run's status. BENCH_N must be set; the extra ENV
#       names are passed into L1 next to BENCH_N.
#   BENCH_AWK   awk functions: add(key, v), med(key) ("nan" if none), fmt(v, decimals),
#       ratio(p, q) ("n/a" unless both known), and kv() which fills f[] from a BENCH line.
bench_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$bench_repo/tests/e2e/stage.sh"

bench_l1() {
	local script=$1 per_round=$2 out=$3 extra rc
	shift 3
	"$bench_repo/harness/hib" setup >&2 || return 1
	extra=$(mktemp -d)
	stage_extra_dir "$extra"
	HIB_EXTRA_DIR=$extra HIB_PASS_ENV="BENCH_N $*" HIB_SMP=${HIB_SMP:-2} \
		HIB_TIMEOUT=${HIB_TIMEOUT:-$((300 + BENCH_N * per_round))} \
		"$bench_repo/harness/hib" run "$script" >"$out"
	rc=$?
	rm -rf "$extra"
	grep -E '^(BENCH |vmm=)' "$out" >&2
	[[ $rc -eq 0 ]] || { echo "bench: L1 run failed (rc $rc)" >&2; cat "$out" >&2; }
	return "$rc"
}

# shellcheck disable=SC2016
BENCH_AWK='
function add(key, v) { cnt[key]++; val[key, cnt[key]] = v + 0 }  # numeric: "10.0" < "9.5" as strings
function med(key,   m, i, j, t, a) {
	m = cnt[key]
	for (i = 1; i <= m; i++) a[i] = val[key, i]
	if (m == 0) return "nan"
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
function fmt(v, d) { return v == "nan" ? "n/a" : sprintf("%." d "f", v) }
function ratio(p, q) { return (p == "nan" || q == "nan" || q == 0) ? "n/a" : sprintf("%.2f", p / q) }
function kv(   i, p) { delete f; for (i = 2; i <= NF; i++) { p = index($i, "="); if (p) f[substr($i, 1, p - 1)] = substr($i, p + 1) } }
'
