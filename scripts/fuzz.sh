#!/bin/bash
# scripts/fuzz.sh [SECONDS]: runs every cargo-fuzz target of fuzz/Cargo.toml for SECONDS
# (default 30) on a temporary copy of its seed corpus fuzz/corpus/<target>/ (the repository's
# corpus is never written to). Installs the nightly toolchain and cargo-fuzz when missing (the
# C++ compiler libFuzzer is built with comes from scripts/deps.sh: Debian's g++).
# Prints one line per target and `fuzz: N passed, M failed`; exits non-zero when a target crashes,
# times out (-timeout=10 per input), runs out of memory (-rss_limit_mb=2048), has no corpus or
# does not build. A failing input is kept in fuzz/artifacts/<target>/ with the command that
# reproduces it. Called by scripts/test.sh (PMVM_FUZZ_SECONDS); docs/testing.md, tier 3.
set -uo pipefail
secs=${1:-30}
if ! [[ $secs =~ ^[0-9]+$ ]] || [[ $secs -eq 0 ]]; then
	echo "usage: scripts/fuzz.sh [SECONDS]  (SECONDS per target, a whole number > 0; default 30)" >&2
	exit 2
fi
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo/fuzz"

# Tools: a nightly toolchain (cargo-fuzz builds with -Zsanitizer=address), cargo-fuzz, and a C++
# compiler for libfuzzer-sys's build script (g++ is enough; clang is not needed).
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
	echo "fuzz: installing the nightly toolchain (rustup toolchain install nightly --profile minimal)"
	rustup toolchain install nightly --profile minimal ||
		{ echo "fuzz: could not install the nightly toolchain"; echo "fuzz: 0 passed, 1 failed"; exit 1; }
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
	echo "fuzz: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
	cargo install cargo-fuzz --locked ||
		{ echo "fuzz: could not install cargo-fuzz"; echo "fuzz: 0 passed, 1 failed"; exit 1; }
fi
if ! command -v c++ >/dev/null; then
	echo "fuzz: no C++ compiler (c++) to build libFuzzer with: run scripts/deps.sh (Debian g++)"
	echo "fuzz: 0 passed, 1 failed"
	exit 1
fi

mapfile -t targets < <(cargo +nightly fuzz list 2>/dev/null)
if [[ ${#targets[@]} -eq 0 ]]; then
	echo "fuzz: no targets listed by cargo fuzz list (fuzz/Cargo.toml)"
	echo "fuzz: 0 passed, 1 failed"
	exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${secs} s each: ${targets[*]}"
t0=$SECONDS
if ! cargo +nightly fuzz build; then
	echo "fuzz: cargo +nightly fuzz build failed"
	echo "fuzz: 0 passed, ${#targets[@]} failed"
	exit 1
fi
echo "fuzz: built in $((SECONDS - t0)) s"

work=$(mktemp -d "${TMPDIR:-/tmp}/pmvm-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
npass=0
nfail=0
failed=()
for t in "${targets[@]}"; do
	seeds="$repo/fuzz/corpus/$t"
	if ! compgen -G "$seeds/*" >/dev/null; then
		echo "fuzz: $t: FAILED: no seed corpus in fuzz/corpus/$t/ (add a few valid inputs)"
		nfail=$((nfail + 1)); failed+=("$t")
		continue
	fi
	mkdir -p "$work/$t" "$repo/fuzz/artifacts/$t"
	cp -r "$seeds" "$work/$t/corpus"
	nseed=$(find "$seeds" -type f | wc -l)
	log="$work/$t/log"
	start=$SECONDS
	# libFuzzer adds new inputs to the first corpus directory: the temporary copy. The outer
	# timeout only catches a fuzzer that ignores -max_total_time (it reports as a failure).
	timeout --kill-after=10 $((secs + 120)) \
		cargo +nightly fuzz run "$t" "$work/$t/corpus" -- \
		-max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$repo/fuzz/artifacts/$t/" >"$log" 2>&1
	rc=$?
	took=$((SECONDS - start))
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	runs=${runs:-$(sed -n 's/.*#\([0-9][0-9]*\)[[:space:]].*/\1/p' "$log" | tail -1)}
	ncorp=$(find "$work/$t/corpus" -type f | wc -l)
	if [[ $rc -eq 0 ]]; then
		echo "fuzz: $t: ok, ${runs:-?} runs in ${took} s (corpus $nseed -> $ncorp inputs)"
		npass=$((npass + 1))
		continue
	fi
	nfail=$((nfail + 1)); failed+=("$t")
	if grep -q 'ERROR: libFuzzer: timeout' "$log"; then what="timeout (an input ran > 10 s)"
	elif grep -q 'ERROR: libFuzzer: out-of-memory' "$log"; then what="out of memory (> 2048 MB)"
	elif grep -q 'ERROR: libFuzzer: \|ERROR: AddressSanitizer\|panicked at' "$log"; then what="crash"
	elif [[ $rc -eq 124 || $rc -eq 137 ]]; then what="did not stop after $((secs + 120)) s"
	else what="exit status $rc"; fi
	cp "$log" "$repo/fuzz/artifacts/$t/last-failure.log"
	echo "fuzz: $t: FAILED: $what after ${runs:-?} runs in ${took} s:"
	{
		awk '/panicked at/ { p = 1 } p && /^stack backtrace:|^==[0-9]+==/ { exit } p { print; if (++n >= 12) exit }' "$log"
		grep -m1 'ERROR: libFuzzer\|ERROR: AddressSanitizer\|ERROR: LeakSanitizer' "$log"
		grep -m1 '^SUMMARY: ' "$log"
	} | sed 's/^/    /'
	echo "fuzz: $t: full log: fuzz/artifacts/$t/last-failure.log"
	artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
	if [[ -n $artifact ]]; then
		artifact=${artifact#"$repo/"}
		echo "fuzz: $t: failing input: $artifact"
		echo "fuzz: $t: reproduce: cargo +nightly fuzz run $t $artifact"
	else
		echo "fuzz: $t: libFuzzer wrote no failing input (see the log)"
	fi
done
echo "fuzz: total $((SECONDS - t0)) s"
[[ $nfail -eq 0 ]] || echo "fuzz: failed: ${failed[*]}"
echo "fuzz: $npass passed, $nfail failed"
[[ $nfail -eq 0 ]]
