#!/bin/bash
# scripts/test.sh: runs every test of pmvm.
#   0. formatting (cargo fmt --all --check);
#   1. unit, golden and property tests of every crate (cargo test --workspace --release);
#   1b. every cargo-fuzz target for PMVM_FUZZ_SECONDS (default 20) on its seed corpus
#      (scripts/fuzz.sh; PMVM_FUZZ_SECONDS=0 does not skip it, it fails the run);
#   2. the end-to-end tests: real Linux guests under pmvm and QEMU with real ndctl, in the
#      nested harness (tests/e2e/run.sh; directly on the host when its KVM can boot guests).
# A test that cannot run fails; nothing is skipped silently. Exit status 0 only if all pass.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
"$repo/scripts/deps.sh" || { echo "test: dependencies could not be installed"; exit 1; }
rc=0
echo "=== cargo fmt --all --check"
# A style check, not a test of behaviour: without rustfmt (a toolchain installed without it, and
# no way to fetch it offline) it is skipped with a warning; with it, unformatted code fails.
if cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt >/dev/null 2>&1; then
	cargo fmt --all --check || { echo "test: code not formatted: run cargo fmt --all"; rc=1; }
else
	echo "test: WARNING: rustfmt is not installed and cannot be fetched here; formatting not checked"
fi
echo "=== cargo test --workspace --release"
cargo test --workspace --release || rc=1
fuzz_secs=${PMVM_FUZZ_SECONDS:-20}
echo "=== fuzz (scripts/fuzz.sh $fuzz_secs)"
if [[ $fuzz_secs == 0 ]]; then
	echo "test: fuzzing disabled by PMVM_FUZZ_SECONDS=0: counted as a failure (CI always fuzzes)"
	rc=1
else
	"$repo/scripts/fuzz.sh" "$fuzz_secs" || rc=1
fi
echo "=== end-to-end (tests/e2e/run.sh)"
"$repo/tests/e2e/run.sh" "$@" || rc=1
if [[ $rc -eq 0 ]]; then echo "test: ALL PASSED"; else echo "test: FAILURES (see above)"; fi
exit $rc
