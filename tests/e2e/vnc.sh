#!/bin/bash
# hib: HIB_TIMEOUT=900
# E2E: `-vnc` as the seed uses it (runs inside L1). QEMU and pmvm, same guest, driven only
# through VNC with the static client vncprobe (harness/vncprobe.c; L1 has no Python):
#  - a command typed on the serial console (Ctrl-Alt-3) runs in the guest's shell and its
#    output is in the serial log (for pmvm also on the VNC screen, console 1 and 3);
#  - Ctrl-Alt-2 opens the monitor: `info memory-devices` lists the cold-plugged NVDIMM;
#    `object_add` + `device_add` typed there hot-add a second one, and the guest sees
#    /dev/pmem1 (checked by a command typed into its shell); `quit` ends the VMM with status 0.
# QEMU reads its monitor and serial text through `-chardev vc,logfile=`: vncprobe can match
# only pmvm's console font (harness/vncfont.h), so pmvm's monitor answers are checked on the
# screen. QEMU needs its en-us keymap for -vnc (stage.sh adds it to L1's /opt/share/qemu);
# it gets `-vga std` (so Ctrl-Alt-1 is the VGA, 2 the monitor, 3 the serial port:
# QEMU's default layout) and `-nodefaults` (L1 has no NIC ROMs). pmvm gets `-serial file:` so
# the serial log exists; its VNC consoles 1 and 3 show the same text.
. "${E2E_LIB:-$HIB_OPT/e2e/lib.sh}"

work=$(mktemp -d)
probe=${VNCPROBE:-$HIB_OPT/bin/vncprobe}
[[ -x $probe ]] || { fail "no vncprobe at $probe (tests/e2e/stage.sh builds it)"; summary; exit 1; }

cat >"$work/l2.sh" <<'X'
#!/bin/sh
# A tiny shell on the serial port: each line typed through VNC is run.
exec </dev/ttyS0
echo "VNC-SHELL-READY"
while read -r line; do eval "$line"; done
X
mk-l2-initrd "$work/l2.sh" "$work/initrd.img" || { fail "mk-l2-initrd"; summary; exit 1; }

# wait_log FILE PATTERN [TENTHS]: wait until FILE contains PATTERN.
wait_log() {
	local i
	for i in $(seq 1 "${3:-600}"); do
		[[ -f $1 ]] && tr -d '\r' <"$1" | grep -q -- "$2" && return 0
		sleep 0.1
	done
	return 1
}

# vnc STEP...: vncprobe on this VMM's VNC socket.
vnc() { "$probe" -t 30 "unix:$sock" "$@"; }

for vmm in qemu pmvm; do
	bin=$(vmm_bin "$vmm")
	sock=$work/$vmm.vnc
	ser=$work/$vmm.serial
	mon=$work/$vmm.monitor
	rm -f "$work"/nv*.img "$ser" "$mon"
	if [[ $vmm == qemu ]]; then
		args=(-L "$HIB_OPT/share/qemu" -nodefaults -vga std
			-chardev "vc,id=mon0,logfile=$mon" -mon chardev=mon0
			-chardev "vc,id=ser0,logfile=$ser" -serial chardev:ser0)
	else
		args=(-serial "file:$ser")
	fi
	timeout 400 "$bin" -machine pc,accel=kvm,nvdimm=on -cpu host -m 512M,slots=2,maxmem=4G -smp 1 \
		-object "memory-backend-file,id=mem0,share=on,mem-path=$work/nv0.img,size=256M" \
		-device nvdimm,id=nv0,memdev=mem0 \
		-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/initrd.img" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1" "${args[@]}" -vnc "unix:$sock" \
		</dev/null >"$work/$vmm.out" 2>"$work/$vmm.err" &
	vpid=$!
	if ! wait_log "$ser" VNC-SHELL-READY 1800; then
		fail "$vmm: the guest's shell never came up"
		tail -n 5 "$work/$vmm.err" "$ser" 2>/dev/null | sed 's/^/    /'
		kill "$vpid" 2>/dev/null
		wait "$vpid" 2>/dev/null
		continue
	fi
	pass "$vmm: the guest booted with its serial port and -vnc unix:"

	# Typed on the serial console; $((6*7)) proves the shell ran it (its echo has no 42).
	vnc console=3 type='echo VNC-TYPED-$((6*7))\n' >/dev/null
	wait_log "$ser" VNC-TYPED-42 300 && pass "$vmm: a command typed through VNC ran in the guest (serial log)" ||
		fail "$vmm: VNC-TYPED-42 not in the serial log"
	if [[ $vmm == pmvm ]]; then
		vnc find=VNC-TYPED-42 console=1 find=VNC-TYPED-42 | grep -c FOUND | grep -qx 2 &&
			pass "pmvm: the output is on VNC consoles 3 and 1" || fail "pmvm: output not on the VNC screen"
	fi

	# The monitor on Ctrl-Alt-2.
	if [[ $vmm == pmvm ]]; then
		vnc console=2 find='(qemu)' type='info memory-devices\n' find='Memory device [nvdimm]: "nv0"' |
			grep -q 'FOUND: Memory' && pass "pmvm: Ctrl-Alt-2 monitor: info memory-devices lists nv0" ||
			fail "pmvm: info memory-devices on the VNC monitor did not show nv0"
	else
		vnc console=2 type='info memory-devices\n' >/dev/null
		wait_log "$mon" 'Memory device \[nvdimm\]: "nv0"' 300 &&
			pass "qemu: Ctrl-Alt-2 monitor: info memory-devices lists nv0" ||
			fail "qemu: info memory-devices on the VNC monitor did not show nv0"
	fi

	# Hot plug typed on the monitor console, the seed's lines.
	vnc console=2 \
		type="object_add memory-backend-file,id=mem1,share=on,mem-path=$work/nv1.img,size=256M\\n" sleep=500 \
		type='device_add nvdimm,id=nv1,memdev=mem1\n' sleep=500 >/dev/null
	vnc console=3 \
		type='i=0; while [ ! -b /dev/pmem1 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; [ -b /dev/pmem1 ] && echo VNC-PMEM1-$((1+1))-OK\n' >/dev/null
	wait_log "$ser" VNC-PMEM1-2-OK 900 && pass "$vmm: object_add + device_add on the VNC monitor: the guest sees /dev/pmem1" ||
		fail "$vmm: the guest did not see /dev/pmem1 after the hot plug"
	if [[ $vmm == pmvm ]]; then
		vnc console=2 type='info memory-devices\n' find='Memory device [nvdimm]: "nv1"' find='hotplugged: true' |
			grep -c FOUND | grep -qx 2 && pass "pmvm: info memory-devices shows nv1 hot-plugged" ||
			fail "pmvm: info memory-devices did not show nv1 hot-plugged"
		vnc type='info vnc\n' find="Server: :$sock (unix)" | grep -q FOUND &&
			pass "pmvm: info vnc shows the server" || fail "pmvm: info vnc"
	else
		vnc console=2 type='info memory-devices\n' >/dev/null
		wait_log "$mon" 'Memory device \[nvdimm\]: "nv1"' 300 && pass "qemu: info memory-devices shows nv1" ||
			fail "qemu: info memory-devices did not show nv1"
	fi

	vnc console=2 type='quit\n' >/dev/null
	wait "$vpid"
	rc=$?
	[[ $rc -eq 0 ]] && pass "$vmm: quit on the VNC monitor ends it with status 0" ||
		{ fail "$vmm: exit status $rc"; tail -n 5 "$work/$vmm.err" | sed 's/^/    /'; }
	echo "--- $vmm serial (tail):"
	tr -d '\r' <"$ser" | tail -n 6 | sed 's/^/  /'
	[[ -s $work/$vmm.err ]] && { echo "--- $vmm stderr:"; head -n 5 "$work/$vmm.err" | sed 's/^/  /'; }
done
rm -rf "$work"
summary
