#!/bin/bash
# hib: HIB_TIMEOUT=1200
# E2E label-area safety at pmvm start-up (runs inside the harness's L1; issue 5 point 5):
#   foreign   the last 64 KiB of a 1G backend hold foreign bytes (random, with an ext4 magic):
#             pmvm with label-size=128K refuses with a message that explains (what, where,
#             how to proceed), exits non-zero before the guest runs, and the backend file is
#             byte-identical afterwards
#   forced    the same file with -force-label-area: pmvm starts (warning "(forced)" on stderr),
#             the guest runs; the foreign bytes are no valid index, so Linux makes the region
#             label-less, 1G - 128K (the label area stays outside the guest's pmem); pmvm
#             itself writes nothing into the area
#   nolabel   a backend ending in a valid label index (pmctl label init) started WITHOUT
#             label-size: pmvm warns on stderr (not on the guest console) and the guest sees a
#             label-less namespace spanning the whole backend
#   blank     a blank (zero) label area with label-size=128K: starts with no warning on stderr;
#             the guest sees a label-less region of 1G - 128K (Linux 6.1 enables labels only
#             when a valid index exists; tests/e2e/labels.sh checks the same under QEMU)
#   plain     control for "nolabel": a zero backend without label-size starts without the warning
set -uo pipefail
. "${E2E_LIB:-${HIB_OPT:-/opt}/e2e/lib.sh}"

PMCTL=${PMCTL:-${HIB_OPT:-/opt}/bin/pmctl}
for b in "$PMCTL" "$(vmm_bin pmvm)"; do
	[[ -x $b ]] || { fail "binary missing: $b (tests/e2e/run.sh stages bin/pmvm and bin/pmctl)"; summary; exit 1; }
done
GIB=$((1 << 30))

work=$(mktemp -d)
mkdir -p "$work/nv"
mount -t tmpfs -o size=2500M tmpfs "$work/nv" || { fail "mount tmpfs for the backends"; summary; exit 1; }

cat >"$work/l2.sh" <<'EOF'
# L2 (busybox sh): what the guest sees of its NVDIMM.
d=/sys/bus/nd/devices
echo "LS nstype=$(cat $d/region0/nstype 2>/dev/null) region_size=$(cat $d/region0/size 2>/dev/null) ns0type=$(cat $d/namespace0.0/devtype 2>/dev/null) ns0size=$(cat $d/namespace0.0/size 2>/dev/null) ns0mode=$(cat $d/namespace0.0/mode 2>/dev/null)"
echo "@@LIST-BEGIN@@"; ndctl list -RN 2>&1; echo; echo "@@LIST-END@@"
EOF
mk-l2-initrd "$work/l2.sh" "$work/initrd.img" || { fail "mk-l2-initrd"; summary; exit 1; }

# run_pmvm FILE [DEVICE-EXTRA [PMVM-EXTRA...]]: boot a guest with FILE (1G) as its NVDIMM.
run_pmvm() {
	local f=$1 dev=${2:-}
	shift 2
	boot_l2 pmvm -machine pc,accel=kvm,nvdimm=on -cpu host -m 512M,slots=4,maxmem=8G -smp 2 \
		-object "memory-backend-file,id=mem1,share=on,mem-path=$f,size=1G" \
		-device "nvdimm,id=nv1,memdev=mem1$dev" "$@" \
		-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/initrd.img" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1" -nographic -no-reboot
}
show_stderr() { sed 's/^/    stderr: /' "$L2_STDERR"; }
sum() { sha256sum "$1" | cut -d' ' -f1; }
guest_ran() { console_has '@@L2-RC=0@@'; }

echo "=== foreign: label area holds foreign bytes, label-size=128K"
F=$work/nv/foreign.img
truncate -s 1G "$F"
# 64 KiB of random bytes at the very end, with an ext4 superblock magic (0xEF53 at 0x438) in it
head -c 65536 /dev/urandom >"$work/tail.bin"
printf '\123\357' | dd of="$work/tail.bin" bs=1 seek=$((0x438)) conv=notrunc status=none
dd if="$work/tail.bin" of="$F" bs=64K seek=$((GIB / 65536 - 1)) conv=notrunc status=none
"$PMCTL" label show "$F" | sed 's/^/    pmctl: /'
before=$(sum "$F")
run_pmvm "$F" ,label-size=128K
rc=$L2_RC
show_stderr
[[ $rc -ne 0 && $rc -ne 124 ]] && pass "foreign: pmvm refused to start (exit $rc)" || fail "foreign: pmvm exit $rc (want a non-zero refusal)"
guest_ran && fail "foreign: the guest ran although pmvm should have refused" || pass "foreign: no guest ran"
# The message must say what is wrong, where, why it matters and what to do.
msg=$(tr '\n' ' ' <"$L2_STDERR")
miss=""
for re in 'nv1' 'mem1' '0x3ffe0000' 'neither zero nor a namespace label index' 'destroy' 'without label-size' '-force-label-area'; do
	grep -qiF -- "$re" <<<"$msg" || miss+=" '$re'"
done
[[ -z $miss ]] && pass "foreign: message names the device and backend ids, the offset, the problem, the risk and both ways out" ||
	fail "foreign: message lacks:$miss"
grep -qF -- "$F" <<<"$msg" || echo "    info: the refusal names the backend by id (mem1), not by its path $F"
[[ $(sum "$F") == "$before" ]] && pass "foreign: backend byte-identical after the refusal (sha256 $before)" ||
	fail "foreign: backend CHANGED by a refused start"
tail -c 65536 "$F" >"$work/tail.after"
cmp -s "$work/tail.bin" "$work/tail.after" && pass "foreign: the 64 KiB tail is intact" || fail "foreign: the 64 KiB tail changed"

echo "=== forced: the same backend with -force-label-area"
run_pmvm "$F" ,label-size=128K -force-label-area
rc=$L2_RC
show_stderr
[[ $rc -eq 0 ]] && pass "forced: pmvm started and exited 0" || fail "forced: pmvm exit $rc (want 0)"
guest_ran && pass "forced: the guest ran its script" || fail "forced: the guest did not run its script"
grep -q 'warning.*(forced)' "$L2_STDERR" && pass "forced: stderr warns that the foreign area is used (forced)" ||
	fail "forced: no '(forced)' warning on stderr"
grep -E '^LS ' "$L2_CONSOLE" | tr -d '\r' | sed 's/^/    /'
nst=$(l2_value nstype) rs=$(l2_value region_size)
[[ $nst == 4 ]] && pass "forced: no valid index in the area: the guest region is label-less (nstype=4)" ||
	fail "forced: guest nstype='$nst' (want 4: foreign bytes are no valid index)"
[[ $rs == $((GIB - (128 << 10))) ]] && pass "forced: guest pmem is 1G - 128K ($rs): the label area stays outside it" ||
	fail "forced: guest region size '$rs' (want $((GIB - (128 << 10))))"
[[ $(sum "$F") == "$before" ]] && pass "forced: pmvm itself wrote nothing into the backend (the guest wrote no labels)" ||
	fail "forced: backend changed although the guest wrote no labels"
rm -f "$F"

echo "=== nolabel: backend ends in a valid label index, started without label-size"
F=$work/nv/nolabel.img
truncate -s 1G "$F"
"$PMCTL" label init "$F" --version 1.2 | sed 's/^/    pmctl: /'
before=$(sum "$F")
run_pmvm "$F" ""
rc=$L2_RC
show_stderr
[[ $rc -eq 0 ]] && pass "nolabel: pmvm started and exited 0" || fail "nolabel: pmvm exit $rc (want 0)"
msg=$(tr '\n' ' ' <"$L2_STDERR")
if grep -qi 'warning' <<<"$msg" && grep -qi 'valid namespace label area' <<<"$msg" && grep -qi 'no label-size' <<<"$msg" &&
	grep -qF 'label-size=128K' <<<"$msg"; then
	pass "nolabel: stderr warns: valid label area but no label-size (suggests label-size=128K)"
else
	fail "nolabel: no warning about the label index on stderr"
fi
grep -qi 'label-size' "$L2_CONSOLE" && fail "nolabel: the warning went to the guest console (stdout)" ||
	pass "nolabel: the warning is not on stdout (the guest console)"
grep -E '^LS ' "$L2_CONSOLE" | tr -d '\r' | sed 's/^/    /'
l2_block LIST | sed 's/^/    /'
nst=$(l2_value nstype) t=$(l2_value ns0type) sz=$(l2_value ns0size)
[[ $nst == 4 ]] && pass "nolabel: guest region is label-less (nstype=4, io)" || fail "nolabel: guest nstype='$nst' (want 4 = label-less)"
[[ $t == nd_namespace_io ]] && pass "nolabel: namespace0.0 is a label-less nd_namespace_io" || fail "nolabel: namespace0.0 devtype '$t'"
[[ $sz == "$GIB" ]] && pass "nolabel: the label-less namespace spans the whole backend ($sz bytes, old labels included)" ||
	fail "nolabel: namespace0.0 size '$sz' (want $GIB)"
[[ $(sum "$F") == "$before" ]] && pass "nolabel: backend unchanged" || fail "nolabel: backend changed although the guest wrote nothing"
rm -f "$F"

echo "=== blank: zero label area with label-size=128K"
F=$work/nv/blank.img
truncate -s 1G "$F"
run_pmvm "$F" ,label-size=128K
rc=$L2_RC
show_stderr
[[ $rc -eq 0 ]] && pass "blank: pmvm started and exited 0" || fail "blank: pmvm exit $rc (want 0)"
guest_ran && pass "blank: the guest ran its script" || fail "blank: the guest did not run its script"
# stderr carries pmvm's start-up report ("... label area 128 KiB at backend offset ..."); nothing
# else may be there.
bad=$(grep -iE 'warn|error|refus|force|neither zero|label index|label area \(' "$L2_STDERR")
[[ -z $bad ]] && pass "blank: no warning on stderr (only the start-up report)" || fail "blank: unexpected on stderr: $(head -n 2 <<<"$bad")"
grep -E '^LS ' "$L2_CONSOLE" | tr -d '\r' | sed 's/^/    /'
nst=$(l2_value nstype) rs=$(l2_value region_size)
[[ $nst == 4 ]] && pass "blank: guest region is label-less until labels are initialised (nstype=4)" ||
	fail "blank: guest nstype='$nst' (want 4)"
[[ $rs == $((GIB - (128 << 10))) ]] && pass "blank: guest pmem is 1G - 128K ($rs)" || fail "blank: guest region size '$rs'"
out=$("$PMCTL" label check "$F" 2>&1)
[[ $? -eq 1 ]] && grep -q '\[blank\]' <<<"$out" && pass "blank: area still blank afterwards (pmctl label check: [blank])" ||
	fail "blank: area not blank afterwards: $out"
rm -f "$F"

echo "=== plain: zero backend without label-size (control for the nolabel warning)"
F=$work/nv/plain.img
truncate -s 1G "$F"
run_pmvm "$F" ""
rc=$L2_RC
show_stderr
[[ $rc -eq 0 ]] && pass "plain: pmvm started and exited 0" || fail "plain: pmvm exit $rc (want 0)"
grep -qiE 'warn|label-size' "$L2_STDERR" && fail "plain: unexpected warning: $(grep -iE 'warn|label-size' "$L2_STDERR" | head -n 2)" ||
	pass "plain: no warning on stderr"
[[ $(l2_value nstype) == 4 ]] && pass "plain: guest region is label-less (nstype=4)" || fail "plain: guest nstype='$(l2_value nstype)' (want 4)"
rm -f "$F"

umount "$work/nv" 2>/dev/null
rm -rf "$work"
summary
