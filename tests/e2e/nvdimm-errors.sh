#!/bin/bash
# hib: HIB_TIMEOUT=600
# E2E NVDIMM configuration checks (runs inside the harness's L1; no guest boots: every case
# fails, or is known to start, at pmvm's start-up). Each refusal case expects a non-zero exit
# and an error message matching a pattern that names what to change; each acceptance case
# expects pmvm to be still running (with -S, vCPUs stopped) after NV_START_WAIT seconds.
# The same arguments are given to QEMU for reference ("qemu: ..." lines, informational:
# pmvm is meant to refuse what QEMU refuses, and may refuse more where QEMU loses data).
# Settings: NV_START_WAIT (s, default 4).
set -uo pipefail
. "${E2E_LIB:-${HIB_OPT:-/opt}/e2e/lib.sh}"

PMVM_BIN=$(vmm_bin pmvm)
QEMU_BIN=$(vmm_bin qemu)
KERNEL=${HIB_OPT:-/opt}/l2/vmlinux
WAIT=${NV_START_WAIT:-4}
w=$(mktemp -d)
mount -t tmpfs tmpfs "$w" || true
if [[ ! -x $PMVM_BIN ]]; then
	fail "pmvm binary missing at $PMVM_BIN"
	summary
	exit
fi

# try VMM OUTPREFIX ARGS...: run the VMM with ARGS (plus -S and a kernel, stdio quiet) for at
# most WAIT seconds; exit status in TRY_RC (124 = still running = started), stderr in
# OUTPREFIX.err.
try() {
	local vmm=$1 pre=$2
	shift 2
	local bin=$PMVM_BIN extra=()
	[[ $vmm == qemu ]] && bin=$QEMU_BIN extra=(-L "${HIB_OPT:-/opt}/share/qemu" -nodefaults)
	local wait=$WAIT
	[[ $vmm == qemu ]] && wait=$((WAIT * 2))
	timeout -k 2 "$wait" "$bin" "${extra[@]}" "$@" -S -display none -serial none -kernel "$KERNEL" \
		</dev/null >"$pre.out" 2>"$pre.err"
	TRY_RC=$?
}

# first_msg FILE: first line of stderr that is not a QEMU deprecation warning.
first_msg() { grep -v -E 'deprecated|Please use' "$1" | sed -n '1p'; }

n=0
# refuse NAME REGEX SETUP ARGS...: SETUP is a function name (or :) called with the case's dir
# and VMM name before each run.
refuse() {
	local name=$1 re=$2 setup=$3
	shift 3
	n=$((n + 1))
	local d
	for vmm in pmvm qemu; do
		d=$w/c$n/$vmm
		mkdir -p "$d"
		"$setup" "$d" "$vmm" || { fail "$name: setup failed"; return; }
		# the case's arguments refer to @D@ for its directory
		try "$vmm" "$d/run" "${@//@D@/$d}"
		local msg
		msg=$(first_msg "$d/run.err")
		if [[ $vmm == qemu ]]; then
			if [[ $TRY_RC -eq 124 ]]; then echo "    qemu: no exit within $((WAIT * 2))s (accepted)"; else
				echo "    qemu: exit $TRY_RC: $msg"; fi
			continue
		fi
		if [[ $TRY_RC -ne 0 && $TRY_RC -ne 124 ]] && grep -qiE -- "$re" "$d/run.err"; then
			pass "$name: exit $TRY_RC: $msg"
		elif [[ $TRY_RC -eq 124 ]]; then
			fail "$name: pmvm started (still running after ${WAIT}s); want an error matching /$re/"
			sed 's/^/    stderr: /' "$d/run.err"
		else
			fail "$name: exit $TRY_RC, message does not match /$re/: $msg"
			sed 's/^/    stderr: /' "$d/run.err"
		fi
		[[ -n ${AFTER:-} ]] && "$AFTER" "$d" "$name"
	done
}

# accept NAME CHECK SETUP ARGS...: pmvm must start; CHECK (function or :) gets the dir.
accept() {
	local name=$1 check=$2 setup=$3
	shift 3
	n=$((n + 1))
	local d
	for vmm in pmvm qemu; do
		d=$w/c$n/$vmm
		mkdir -p "$d"
		"$setup" "$d" "$vmm" || { fail "$name: setup failed"; return; }
		try "$vmm" "$d/run" "${@//@D@/$d}"
		if [[ $vmm == qemu ]]; then
			if [[ $TRY_RC -eq 124 ]]; then echo "    qemu: no exit within $((WAIT * 2))s (accepted)"; else echo "    qemu: exit $TRY_RC: $(first_msg "$d/run.err")"; fi
			continue
		fi
		# started = still running at the deadline AND past every check: the start-up line
		# pmvm prints per NVDIMM after the configuration and backend checks
		if [[ $TRY_RC -eq 124 ]] && grep -q 'nvdimm n1:' "$d/run.err"; then
			pass "$name: pmvm started ($(grep -m1 'nvdimm n1:' "$d/run.err" | cut -c1-90)...)"
			"$check" "$d" "$name"
		else
			fail "$name: pmvm exit $TRY_RC, want it to start: $(first_msg "$d/run.err")"
			sed 's/^/    stderr: /' "$d/run.err"
		fi
	done
}

M=(-machine pc,accel=kvm,nvdimm=on -cpu host)
# nv VAR N [backend-extra] [device-extra]: VAR = one backend (NV_SZ, default 256M) + NVDIMM.
# (No process substitution: L1 has no /dev/fd.)
nv() {
	local -n _out=$1
	_out=(-object "memory-backend-file,id=m$2,share=on,mem-path=@D@/nv$2.img,size=${NV_SZ:-256M}${3:+,$3}"
		-device "nvdimm,id=n$2,memdev=m$2${4:+,$4}")
}
nv NV1 1
nv NV2 2
nv NV1L 1 "" label-size=128K

echo "=== refused configurations"
refuse "slots too small (slots=1, 2 NVDIMMs)" 'slot' : "${M[@]}" -m 512M,slots=1,maxmem=4G "${NV1[@]}" "${NV2[@]}"
refuse "no maxmem (no memory-device window)" 'maxmem' : "${M[@]}" -m 512M "${NV1[@]}"
refuse "maxmem too small (512M RAM + 256M NVDIMM, maxmem=600M)" 'maxmem' : "${M[@]}" -m 512M,slots=4,maxmem=600M "${NV1[@]}"
refuse "slot= out of range (slot=4 with slots=4)" 'slot' : "${M[@]}" -m 512M,slots=4,maxmem=4G \
	"${NV1[0]}" "${NV1[1]}" -device nvdimm,id=n1,memdev=m1,slot=4
nv X 1 "" label-size=64K
refuse "label-size=64K < 128K" 'label-size|0x20000|128' : "${M[@]}" -m 512M,slots=4,maxmem=4G "${X[@]}"
NV_SZ=192K nv X 1 "" label-size=128K
refuse "backend 192K < label-size 128K + 128K" 'size|small' : "${M[@]}" -m 512M,slots=4,maxmem=4G "${X[@]}"
NV_SZ=128K nv X 1 "" label-size=128K
refuse "backend 128K = label-size (no pmem left)" 'size|small' : "${M[@]}" -m 512M,slots=4,maxmem=4G "${X[@]}"
NV_SZ=1152K nv X 1 align=2M label-size=128K
refuse "align=2M leaves no pmem (size 1152K, label 128K)" 'size|small|align' : "${M[@]}" -m 512M,slots=4,maxmem=4G "${X[@]}"
refuse "duplicate device id" 'duplicate|n1|already' : "${M[@]}" -m 512M,slots=4,maxmem=4G "${NV1[@]}" \
	"${NV2[0]}" "${NV2[1]}" -device nvdimm,id=n1,memdev=m2
refuse "duplicate object id" 'duplicate|m1|already' : "${M[@]}" -m 512M,slots=4,maxmem=4G "${NV1[@]}" \
	-object "memory-backend-file,id=m1,share=on,mem-path=@D@/other.img,size=256M"
refuse "memdev used twice" 'm1|use|memdev' : "${M[@]}" -m 512M,slots=4,maxmem=4G "${NV1[@]}" -device nvdimm,id=n2,memdev=m1
refuse "memdev names no object" 'nope|memdev|not found|no such' : "${M[@]}" -m 512M,slots=4,maxmem=4G -device nvdimm,id=n1,memdev=nope
refuse "mem-path directory missing" 'no-such-dir|directory|No such file' : "${M[@]}" -m 512M,slots=4,maxmem=4G \
	-object memory-backend-file,id=m1,share=on,mem-path=@D@/no-such-dir/nv.img,size=256M -device nvdimm,id=n1,memdev=m1

# an existing file on a read-only mount: share=on needs write access (root ignores mode bits)
ro_setup() {
	mkdir -p "$1/ro" && mount -t tmpfs -o size=300M tmpfs "$1/ro" && truncate -s 256M "$1/ro/nv1.img" &&
		mount -o remount,ro "$1/ro"
}
refuse "unwritable mem-path, share=on (file on a read-only mount)" 'read-only|writ|permission|EROFS|Read-only' ro_setup \
	"${M[@]}" -m 512M,slots=4,maxmem=4G -object memory-backend-file,id=m1,share=on,mem-path=@D@/ro/nv1.img,size=256M \
	-device nvdimm,id=n1,memdev=m1
# the same through a read-only bind mount of one file
robind_setup() {
	truncate -s 256M "$1/rw.img" && touch "$1/bound.img" && mount --bind "$1/rw.img" "$1/bound.img" &&
		mount -o remount,bind,ro "$1/bound.img" && ! : 2>/dev/null >>"$1/bound.img"
}
refuse "unwritable mem-path, share=on (read-only bind mount of the file)" 'read-only|writ|permission|EROFS|Read-only' robind_setup \
	"${M[@]}" -m 512M,slots=4,maxmem=4G -object memory-backend-file,id=m1,share=on,mem-path=@D@/bound.img,size=256M \
	-device nvdimm,id=n1,memdev=m1
refuse "nvdimm without -machine nvdimm=on" 'nvdimm=on' : -machine pc,accel=kvm -cpu host -m 512M,slots=4,maxmem=4G "${NV1[@]}"

short_setup() { head -c 1048576 /dev/urandom >"$1/nv1.img"; }
refuse "non-empty backend file shorter than size= (1M file, size=256M)" 'small|short|size' short_setup \
	"${M[@]}" -m 512M,slots=4,maxmem=4G "${NV1[@]}"

# foreign data in the label area: random bytes in the last 256K of a 256M backend
foreign_setup() {
	truncate -s 256M "$1/nv1.img" &&
		dd if=/dev/urandom of="$1/nv1.img" bs=128K count=2 seek=2046 conv=notrunc 2>/dev/null &&
		sha256sum "$1/nv1.img" | cut -d' ' -f1 >"$1/sum.before"
}
foreign_after() {
	if [[ $(sha256sum "$1/nv1.img" | cut -d' ' -f1) == "$(cat "$1/sum.before")" ]]; then
		pass "$2: backend file unchanged after the refusal"
	else
		fail "$2: backend file CHANGED although pmvm refused to start"
	fi
}
AFTER=foreign_after refuse "label area holds foreign data (label-size=128K)" 'force-label-area' foreign_setup \
	"${M[@]}" -m 512M,slots=4,maxmem=4G "${NV1L[@]}"

nv X 1 pmem=on
refuse "-require-persistence with pmem=on on a tmpfs file" 'persist' : "${M[@]}" -m 512M,slots=4,maxmem=4G "${X[@]}" \
	-require-persistence

echo "=== accepted configurations"
forced_check() {
	grep -q 'forced' "$1/run.err" && pass "$2: pmvm warns that it overwrites (forced)" ||
		fail "$2: no '(forced)' warning on stderr: $(first_msg "$1/run.err")"
}
accept "foreign label area with -force-label-area" forced_check foreign_setup \
	"${M[@]}" -m 512M,slots=4,maxmem=4G "${NV1L[@]}" -force-label-area
accept "slots=2 with 2 NVDIMMs (QEMU: boot RAM takes no slot)" : : \
	"${M[@]}" -m 512M,slots=2,maxmem=4G "${NV1[@]}" "${NV2[@]}"
created_check() {
	local s
	s=$(stat -c %s "$1/nv1.img" 2>/dev/null)
	[[ $s == 268435456 ]] && pass "$2: missing backend file created with size 268435456" ||
		fail "$2: backend file size '${s}' (want 268435456)"
}
accept "missing backend file is created" created_check : "${M[@]}" -m 512M,slots=4,maxmem=4G "${NV1[@]}"
empty_setup() { : >"$1/nv1.img"; }
accept "empty backend file is sized" created_check empty_setup "${M[@]}" -m 512M,slots=4,maxmem=4G "${NV1[@]}"
big_setup() { truncate -s 300M "$1/nv1.img"; }
accept "backend file larger than size= (300M file, size=256M)" : big_setup "${M[@]}" -m 512M,slots=4,maxmem=4G "${NV1[@]}"

umount "$w"/c*/*/ro "$w"/c*/*/bound.img 2>/dev/null
umount "$w" 2>/dev/null
rm -rf "$w"
summary
