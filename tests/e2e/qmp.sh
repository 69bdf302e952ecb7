#!/bin/bash
# hib: HIB_TIMEOUT=1500
# QMP end to end with the real Python client `qemu.qmp` (PyPI), staged into L1 by stage.sh
# (tests/e2e/qmp/stage-hook.sh: python3 + the stdlib modules it needs + qemu.qmp under
# $HIB_OPT/python). Same scenario under QEMU (reference, results printed as INFO) and pmvm:
# -m 512M,slots=2,maxmem=3G (room for exactly two memory devices; both VMMs count devices
# only, as QEMU does), one cold
# labelled NVDIMM, `-qmp unix:...,server=on,wait=off`;
# tests/e2e/qmp/qmp_e2e.py connects and negotiates, checks query-memory-devices (QEMU's fields),
# refuses an NVDIMM past maxmem, hot-adds a labelled NVDIMM (object-add + device_add), waits for
# the guest to see region1 and create an fsdax namespace (/dev/pmem1), checks the listing
# (hotplugged=true), refuses one past slots, and checks the guest still runs. pmvm only: the
# hostile raw-socket clients (before negotiation, malformed JSON, unknown command, wrong
# argument types, a 100 MB message, disconnects mid-message) while a second qemu.qmp client on
# `-qmp tcp:` keeps working, then system_powerdown: POWERDOWN, the guest's power button, SHUTDOWN,
# pmvm exits 0. Finally the two query-memory-devices answers are compared field by field.
# Knob: QMP_VMMS (default "qemu pmvm"; pass it with HIB_PASS_ENV=QMP_VMMS).
. "${E2E_LIB:-$HIB_OPT/e2e/lib.sh}"

qdir=$HIB_OPT/e2e/qmp
PY=$HIB_OPT/python/bin/python3
export PYTHONHOME=$HIB_OPT/python PYTHONPATH=$HIB_OPT/python/pkgs PYTHONDONTWRITEBYTECODE=1
if ! out=$("$PY" -c 'import qemu.qmp, sys; print(sys.version.split()[0], qemu.qmp.__file__)' 2>&1); then
	fail "python3 + qemu.qmp staged in L1 (stage.sh -> tests/e2e/qmp/stage-hook.sh): $out"
	summary
	exit 1
fi
pass "python $out runs in L1"

ip link set lo up 2>/dev/null # for -qmp tcp:127.0.0.1

work=$(mktemp -d)
mkdir -p "$work/l2x/l2"
cp "$qdir"/l2mods/*.ko "$work/l2x/l2/" 2>/dev/null || echo "INFO: no L2 button/evdev modules staged; powerdown cannot reach the guest"
mk-l2-initrd "$qdir/l2-hotplug.sh" "$work/initrd.img" "$work/l2x" || { fail "mk-l2-initrd"; summary; exit 1; }

# feed PYOUT: turn the client's PASS:/FAIL: lines into lib.sh results, echo the rest.
feed() {
	local l
	while IFS= read -r l; do
		case $l in
		PASS:*) pass "${l#PASS: }" ;;
		FAIL:*) fail "${l#FAIL: }" ;;
		*) echo "$l" ;;
		esac
	done <"$1"
}

# run_vm VMM: boot with one cold NVDIMM and QMP sockets, drive it with qmp_e2e.py.
run_vm() {
	local vmm=$1 bin extra=() full=() tcp=() slots=2
	bin=$(vmm_bin "$vmm")
	local d=$work/$vmm
	mkdir -p "$d"
	local sock=$d/qmp.sock console=$d/console
	if [[ $vmm == qemu ]]; then
		extra=(-L "$HIB_OPT/share/qemu" -nodefaults -display none)
	else
		full=(--full --tcp 127.0.0.1:4445)
		tcp=(-qmp tcp:127.0.0.1:4445,server=on,wait=off)
	fi
	[[ -x $bin ]] || { fail "$vmm: $bin not found"; return; }
	timeout 900 "$bin" -machine pc,accel=kvm,nvdimm=on -cpu host -m "512M,slots=$slots,maxmem=3G" -smp 2 \
		-object "memory-backend-file,id=mem1,share=on,mem-path=$d/nv0.img,size=1G" \
		-device nvdimm,id=nv1,memdev=mem1,label-size=128K \
		-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/initrd.img" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1" -serial "file:$console" \
		-qmp "unix:$sock,server=on,wait=off" "${tcp[@]}" -no-reboot "${extra[@]}" \
		</dev/null >"$d/stdout" 2>"$d/stderr" &
	local pid=$!
	"$PY" "$qdir/qmp_e2e.py" run --vmm "$vmm" --sock "$sock" --console "$console" --workdir "$d" \
		--out "$d/devices.json" --pid "$pid" "${full[@]}" >"$d/py.out" 2>&1
	echo "=== $vmm: qemu.qmp client"
	feed "$d/py.out"
	local i
	for i in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && { echo "INFO: $vmm still running after the client finished; killing"; kill "$pid"; }
	wait "$pid"
	local rc=$?
	echo "--- $vmm console (HP/PWR lines, tail):"
	tr -d '\r' <"$console" | grep -E 'HP-|PWR|namespace|"dev"|error|Error' | head -20 | sed 's/^/  /'
	tr -d '\r' <"$console" | tail -n 4 | sed 's/^/  /'
	if [[ $vmm == pmvm ]]; then
		[[ $rc -eq 0 ]] && pass "pmvm exited with status 0 after the guest powered off" ||
			{ fail "pmvm exit status $rc"; tail -n 8 "$d/stderr" | sed 's/^/  /'; }
		check "pmvm: guest finished its script (L2-RC=0)" grep -q 'L2-RC=0' "$console" ||
			{ echo "  pmvm stderr (tail):"; grep -v '^pmvm: nvdimm' "$d/stderr" | tail -n 8 | sed 's/^/  /'; }
	else
		echo "INFO: qemu exit status $rc"
	fi
	cp "$console" "$HIB_OUT/qmp-$vmm.console" 2>/dev/null
	cp "$d/py.out" "$HIB_OUT/qmp-$vmm.client" 2>/dev/null
}

for vmm in ${QMP_VMMS:-qemu pmvm}; do run_vm "$vmm"; done
if [[ " ${QMP_VMMS:-qemu pmvm} " != *" qemu "* || " ${QMP_VMMS:-qemu pmvm} " != *" pmvm "* ]]; then
	echo "INFO: QMP_VMMS=${QMP_VMMS}: no QEMU/pmvm comparison"
elif [[ -s $work/qemu/devices.json && -s $work/pmvm/devices.json ]]; then
	echo "=== query-memory-devices: QEMU vs pmvm"
	"$PY" "$qdir/qmp_e2e.py" compare "$work/qemu/devices.json" "$work/pmvm/devices.json" >"$work/cmp.out" 2>&1
	feed "$work/cmp.out"
else
	fail "no query-memory-devices answer to compare (qemu: $(test -s "$work/qemu/devices.json" && echo yes || echo no), pmvm: $(test -s "$work/pmvm/devices.json" && echo yes || echo no))"
fi
rm -rf "$work"
summary
