#!/bin/bash
# hib: HIB_NVDIMMS=1G,1G HIB_TIMEOUT=600
# E2E test of pmctl's VM manager (runs inside the harness's L1, which has two emulated 1 GiB
# NVDIMMs): a devdax namespace assigned to a VM with `pmctl vm attach`, booted with
# `pmctl vm start` (pmvm daemonized, QMP socket, pidfile and serial console in the state
# directory); the L2 guest prints its region size and powers off. Checks: the guest's region
# size equals what `vm show --json` predicted, pmvm exited, the same device is refused for a
# second VM, `vm status` answers over QMP, `vm stop --force` ends a running VM. A VM created
# with --hotplug-room gets a file NVDIMM attached while it runs (QMP object_add/device_add):
# its guest, which booted without NVDIMMs, finds region0 of the predicted size. Results: PASS/FAIL lines, SUMMARY.
set -uo pipefail
. "${E2E_LIB:-${HIB_OPT:-/opt}/e2e/lib.sh}"

PMCTL=${PMCTL:-${HIB_OPT:-/opt}/bin/pmctl}
PMVM_BIN=$(vmm_bin pmvm)
OUT=${HIB_OUT:-$(mktemp -d)}
work=$(mktemp -d)
export PMCTL_STATE_DIR=$work/state

if [[ ! -x $PMCTL || ! -x $PMVM_BIN ]]; then
	fail "binaries missing: pmctl at $PMCTL, pmvm at $PMVM_BIN (tests/e2e/run.sh stages both)"
	summary
	exit
fi

# wait_stopped NAME SECONDS: until `vm status` says stopped (exit 1); returns 1 on timeout.
wait_stopped() {
	local i
	for ((i = 0; i < $2 * 5; i++)); do
		"$PMCTL" vm status "$1" >/dev/null 2>&1
		[[ $? -eq 1 ]] && return 0
		sleep 0.2
	done
	return 1
}

quiet() { "$@" >"$work/quiet.out" 2>&1 || { sed 's/^/    /' "$work/quiet.out" | tail -n 8; return 1; }; }

echo "=== a devdax namespace on region0"
check "init labels" quiet sh -c 'ndctl disable-region all && ndctl init-labels -f all && ndctl enable-region all'
check "create devdax align 2M on region0" quiet ndctl create-namespace -r region0 -m devdax -a 2M
dax=$(ls /dev/dax* 2>/dev/null | head -n 1)
[[ -c $dax ]] && pass "device DAX node $dax" || fail "no /dev/dax* after create-namespace"

echo "=== L2 initrd: print the region size, power off"
cat >"$work/l2.sh" <<'L2EOF'
i=0
while [ ! -r /sys/bus/nd/devices/region0/size ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
echo "PMEM region_size=$(cat /sys/bus/nd/devices/region0/size 2>/dev/null || echo none)"
modprobe virtio_mmio; modprobe virtio_blk
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
echo "VDA sectors=$(cat /sys/block/vda/size 2>/dev/null || echo none) head=$(head -c 10 /dev/vda 2>/dev/null)"
L2EOF
check "mk-l2-initrd" quiet mk-l2-initrd "$work/l2.sh" "$work/l2.img"
truncate -s 16M "$work/data.raw"
printf 'PMCTL-DISK' | dd of="$work/data.raw" conv=notrunc 2>/dev/null

echo "=== define, attach, show"
run_saved create "$PMCTL" vm create l2 --memory 256M --cpus 1 --kernel "$HIB_OPT/l2/vmlinux" \
	--initrd "$work/l2.img" --append "console=ttyS0 quiet loglevel=3" --disk "$work/data.raw"
expect_rc create 0
run_saved attach "$PMCTL" vm attach l2 "$dax"
expect_rc attach 0
sed 's/^/    /' "$work/attach.out"
grep -q 'persistence not guaranteed' "$work/attach.err" && fail "devdax attach warned about persistence" ||
	pass "devdax attach: no persistence warning"
run_saved show "$PMCTL" vm show l2 --json
expect_rc show 0
json_flat "$work/show.out" >"$work/show.flat"
predicted=$(sed -n 's/^\.nvdimms\[0\]\.guest_size=//p' "$work/show.flat")
gpa=$(sed -n 's/^\.nvdimms\[0\]\.gpa=//p' "$work/show.flat")
lsize=$(sed -n 's/^\.nvdimms\[0\]\.label_size=//p' "$work/show.flat")
if [[ -n $predicted && $predicted -gt 0 && $((predicted % (128 << 20))) -eq 0 && $lsize == 131072 && -n $gpa ]]; then
	pass "show: guest size $predicted (whole 128 MiB blocks), label $lsize, address $gpa"
else fail "show: guest_size '$predicted' label_size '$lsize' gpa '$gpa'"; fi
"$PMCTL" vm show l2 | sed 's/^/    /'
"$PMCTL" vm show l2 | grep -q "^  disk vda: .*/data.raw\$" && pass "show lists the disk as vda" ||
	fail "show does not list the disk as vda"

echo "=== one VM per device"
run_saved create2 "$PMCTL" vm create other --memory 256M --kernel "$HIB_OPT/l2/vmlinux"
expect_rc create2 0
run_saved attach2 "$PMCTL" vm attach other "$dax"
expect_rc attach2 1
grep -q "already assigned to VM 'l2'" "$work/attach2.err" && pass "second VM refused: $(head -c 120 "$work/attach2.err")" ||
	fail "second VM: no 'already assigned' message"

echo "=== start: the guest sees the predicted size, pmvm exits after the guest powers off"
run_saved args "$PMCTL" vm args l2
expect_rc args 0
sed 's/^/    /' "$work/args.out"
run_saved start "$PMCTL" vm start l2 --pmvm "$PMVM_BIN"
expect_rc start 0
cat "$work/start.out"
pid=$(cat "$PMCTL_STATE_DIR/l2.pid" 2>/dev/null)
if kill -0 "${pid:-0}" 2>/dev/null; then
	# Usually still booting; if it already powered off, this check is skipped.
	run_saved status-running "$PMCTL" vm status l2
	if kill -0 "$pid" 2>/dev/null; then
		[[ $RC -eq 0 ]] && grep -q 'QMP status' "$work/status-running.out" &&
			pass "status while running: $(cat "$work/status-running.out")" ||
			fail "status while running: exit $RC: $(cat "$work/status-running.out" "$work/status-running.err")"
	fi
fi
if wait_stopped l2 60; then pass "pmvm exited after the guest powered off"; else
	fail "pmvm still running after 60 s; stopping it"
	"$PMCTL" vm stop l2 --force
fi
kill -0 "${pid:-0}" 2>/dev/null && fail "pid $pid still alive" || pass "pid ${pid:-?} gone"
cp "$PMCTL_STATE_DIR/l2.console" "$OUT/l2.console" 2>/dev/null
got=$(l2_value region_size "$PMCTL_STATE_DIR/l2.console")
if [[ -n $got && $got == "$predicted" ]]; then pass "guest region0 size $got == vm show guest_size"; else
	fail "guest region0 size '${got:-none}', vm show predicted '$predicted'"
	tail -n 15 "$PMCTL_STATE_DIR/l2.console" 2>/dev/null | sed 's/^/    /'
fi
if tr -d '\r' <"$PMCTL_STATE_DIR/l2.console" | grep -q '^VDA sectors=32768 head=PMCTL-DISK$'; then
	pass "vm create --disk: the guest reads the image as /dev/vda"
else
	fail "vm create --disk: no /dev/vda with the image's bytes"
	grep -a 'VDA' "$PMCTL_STATE_DIR/l2.console" | sed 's/^/    /'
fi

echo "=== attach to a running VM: hot-added, the guest sees it without a reboot"
cat >"$work/l2-hot.sh" <<'L2EOF'
echo "HOT-WAITING"
i=0
while [ ! -r /sys/bus/nd/devices/region0/size ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done
echo "HOT region_size=$(cat /sys/bus/nd/devices/region0/size 2>/dev/null || echo none) waited=$i"
L2EOF
check "mk-l2-initrd (hot)" quiet mk-l2-initrd "$work/l2-hot.sh" "$work/l2-hot.img"
mkdir -p "$work/nvfiles" && mount -t tmpfs -o size=700M tmpfs "$work/nvfiles"
truncate -s 640M "$work/nvfiles/hot.img"
run_saved create-hot "$PMCTL" vm create hot --memory 256M --kernel "$HIB_OPT/l2/vmlinux" \
	--initrd "$work/l2-hot.img" --append "console=ttyS0 quiet loglevel=3" --hotplug-room 2G
expect_rc create-hot 0
run_saved start-hot "$PMCTL" vm start hot --pmvm "$PMVM_BIN"
expect_rc start-hot 0
for ((i = 0; i < 600; i++)); do grep -q HOT-WAITING "$PMCTL_STATE_DIR/hot.console" 2>/dev/null && break; sleep 0.1; done
grep -q HOT-WAITING "$PMCTL_STATE_DIR/hot.console" && pass "hot: guest running, no NVDIMM yet" || fail "hot: guest never got to its script"
run_saved attach-hot "$PMCTL" vm attach hot "$work/nvfiles/hot.img"
expect_rc attach-hot 0
cat "$work/attach-hot.out"
grep -q 'hot-added to the running VM' "$work/attach-hot.out" && pass "attach says hot-added" || fail "attach did not say hot-added"
hot_pred=$("$PMCTL" vm show hot --json | json_flat | sed -n 's/^\.nvdimms\[0\]\.guest_size=//p')
wait_stopped hot 120 && pass "hot: pmvm exited after the guest powered off" ||
	{ fail "hot: still running after 120 s"; "$PMCTL" vm stop hot --force; }
got=$(l2_value region_size "$PMCTL_STATE_DIR/hot.console")
if [[ -n $got && $got == "$hot_pred" ]]; then pass "hot: the guest found region0 of $got bytes == vm show guest_size (no reboot)"; else
	fail "hot: guest region0 '${got:-none}', vm show predicted '${hot_pred:-?}'"
	tail -n 10 "$PMCTL_STATE_DIR/hot.console" 2>/dev/null | sed 's/^/    /'
fi
run_saved args-hot "$PMCTL" vm args hot
grep -q "mem-path=$work/nvfiles/hot.img" "$work/args-hot.out" && pass "hot: the next start passes the device on the command line" ||
	fail "hot: vm args lacks the hot-added device"
umount "$work/nvfiles" 2>/dev/null

echo "=== stop --force ends a running VM (other: no initrd, its kernel waits for a root fs)"
run_saved start-other "$PMCTL" vm start other
expect_rc start-other 0
for ((i = 0; i < 50; i++)); do [[ -S $PMCTL_STATE_DIR/other.qmp ]] && break; sleep 0.1; done
run_saved status-other "$PMCTL" vm status other
expect_rc status-other 0
cat "$work/status-other.out"
run_saved stop "$PMCTL" vm stop other --force
expect_rc stop 0
cat "$work/stop.out"
grep -q '(quit)' "$work/stop.out" && pass "stop --force used QMP quit" || fail "stop --force: $(cat "$work/stop.out")"
wait_stopped other 10 && pass "other stopped" || fail "other still running after stop --force"

echo "=== detach, delete"
run_saved detach "$PMCTL" vm detach l2 "$dax"
expect_rc detach 0
run_saved attach3 "$PMCTL" vm attach other "$dax"
expect_rc attach3 0
run_saved delete "$PMCTL" vm delete l2
expect_rc delete 0
summary
