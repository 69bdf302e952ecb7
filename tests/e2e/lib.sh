# shellcheck shell=bash
# Shared helpers for end-to-end test scripts that run inside the harness's L1 host
# (or directly on a KVM host in hib's direct mode). Source it:
#   . "${E2E_LIB:-$HIB_OPT/e2e/lib.sh}"
#
#   boot_l2 VMM ARGS...   run an L2 guest with VMM = qemu | pmvm | /path/to/binary and
#                         QEMU-syntax ARGS; sets L2_RC L2_TIME L2_RSS_KB L2_HUNG L2_CONSOLE
#                         L2_STDERR L2_ATTEMPTS and prints one "boot_l2: ..." line.
#   pass MSG / fail MSG   record a check; check NAME CMD... runs CMD and records the result.
#   summary               print "SUMMARY pass=N fail=M" and return non-zero on any failure.
#   l2_value KEY          value of the first "KEY=value" token on the last L2 console.
#   median N...           median of numbers.
#
# Settings: L2_TIMEOUT (s, default 180) per VMM run; L2_SAMPLE (s, default 0.5) smaps
# sampling period; L2_LOG_DIR (default $HIB_OUT/l2 or a temp dir) for console files.

E2E_PASS=0
E2E_FAIL=0
L2_SEQ=0
L2_LOG_DIR=${L2_LOG_DIR:-${HIB_OUT:-$(mktemp -d)}/l2}
mkdir -p "$L2_LOG_DIR"

pass() {
	E2E_PASS=$((E2E_PASS + 1))
	echo "PASS: $*"
}

fail() {
	E2E_FAIL=$((E2E_FAIL + 1))
	echo "FAIL: $*"
}

# check NAME CMD...: PASS if CMD exits 0.
check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name"; return 1; fi
}

summary() {
	echo "SUMMARY pass=$E2E_PASS fail=$E2E_FAIL"
	[[ $E2E_FAIL -eq 0 && $E2E_PASS -gt 0 ]]
}

median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# vmm_bin VMM: the executable for a VMM name.
vmm_bin() {
	case "$1" in
	qemu) command -v qemu-system-x86_64 || echo "${HIB_OPT:-/opt}/bin/qemu-system-x86_64" ;;
	pmvm) echo "${PMVM:-${HIB_OPT:-/opt}/bin/pmvm}" ;;
	*) echo "$1" ;;
	esac
}

# size_to_bytes 512M -> bytes (QEMU -m syntax: plain numbers are MiB).
size_to_bytes() {
	local v=${1%%,*} n
	v=${v#size=}
	v=${v^^}
	n=${v%[KMGT]}
	n=${n%B}
	case "$v" in
	*K) echo $((n << 10)) ;; *G) echo $((n << 30)) ;; *T) echo $((n << 40)) ;;
	*) echo $((n << 20)) ;;
	esac
}

# vmm_own_rss_kb PID RAM_BYTES EXCLUDE_PATHS: RSS (KiB) of PID's mappings, leaving out guest
# RAM (any mapping at least RAM_BYTES long) and NVDIMM backends (paths, newline separated,
# plus every /dev/dax* mapping).
vmm_own_rss_kb() {
	awk -v ram="$2" -v excl="$3" '
	BEGIN { n = split(excl, ex, "\n"); for (i = 1; i <= n; i++) if (ex[i] != "") skip[ex[i]] = 1 }
	function flush() { if (have && !(size * 1024 >= ram) && !(path in skip) && path !~ /^\/dev\/dax/) total += rss; have = 0 }
	/^[0-9a-f]+-[0-9a-f]+ / {
		flush(); have = 1; size = 0; rss = 0; path = ""
		for (i = 6; i <= NF; i++) path = path (i > 6 ? " " : "") $i
		sub(/ \(deleted\)$/, "", path)
		next
	}
	$1 == "Size:" { size = $2 }
	$1 == "Rss:" { rss = $2 }
	END { flush(); print total + 0 }' "/proc/$1/smaps" 2>/dev/null
}

# run_saved NAME CMD...: run CMD with stdout in $work/NAME.out and stderr in $work/NAME.err
# (copies of both kept in $OUT), its exit status in RC. The caller sets work and OUT.
run_saved() {
	local name=$1
	shift
	"$@" >"$work/$name.out" 2>"$work/$name.err"
	RC=$?
	cp "$work/$name.out" "$work/$name.err" "$OUT/" 2>/dev/null
	return 0
}

# expect_rc NAME WANT: PASS/FAIL on the RC of `run_saved NAME`, with its output on failure.
expect_rc() {
	if [[ $RC -eq $2 ]]; then pass "$1: exit $RC"; else
		fail "$1: exit $RC (want $2)"
		sed 's/^/    /' "$work/$1.err" "$work/$1.out" | tail -n 12
	fi
}

# l2_value KEY [FILE]: "KEY=value" token from an L2 console (default: the last one).
l2_value() {
	tr -d '\r' <"${2:-$L2_CONSOLE}" | grep -oE "(^| )$1=[^ ]*" | sed -n '1s/^ *[^=]*=//p'
}

# console_has MARKER [FILE]
console_has() { grep -qF -- "$1" "${2:-$L2_CONSOLE}"; }

_boot_l2_once() {
	local bin=$1
	shift
	local args=("$@") ram_b=$((128 << 20)) excl="" a i
	# guest RAM size and NVDIMM backend paths from the arguments
	for ((i = 0; i < ${#args[@]}; i++)); do
		a=${args[$i]}
		if [[ $a == -m ]]; then ram_b=$(size_to_bytes "${args[$((i + 1))]}"); fi
		if [[ $a == *mem-path=* ]]; then
			a=${a#*mem-path=}
			a=${a%%,*}
			excl+="$(realpath "$a" 2>/dev/null || echo "$a")"$'\n'
		fi
	done
	L2_SEQ=$((L2_SEQ + 1))
	local tag
	tag=$(printf '%03d-%s' "$L2_SEQ" "$(basename "$bin")")
	L2_CONSOLE=$L2_LOG_DIR/$tag.console
	L2_STDERR=$L2_LOG_DIR/$tag.stderr
	local endf=$L2_LOG_DIR/$tag.end pidf=$L2_LOG_DIR/$tag.pid
	rm -f "$endf" "$pidf"
	printf '%q ' "$bin" "${args[@]}" >"$L2_LOG_DIR/$tag.cmd"
	(
		t0=$EPOCHREALTIME
		"$bin" "${args[@]}" </dev/null >"$L2_CONSOLE" 2>"$L2_STDERR" &
		echo "$! $t0" >"$pidf"
		wait $!
		rc=$?
		echo "$rc $EPOCHREALTIME" >"$endf"
	) &
	local sub=$! vpid t0 deadline now rss max=0 timeout=${L2_TIMEOUT:-180}
	while [[ ! -s $pidf ]]; do sleep 0.01; done
	read -r vpid t0 <"$pidf"
	deadline=$(awk -v a="$t0" -v t="$timeout" 'BEGIN { printf "%.3f", a + t }')
	L2_HUNG=0
	while [[ ! -s $endf ]]; do
		rss=$(vmm_own_rss_kb "$vpid" "$ram_b" "$excl")
		[[ -n $rss && $rss -gt $max ]] && max=$rss
		now=$EPOCHREALTIME
		if awk -v a="$now" -v b="$deadline" 'BEGIN { exit !(a > b) }'; then
			L2_HUNG=1
			kill -TERM "$vpid" 2>/dev/null
			sleep 3
			kill -KILL "$vpid" 2>/dev/null
			break
		fi
		sleep "${L2_SAMPLE:-0.5}"
	done
	wait "$sub"
	local rc t1
	read -r rc t1 <"$endf"
	L2_RC=$rc
	L2_RSS_KB=$max
	L2_TIME=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	[[ $L2_HUNG -eq 1 ]] && L2_RC=124
}

# boot_l2 VMM ARGS...: see the header. Retries once if the run hangs (no exit before
# L2_TIMEOUT): nested boots occasionally stop making progress (host-in-a-box gotcha 17).
boot_l2() {
	local vmm=$1 bin
	shift
	bin=$(vmm_bin "$vmm")
	L2_RC=127 L2_TIME=0 L2_RSS_KB=0 L2_HUNG=0 L2_ATTEMPTS=0 L2_CONSOLE=/dev/null L2_STDERR=/dev/null
	if [[ ! -x $bin ]]; then
		echo "boot_l2: vmm=$vmm: executable $bin not found (for pmvm: stage it as bin/pmvm in HIB_EXTRA_DIR)"
		return 127
	fi
	local args=("$@")
	if [[ $vmm == qemu || $(basename "$bin") == qemu-system-* ]]; then
		# QEMU in L1 has only the firmware in $HIB_OPT/share/qemu; without -nodefaults
		# -nographic would add a NIC/VGA whose ROMs are not there.
		local a out=(-L "${HIB_OPT:-/opt}/share/qemu")
		for a in "${args[@]}"; do
			if [[ $a == -nographic ]]; then out+=(-nodefaults -serial stdio -display none); else out+=("$a"); fi
		done
		args=("${out[@]}")
	fi
	local attempt
	for attempt in 1 2; do
		L2_ATTEMPTS=$attempt
		_boot_l2_once "$bin" "${args[@]}"
		[[ $L2_HUNG -eq 1 ]] || break
		echo "boot_l2: HANG: vmm=$vmm no exit after ${L2_TIMEOUT:-180}s (attempt $attempt, console $L2_CONSOLE)"
	done
	echo "boot_l2: vmm=$vmm rc=$L2_RC time=${L2_TIME}s vmm_rss=${L2_RSS_KB}KiB hung=$L2_HUNG attempts=$L2_ATTEMPTS console=$L2_CONSOLE"
	if [[ $L2_RC -ne 0 && -s $L2_STDERR ]]; then
		echo "boot_l2: stderr (tail):"
		tail -n 5 "$L2_STDERR" | sed 's/^/    /'
	fi
	return "$L2_RC"
}

# json_flat [FILE...]: flatten JSON (e.g. ndctl/daxctl output; several top-level documents
# allowed) into sorted "path=value" lines, strings unquoted. Array elements that are objects
# whose first key is "dev" or "dimm" are named by that value instead of their index, so the
# order ndctl happens to list objects in does not matter:
#   {"regions":[{"dev":"region0","size":5,"mappings":[{"dimm":"nmem0","position":0}]}]}
#   -> .regions[region0].dev=region0  .regions[region0].mappings[nmem0].position=0 ...
# L1 has busybox awk only (no jq, no python).
json_flat() {
	cat "$@" | tr -d '\r' | awk '
	function ws() { while (pos <= n && index(" \t\r\n", substr(s, pos, 1)) > 0) pos++ }
	function str(   out, c) {
		pos++; out = ""
		while (pos <= n) {
			c = substr(s, pos, 1)
			if (c == "\\") { out = out substr(s, pos, 2); pos += 2; continue }
			pos++
			if (c == "\"") return out
			out = out c
		}
		return out
	}
	function val(path,   c, k, v, i, first, p, save) {
		ws(); c = substr(s, pos, 1)
		if (c == "{") {
			pos++; ws()
			if (substr(s, pos, 1) == "}") { pos++; return }
			first = 1; p = path
			while (pos <= n) {
				ws(); k = str(); ws(); pos++; ws()
				if (first && (k == "dev" || k == "dimm") && p ~ /\[[0-9]+\]$/ && substr(s, pos, 1) == "\"") {
					save = pos; v = str(); pos = save
					sub(/\[[0-9]+\]$/, "[" v "]", p)
				}
				first = 0
				val(p "." k)
				ws(); c = substr(s, pos, 1); pos++
				if (c != ",") return
			}
			return
		}
		if (c == "[") {
			pos++; ws()
			if (substr(s, pos, 1) == "]") { pos++; return }
			for (i = 0; pos <= n; i++) {
				val(path "[" i "]")
				ws(); c = substr(s, pos, 1); pos++
				if (c != ",") return
			}
			return
		}
		if (c == "\"") { print path "=" str(); return }
		v = ""
		while (pos <= n && index(",}] \t\r\n", substr(s, pos, 1)) == 0) { v = v substr(s, pos, 1); pos++ }
		print path "=" v
	}
	{ s = s $0 "\n" }
	END { n = length(s); pos = 1; while (1) { ws(); if (pos > n) break; val("") } }' | sort
}

# l2_block NAME [FILE]: the L2 console lines between "@@NAME-BEGIN@@" and "@@NAME-END@@".
l2_block() {
	tr -d '\r' <"${2:-$L2_CONSOLE}" | awk -v b="@@$1-BEGIN@@" -v e="@@$1-END@@" '$0 == e { f = 0 } f { print } $0 == b { f = 1 }'
}

# l2_step NAME [FILE]: exit status the L2 script reported for step NAME ("@@STEP NAME rc=N@@");
# empty if the step never ran.
l2_step() {
	tr -d '\r' <"${2:-$L2_CONSOLE}" | sed -n "s/^@@STEP $1 rc=\([0-9]*\)@@\$/\1/p" | tail -n 1
}
