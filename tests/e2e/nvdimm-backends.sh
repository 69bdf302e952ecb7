#!/bin/bash
# hib: HIB_NVDIMMS=1G,1G HIB_TIMEOUT=1200
# E2E NVDIMM backends in L1 under pmvm (runs inside the harness's L1, which has two emulated
# host NVDIMMs). L1 prepares: labels, a devdax namespace (align 2M) -> /dev/daxX.Y, an fsdax
# namespace with ext4 mounted -o dax. Backends tested, one guest NVDIMM (label-size=128K) each:
#   tmpfs   a file on tmpfs (share=on)
#   devdax  the device DAX /dev/daxX.Y (align=2M)
#   fsdax   a file on the ext4 -o dax mount with pmem=on (MAP_SYNC: pmvm's start-up line says so
#           and the backend mapping has `sf` in /proc/<pmvm>/smaps VmFlags)
# For each: boot 1 initialises labels, creates a raw namespace and writes a marker at namespace
# offset 1 MiB; L1 finds the marker at backend offset 1 MiB and NAMESPACE_INDEX at
# size - 128K; boot 2 (same command line) finds the namespace (same UUID) and the marker.
# Also (no guest): pmem=on on a tmpfs file starts with pmvm's persistence warning, and with
# -require-persistence is refused; -require-persistence accepts the devdax and DAX-file backends.
set -uo pipefail
. "${E2E_LIB:-${HIB_OPT:-/opt}/e2e/lib.sh}"

PMVM_BIN=$(vmm_bin pmvm)
LABEL_B=$((128 << 10))
work=$(mktemp -d)
if [[ ! -x $PMVM_BIN ]]; then fail "pmvm binary missing at $PMVM_BIN"; summary; exit; fi

echo "=== L1 setup"
lst() { "$@" >"$work/o" 2>&1; local rc=$?; sed 's/^/    /' "$work/o"; return $rc; }
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",]*\).*/\1/p" "$work/o" | head -n 1; }
ndctl list -DR
lst ndctl disable-region all && lst ndctl init-labels -f all && lst ndctl enable-region all ||
	fail "L1: init-labels on the emulated host NVDIMMs"
lst ndctl create-namespace -r region0 -m devdax -a 2M && daxdev=/dev/$(field chardev) ||
	fail "L1: create-namespace -m devdax -a 2M"
lst ndctl create-namespace -r region1 -m fsdax && pmemdev=/dev/$(field blockdev) ||
	fail "L1: create-namespace -m fsdax"
mkdir -p "$work/tmpfs" "$work/dax"
mount -t tmpfs -o size=600M tmpfs "$work/tmpfs" || fail "L1: mount tmpfs"
if mkfs.ext4 -q -F -b 4096 "${pmemdev:-/dev/null}" && mount -o dax "$pmemdev" "$work/dax"; then
	grep " $work/dax " /proc/mounts
	hibprobe mapsync "$work/dax/probe" && pass "L1: MAP_SYNC works on the ext4 -o dax mount" ||
		fail "L1: MAP_SYNC does not work on the ext4 -o dax mount"
	rm -f "$work/dax/probe"
else
	fail "L1: mkfs.ext4 + mount -o dax on ${pmemdev:-?}"
fi
echo "devdax=${daxdev:-none} fsdax=${pmemdev:-none}"

cat >"$work/l2.sh" <<'EOF'
for a in $(cat /proc/cmdline); do case $a in nvmode=*) mode=${a#nvmode=} ;; nvmark=*) mark=${a#nvmark=} ;; esac; done
st() { n=$1; shift; "$@" >/tmp/o 2>&1; rc=$?; sed 's/^/    /' /tmp/o; echo "@@STEP $n rc=$rc@@"; return $rc; }
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",]*\).*/\1/p" /tmp/o | head -n 1; }
echo "REGION size=$(cat /sys/bus/nd/devices/region0/size)"
if [ "$mode" = write ]; then
	st disable-region ndctl disable-region all
	st init-labels ndctl init-labels -f all
	st enable-region ndctl enable-region all
	st ns-raw ndctl create-namespace -r region0 -m raw
	raw=$(field blockdev)
	{ printf '%s' "$mark"; dd if=/dev/zero bs=$((4096 - ${#mark})) count=1 2>/dev/null; } |
		dd of="/dev/$raw" bs=4096 seek=256 count=1 conv=notrunc,fsync 2>/dev/null
	echo "@@STEP write-mark rc=$?@@"
fi
ndctl list -N -m raw >/tmp/o; raw=$(field blockdev); uuid=$(field uuid)
echo "NS raw=$raw uuid=$uuid"
got=$(dd if="/dev/$raw" bs=4096 skip=256 count=1 2>/dev/null | head -c ${#mark})
echo "MARK got=$got"
[ "$got" = "$mark" ]; echo "@@STEP read-mark rc=$?@@"
EOF
mk-l2-initrd "$work/l2.sh" "$work/initrd.img" || { fail "mk-l2-initrd"; summary; exit; }

# smaps_watch FILE OUT: in the background, record the VmFlags of pmvm's mappings of FILE.
smaps_watch() {
	local i p
	for ((i = 0; i < 900; i++)); do
		for p in $(pidof pmvm); do
			awk -v f="$1" '/^[0-9a-f]+-[0-9a-f]+ / { m = ($6 == f) } m && /^VmFlags:/ { print }' "/proc/$p/smaps" \
				>"$2.tmp" 2>/dev/null
			[[ -s $2.tmp ]] && { mv "$2.tmp" "$2"; return; }
		done
		sleep 0.2
	done
}

# run_backend NAME PATH SIZE BACKEND_EXTRA EXPECT_REGION
run_backend() {
	local name=$1 path=$2 size=$3 bextra=$4 expect=$5 mark="E2E-$1-$RANDOM$RANDOM" uuid1="" b rc
	local size_b=$size
	[[ $size =~ ^[0-9]+$ ]] || size_b=$(size_to_bytes "$size")
	echo "=== backend $name: $path size=$size$bextra"
	local args=(-machine pc,accel=kvm,nvdimm=on -cpu host -m 512M,slots=4,maxmem=4G -smp 2
		-object "memory-backend-file,id=mem1,share=on,mem-path=$path,size=$size$bextra"
		-device nvdimm,id=nv1,memdev=mem1,label-size=128K
		-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/initrd.img" -nographic -no-reboot)
	for b in write verify; do
		rm -f "$work/vmflags"
		[[ $b == write ]] && { smaps_watch "$path" "$work/vmflags" & }
		local wpid=$!
		boot_l2 pmvm "${args[@]}" -append "console=ttyS0 quiet loglevel=3 panic=-1 nvmode=$b nvmark=$mark"
		rc=$?
		tr -d '\r' <"$L2_CONSOLE" | sed 's/^/  | /' | tail -n 30
		sed 's/^/  stderr: /' "$L2_STDERR"
		if [[ $rc -ne 0 ]] || ! console_has '@@L2-RC='; then
			fail "$name/$b: pmvm exit $rc (hung=$L2_HUNG), guest script did not finish"
			[[ $b == write ]] && kill "$wpid" 2>/dev/null
			return
		fi
		if [[ $b == write ]]; then
			kill "$wpid" 2>/dev/null
			wait "$wpid" 2>/dev/null
			local rs
			rs=$(tr -d '\r' <"$L2_CONSOLE" | sed -n 's/^REGION size=//p')
			[[ $rs == "$expect" ]] && pass "$name: guest region size $rs = align_down($size - 128K, align)" ||
				fail "$name: guest region size '$rs' (want $expect)"
			for s in init-labels ns-raw write-mark read-mark; do
				[[ $(l2_step $s) == 0 ]] && pass "$name/write: guest step $s" || fail "$name/write: guest step $s rc=$(l2_step $s)"
			done
			uuid1=$(l2_value uuid)
			local got idx
			got=$(hibprobe peek "$path" $((1 << 20)) ${#mark} 2>&1 | tr -d '\0')
			[[ $got == "$mark" ]] && pass "$name: L1 finds the guest's marker at backend offset 1 MiB" ||
				fail "$name: backend offset 1 MiB holds '$got' (want '$mark')"
			idx=$(hibprobe peek "$path" $((size_b - LABEL_B)) 15 2>&1 | tr -d '\0')
			[[ $idx == NAMESPACE_INDEX ]] && pass "$name: L1 finds NAMESPACE_INDEX at size - 128K" ||
				fail "$name: size - 128K holds '$idx' (want NAMESPACE_INDEX)"
			if [[ $name == fsdax ]]; then
				grep -q 'MAP_SYNC' "$L2_STDERR" && pass "fsdax: pmvm's start-up line says MAP_SYNC" ||
					fail "fsdax: pmvm's start-up line does not say MAP_SYNC"
				echo "  backend mapping: $(cat "$work/vmflags" 2>/dev/null)"
				grep -qw sf "$work/vmflags" 2>/dev/null && pass "fsdax: backend mapped with MAP_SYNC (VmFlags has sf)" ||
					fail "fsdax: VmFlags of the backend mapping lack sf: '$(cat "$work/vmflags" 2>/dev/null)'"
			fi
			if [[ $name == devdax ]]; then
				grep -qi 'device dax\|device-dax\|devdax' "$L2_STDERR" && pass "devdax: pmvm's start-up line names device DAX" ||
					fail "devdax: pmvm's start-up line does not name device DAX"
			fi
		else
			[[ $(l2_step read-mark) == 0 ]] && pass "$name/verify: marker read back after power-off and boot" ||
				fail "$name/verify: marker not read back: $(l2_value got)"
			local uuid2
			uuid2=$(l2_value uuid)
			[[ -n $uuid1 && $uuid1 == "$uuid2" ]] && pass "$name/verify: same namespace UUID $uuid2" ||
				fail "$name/verify: namespace UUID '$uuid2' (boot 1: '$uuid1')"
		fi
	done
}

SZ_FILE=$(((256 << 20) + LABEL_B))
run_backend tmpfs "$work/tmpfs/nv.img" $SZ_FILE "" $((256 << 20))
[[ -n ${daxdev:-} ]] && run_backend devdax "$daxdev" 258M ",align=2M" $((256 << 20))
[[ -n ${pmemdev:-} ]] && run_backend fsdax "$work/dax/nv.img" $SZ_FILE ",pmem=on" $((256 << 20))

echo "=== pmem=on persistence checks (no guest)"
# start NAME WANT(start|refuse) REGEX ARGS...
start() {
	local name=$1 want=$2 re=$3
	shift 3
	timeout -k 2 4 "$PMVM_BIN" -machine pc,accel=kvm,nvdimm=on -cpu host -m 512M,slots=4,maxmem=4G "$@" -S \
		-display none -serial none -kernel "$HIB_OPT/l2/vmlinux" </dev/null >/dev/null 2>"$work/err"
	local rc=$?
	sed 's/^/    stderr: /' "$work/err"
	if [[ $want == start ]]; then
		[[ $rc -eq 124 ]] && grep -qiE -- "$re" "$work/err" && pass "$name: starts; stderr matches /$re/" ||
			fail "$name: exit $rc (124 = started), stderr must match /$re/"
	else
		[[ $rc -ne 0 && $rc -ne 124 ]] && grep -qiE -- "$re" "$work/err" && pass "$name: refused (exit $rc), stderr matches /$re/" ||
			fail "$name: exit $rc, want a refusal matching /$re/"
	fi
}
obj() { echo "memory-backend-file,id=mem1,share=on,mem-path=$1,size=$2,pmem=on${3:-}"; }
start "pmem=on on a tmpfs file" start 'warning.*(persist|MAP_SYNC)|(persist|MAP_SYNC).*warning' \
	-object "$(obj "$work/tmpfs/p.img" 256M)" -device nvdimm,id=nv1,memdev=mem1
start "pmem=on on a tmpfs file + -require-persistence" refuse 'persist' \
	-object "$(obj "$work/tmpfs/p.img" 256M)" -device nvdimm,id=nv1,memdev=mem1 -require-persistence
[[ -n ${pmemdev:-} ]] && start "pmem=on on the DAX file + -require-persistence" start 'MAP_SYNC' \
	-object "$(obj "$work/dax/nv.img" $SZ_FILE)" -device nvdimm,id=nv1,memdev=mem1,label-size=128K -require-persistence
[[ -n ${daxdev:-} ]] && start "pmem=on on device DAX + -require-persistence" start 'dax' \
	-object "$(obj "$daxdev" 258M ,align=2M)" -device nvdimm,id=nv1,memdev=mem1,label-size=128K -require-persistence

umount "$work/dax" "$work/tmpfs" 2>/dev/null
rm -rf "$work"
summary
