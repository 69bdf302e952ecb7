#!/bin/bash
# tests/e2e/run.sh [TEST...]: host-side driver of the end-to-end tests.
# Builds pmvm (cargo build --release -p pmvm), stages it as bin/pmvm together with
# tests/e2e/*.sh into an HIB_EXTRA_DIR, and runs each test inside L1 via `harness/hib run`.
# TEST is a name (boot) or a path (tests/e2e/boot.sh); default: every tests/e2e/*.sh except
# lib.sh, stage.sh and run.sh. A test may ask for harness settings on a header line such as
#   # hib: HIB_NVDIMMS=1G,1G HIB_TIMEOUT=900
# Exit status: 0 only if every test ran and passed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/stage.sh"

tests=()
if [[ $# -gt 0 ]]; then
	for t in "$@"; do
		[[ -f $t ]] || t=$here/${t%.sh}.sh
		tests+=("$t")
	done
else
	for t in "$here"/*.sh; do
		case "$(basename "$t")" in lib.sh | stage.sh | run.sh) ;; *) tests+=("$t") ;; esac
	done
fi

# The stage hooks build some large images only for the tests that need them.
E2E_TESTS=$(for t in "${tests[@]}"; do basename "$t" .sh; done | tr '\n' ' ')
"$repo/harness/hib" setup || { echo "e2e: harness setup failed"; echo "e2e: 0 passed, ${#tests[@]} failed"; exit 1; }
extra=$(mktemp -d)
trap 'rm -rf "$extra"' EXIT
stage_extra_dir "$extra"

# One L1 vCPU unless asked otherwise: L1 froze or died a few times in ~15 two-vCPU runs (MTTCG
# races between TCG vCPUs are the suspect); one vCPU made no test slower than ~40% (harness.md).
export HIB_SMP=${HIB_SMP:-1}
# Test knobs (BOOT_*, L2_*) set on the host are passed into L1.
HIB_PASS_ENV="${HIB_PASS_ENV:-} $(compgen -e | grep -E '^(BOOT|L2)_' | tr '\n' ' ')"
export HIB_PASS_ENV

npass=0 nfail=0 results=() faillogs=()
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	if [[ ! -f $t ]]; then
		results+=("$name: MISSING ($t)")
		nfail=$((nfail + 1))
		continue
	fi
	settings=$(sed -n 's/^# hib: //p' "$t" | head -n 1)
	log=$(mktemp)
	echo "=== e2e $name ${settings:+($settings)}"
	t0=$EPOCHREALTIME
	# shellcheck disable=SC2086
	env $settings HIB_EXTRA_DIR="$extra" "$repo/harness/hib" run "$t" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	summ=$(grep '^SUMMARY ' "$log" | tail -n 1)
	case $rc in
	0) what="PASSED" ;;
	124) what="HANG/TIMEOUT (rc 124)" ;;
	125) what="L1 DIED (rc 125)" ;;
	126 | 127) what="COULD NOT RUN (rc $rc)" ;;
	*) what="FAILED (rc $rc)" ;;
	esac
	results+=("$name: $what ${summ:-no SUMMARY line} ${secs}s")
	if [[ $rc -eq 0 ]]; then
		npass=$((npass + 1))
		rm -f "$log"
	else
		nfail=$((nfail + 1))
		faillogs+=("$name:$log")
	fi
done

# A CI log may keep only its tail: repeat what each failed test said last, next to the verdict.
for f in "${faillogs[@]}"; do
	echo
	echo "=== e2e ${f%%:*} failed; its last lines:"
	grep -v '^PASS: ' "${f#*:}" | tail -n 40 | sed 's/^/  /'
	rm -f "${f#*:}"
done
echo
echo "=== e2e results"
printf '  %s\n' "${results[@]}"
[[ -n $STAGE_PMVM ]] || echo "  note: no pmvm binary was staged (see 'stage:' lines above)"
echo "e2e: $npass passed, $nfail failed"
[[ $nfail -eq 0 ]]
