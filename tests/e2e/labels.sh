#!/bin/bash
# hib: HIB_TIMEOUT=1800
# E2E namespace-label test (runs inside the harness's L1): labels written in an L2 guest under
# pmvm by ndctl and by the kernel are read offline by `pmctl label show --json` exactly as the
# guest's `ndctl read-labels -j` shows them; label areas initialised offline by `pmctl label
# init` (v1.1, v1.2) are accepted by the guest; `pmctl label check` passes an intact area and
# fails (exit 1, problem named) on a corrupted index checksum.
#
# Cases (one L2 boot each, fresh 1G backend with label-size=128K):
#   ndctl11   guest: ndctl init-labels (v1.1, ndctl's default), then two namespaces
#   ndctl12   guest: ndctl init-labels -V 1.2, then two namespaces (the 256-byte v1.2 labels
#             themselves, with their GUIDs and checksums, are written by the guest kernel)
#   blank     blank (zero) label area, no init-labels: does the kernel initialise it itself?
#             Linux 6.1 does not: a DIMM whose area has no valid index is not "labelling"
#             (nvdimm_probe sets it only after a valid index), so the region is label-less
#             (nstype 4) and create-namespace -s is refused. Checked under pmvm AND under QEMU
#             (reference), and pmctl must read the zero area as the guest's ndctl does.
#   pmctl11   L1: pmctl label init --version 1.1, guest only creates namespaces
#   pmctl12   L1: pmctl label init --version 1.2, guest only creates namespaces
# Each labelled guest creates an fsdax (-s 256M) and a raw (-s 128M) namespace, named, and
# prints `ndctl read-labels -j nmem0` and `-u` (stdout redirected to a file, as a script would:
# ndctl prints a single DIMM as a bare object only when stdout is a terminal) between markers.
# Settings: LT_CASES (default all five, in that order).
set -uo pipefail
. "${E2E_LIB:-${HIB_OPT:-/opt}/e2e/lib.sh}"

PMCTL=${PMCTL:-${HIB_OPT:-/opt}/bin/pmctl}
CASES=${LT_CASES:-ndctl11 ndctl12 blank pmctl11 pmctl12}
LSIZE=128K
for b in "$PMCTL" "$(vmm_bin pmvm)"; do
	[[ -x $b ]] || { fail "binary missing: $b (tests/e2e/run.sh stages bin/pmvm and bin/pmctl)"; summary; exit 1; }
done

work=$(mktemp -d)
mkdir -p "$work/nv"
mount -t tmpfs -o size=2500M tmpfs "$work/nv" || { fail "mount tmpfs for the backends"; summary; exit 1; }

cat >"$work/l2.sh" <<'EOF'
# L2 (busybox sh). The case comes from the kernel command line (lt.mode=...).
st() { n=$1; shift; "$@" >/tmp/o 2>&1; rc=$?; sed 's/^/    /' /tmp/o; echo "@@STEP $n rc=$rc@@"; return $rc; }
mode=$(sed -n 's/.*lt\.mode=\([^ ]*\).*/\1/p' /proc/cmdline)
echo "LT mode=$mode"
case $mode in
ndctl11 | ndctl12)
	v=""; [ "$mode" = ndctl12 ] && v="-V 1.2"
	st disable-region ndctl disable-region region0
	st init-labels ndctl init-labels -f $v nmem0
	st enable-region ndctl enable-region region0 ;;
esac
echo "LT nstype=$(cat /sys/bus/nd/devices/region0/nstype 2>/dev/null) before=$(ls /sys/bus/nd/devices | tr '\n' ' ')"
if [ "$mode" != blank ]; then
	st ns-fsdax ndctl create-namespace -r region0 -m fsdax -s 256M -n lt-fsdax
	st ns-raw ndctl create-namespace -r region0 -m raw -s 128M -n lt-raw
else
	st ns-sized ndctl create-namespace -r region0 -m fsdax -s 256M -n lt-fsdax
fi
echo "LT nstype=$(cat /sys/bus/nd/devices/region0/nstype 2>/dev/null) ns0type=$(cat /sys/bus/nd/devices/namespace0.0/devtype 2>/dev/null)"
echo "@@LIST-BEGIN@@"; ndctl list -N 2>&1; echo; echo "@@LIST-END@@"
ndctl read-labels -j nmem0 >/tmp/rl 2>/tmp/e; rc=$?
echo "@@RL-BEGIN@@"; cat /tmp/rl; echo "@@RL-END@@"
echo "@@STEP read-labels rc=$rc@@"; sed 's/^/    stderr: /' /tmp/e
ndctl read-labels -u nmem0 >/tmp/rlu 2>/tmp/e; rc=$?
echo "@@RLU-BEGIN@@"; cat /tmp/rlu; echo "@@RLU-END@@"
echo "@@STEP read-labels-u rc=$rc@@"
EOF
mk-l2-initrd "$work/l2.sh" "$work/initrd.img" || { fail "mk-l2-initrd"; summary; exit 1; }

# boot_case VMM CASE FILE: one guest with FILE as its NVDIMM backend (label-size=128K).
boot_case() {
	boot_l2 "$1" -machine pc,accel=kvm,nvdimm=on -cpu host -m 512M,slots=4,maxmem=8G -smp 2 \
		-object "memory-backend-file,id=mem1,share=on,mem-path=$3,size=1G" \
		-device nvdimm,id=nv1,memdev=mem1,label-size=$LSIZE \
		-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/initrd.img" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1 lt.mode=$2" -nographic -no-reboot
}

# squeeze: whitespace-insensitive form (the only normalisation allowed in the comparison).
squeeze() { tr -d ' \t\r\n'; }

# compare_json CASE WHAT GUEST OFFLINE: exact comparison up to whitespace; on a difference
# print the differing flattened fields.
compare_json() {
	local c=$1 what=$2 g=$3 o=$4
	if [[ ! -s $g ]]; then
		fail "$c: guest printed no $what output"
	elif [[ $(squeeze <"$g") == "$(squeeze <"$o")" ]]; then
		pass "$c: pmctl label show $what == guest ndctl read-labels $what (whitespace-normalised)"
	else
		fail "$c: pmctl label show $what differs from guest ndctl read-labels $what; differing fields (< guest, > pmctl):"
		json_flat "$g" >"$g.flat"
		json_flat "$o" >"$o.flat"
		diff "$g.flat" "$o.flat" | grep '^[<>]' | head -n 40 | sed 's/^/    /'
		cmp -s "$g.flat" "$o.flat" && echo "    (same fields and values: the difference is in layout, nesting or key order)"
		echo "    guest:  $(squeeze <"$g" | head -c 300)"
		echo "    pmctl:  $(squeeze <"$o" | head -c 300)"
	fi
}

# index_minor FILE: "minor" of the first index in read-labels JSON (array or bare object).
index_minor() { json_flat "$1" | sed -n 's/^\(\[nmem0\]\)\{0,1\}\.index\[0\]\.minor=//p'; }

# corrupt_checksum CASE FILE: flip one byte of index block 0's free bitmap, expect check to
# fail naming the checksum, flip it back, expect exit 0 again.
corrupt_checksum() {
	local c=$1 f=$2 off out rc byte
	off=$(($(stat -c %s "$f") - (128 << 10) + 72 + 16)) # index block 0, free bitmap byte 16
	byte=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
	# shellcheck disable=SC2059
	printf "$(printf '\\%03o' $((byte ^ 0x5a)))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
	out=$("$PMCTL" label check "$f" --label-size $LSIZE 2>&1)
	rc=$?
	echo "$out" | sed 's/^/    corrupted: /'
	if [[ $rc -eq 1 ]] && grep -qi 'index block 0.*checksum' <<<"$out" && grep -q 'index-checksum' <<<"$out"; then
		pass "$c: corrupted index checksum (byte at $off ^ 0x5a): pmctl label check exit 1, names 'index block 0: checksum' [index-checksum]"
	else
		fail "$c: corrupted index checksum: pmctl label check exit $rc (want 1) or problem not named (want 'index block 0 ... checksum' [index-checksum])"
	fi
	# shellcheck disable=SC2059
	printf "$(printf '\\%03o' "$byte")" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
	"$PMCTL" label check "$f" --label-size $LSIZE >/dev/null 2>&1
	rc=$?
	[[ $rc -eq 0 ]] && pass "$c: byte restored: pmctl label check exit 0 again" || fail "$c: byte restored but pmctl label check exit $rc"
}

# guest_vs_offline CASE FILE: compare the last console's read-labels -j / -u with pmctl's.
guest_vs_offline() {
	local c=$1 f=$2 prc
	l2_block RL >"$work/$c.guest.json"
	l2_block RLU >"$work/$c.guest-u.json"
	"$PMCTL" label show "$f" --label-size $LSIZE --json >"$work/$c.off.json" 2>"$work/$c.off.err"
	prc=$?
	[[ $prc -eq 0 ]] || fail "$c: pmctl label show --json exit $prc: $(head -n 2 "$work/$c.off.err")"
	"$PMCTL" label show "$f" --label-size $LSIZE -u >"$work/$c.off-u.json" 2>"$work/$c.off.err"
	prc=$?
	[[ $prc -eq 0 ]] || fail "$c: pmctl label show -u exit $prc: $(head -n 2 "$work/$c.off.err")"
	echo "  guest read-labels -j: index minor=$(index_minor "$work/$c.guest.json")" \
		"labels listed=$(json_flat "$work/$c.guest.json" | grep -c '\.label\[[0-9]*\]\.uuid=')"
	compare_json "$c" "-j" "$work/$c.guest.json" "$work/$c.off.json"
	compare_json "$c" "-u" "$work/$c.guest-u.json" "$work/$c.off-u.json"
}

for c in $CASES; do
	echo "=== $c"
	f=$work/nv/$c.img
	rm -f "$f"
	truncate -s 1G "$f"
	case $c in
	pmctl11 | pmctl12)
		v=1.${c#pmctl1}
		if "$PMCTL" label init "$f" --label-size $LSIZE --version "$v"; then
			pass "$c: pmctl label init --version $v"
		else
			fail "$c: pmctl label init --version $v exit $?"
		fi
		"$PMCTL" label check "$f" --label-size $LSIZE | sed 's/^/    /'
		;;
	esac
	boot_case pmvm "$c" "$f"
	rc=$?
	tr -d '\r' <"$L2_CONSOLE" | grep -E '^(LT |@@STEP|    )' | grep -v '^    *$' | sed 's/^/  /' | head -n 40
	[[ $rc -eq 0 ]] && pass "$c: pmvm exit 0" || { fail "$c: pmvm exit $rc"; continue; }
	steps="read-labels read-labels-u"
	[[ $c == blank ]] || steps="ns-fsdax ns-raw $steps"
	[[ $c == ndctl1* ]] && steps="disable-region init-labels enable-region $steps"
	for s in $steps; do
		r=$(l2_step "$s")
		[[ $r == 0 ]] && pass "$c: guest step $s rc=0" || fail "$c: guest step $s rc='${r}'"
	done
	nst=$(l2_value nstype)
	if [[ $c == blank ]]; then
		# The kernel leaves a blank area alone: label-less region, sized namespaces refused.
		[[ $nst == 4 ]] && pass "$c: blank area: region0 is label-less (nstype=4), the kernel wrote no index" ||
			fail "$c: blank area: region0 nstype='$nst' (Linux 6.1 makes it label-less, 4)"
		r=$(l2_step ns-sized)
		[[ -n $r && $r != 0 ]] && pass "$c: create-namespace -s on the label-less region refused (rc=$r), as Linux does" ||
			fail "$c: create-namespace -s on a blank-area region: rc='$r' (want a refusal)"
		guest_vs_offline "$c" "$f"
		out=$("$PMCTL" label check "$f" --label-size $LSIZE 2>&1)
		rc=$?
		[[ $rc -eq 1 ]] && grep -q '\[blank\]' <<<"$out" && pass "$c: pmctl label check: exit 1, [blank] (nothing to check)" ||
			fail "$c: pmctl label check on the untouched blank area: exit $rc: $out"
		# Reference: the same blank area under QEMU gives the same label-less region.
		rm -f "$f"
		truncate -s 1G "$f"
		boot_case qemu "$c" "$f"
		q=$(l2_value nstype)
		[[ $L2_RC -eq 0 && $q == "$nst" ]] && pass "$c: QEMU reference on a blank area: nstype=$q, same as pmvm" ||
			fail "$c: QEMU reference on a blank area: exit $L2_RC nstype='$q' (pmvm: '$nst')"
		rm -f "$f"
		continue
	fi
	# Labelled region: nstype 5 (ND_DEVICE_NAMESPACE_PMEM; label-less is 4 = IO), and the
	# names (which only labels can store) listed by ndctl list -N.
	[[ $nst == 5 ]] && pass "$c: region0 is labelled (nstype=5, pmem)" || fail "$c: region0 nstype='$nst' (want 5: labelled pmem; 4 = label-less)"
	l2_block LIST >"$work/$c.list"
	if grep -q '"name":"lt-fsdax"' "$work/$c.list" && grep -q '"name":"lt-raw"' "$work/$c.list"; then
		pass "$c: ndctl list -N shows both namespaces by name (lt-fsdax, lt-raw)"
	else
		fail "$c: ndctl list -N lacks lt-fsdax/lt-raw:"
		sed 's/^/    /' "$work/$c.list"
	fi
	guest_vs_offline "$c" "$f"
	for nm in lt-fsdax lt-raw; do
		grep -q "\"name\":\"$nm\"" "$work/$c.off.json" && pass "$c: offline view has a label named $nm" ||
			fail "$c: offline view has no label named $nm"
	done
	# Version: what was asked for, and the guest kept it (it did not re-initialise).
	case $c in *11) want=1 ;; *) want=2 ;; esac
	m=$(index_minor "$work/$c.guest.json")
	[[ $m == "$want" ]] && pass "$c: index is v1.$want" || fail "$c: index minor '$m' (want $want)"
	# Intact area: check passes, cookies verified against pmvm's slot-0 serial (0x123456).
	out=$("$PMCTL" label check "$f" --label-size $LSIZE --slot 0 2>&1)
	rc=$?
	echo "$out" | sed 's/^/    check: /'
	[[ $rc -eq 0 ]] && pass "$c: pmctl label check --slot 0 on the intact area: exit 0" ||
		fail "$c: pmctl label check --slot 0 on the intact area: exit $rc (want 0)"
	grep -q "2 active label" <<<"$out" && pass "$c: check counts 2 active labels" || fail "$c: check does not count 2 active labels"
	[[ $c == ndctl1* ]] && corrupt_checksum "$c" "$f"
	rm -f "$f"
done
umount "$work/nv" 2>/dev/null
rm -rf "$work"
summary
