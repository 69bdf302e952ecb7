#!/bin/bash
# hib: HIB_TIMEOUT=1200
# E2E NVDIMM persistence and device options under pmvm (runs inside the harness's L1):
#  1. persist: boot 1 writes labels, a raw namespace with a marker at namespace offset 1 MiB and
#     an fsdax namespace with an ext4 file; the guest powers off; L1 finds the marker in the
#     backend file at offset 1 MiB and NAMESPACE_INDEX at size - label-size; boot 2 with the
#     same command line sees the same namespaces (same UUIDs), the marker and the file.
#  2. share=off: the guest reads the host's bytes, writes its own and reads them back; the
#     backend file is byte-identical afterwards (sha256), labels included.
#  3. no label-size: one label-less raw namespace covering the whole pmem area.
#  4. unarmed=on: the guest marks the region read-only (sysfs read_only = 1).
#  5. nvdimm-persistence=cpu / mem-ctrl: persistence_domain cpu_cache / memory_controller.
# Settings: NV_VMM (default pmvm; "qemu" runs the same checks against QEMU for reference).
set -uo pipefail
. "${E2E_LIB:-${HIB_OPT:-/opt}/e2e/lib.sh}"

VMM=${NV_VMM:-pmvm}
LABEL_B=$((128 << 10))
SIZE_B=$(((256 << 20) + LABEL_B)) # pmem 256 MiB, 16 MiB aligned
MARK_OFF=$((1 << 20))
work=$(mktemp -d)
mkdir -p "$work/nv"
mount -t tmpfs -o size=1500M tmpfs "$work/nv" || { fail "mount tmpfs"; summary; exit; }
if [[ $VMM == pmvm && ! -x $(vmm_bin pmvm) ]]; then fail "pmvm binary missing at $(vmm_bin pmvm)"; summary; exit; fi

cat >"$work/l2.sh" <<'EOF'
# L2 (busybox sh). Mode and marker come from the kernel command line (nvmode= nvmark=).
for a in $(cat /proc/cmdline); do case $a in nvmode=*) mode=${a#nvmode=} ;; nvmark=*) mark=${a#nvmark=} ;; esac; done
st() { n=$1; shift; "$@" >/tmp/o 2>&1; rc=$?; sed 's/^/    /' /tmp/o; echo "@@STEP $n rc=$rc@@"; return $rc; }
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",]*\).*/\1/p" /tmp/o | head -n 1; }
# wr DEV OFF STRING: one 4 KiB block at OFF holding STRING; rd DEV OFF LEN
wr() { { printf '%s' "$3"; dd if=/dev/zero bs=$((4096 - ${#3})) count=1 2>/dev/null; } |
	dd of="$1" bs=4096 seek=$(($2 / 4096)) count=1 conv=notrunc,fsync 2>/dev/null; }
rd() { dd if="$1" bs=4096 skip=$(($2 / 4096)) count=1 2>/dev/null | head -c "$3"; }
list() { echo "@@$1-BEGIN@@"; ndctl list -DRN; echo "@@$1-END@@"; }
regions() { for r in /sys/bus/nd/devices/region*; do
	echo "REGION $(basename "$r") read_only=$(cat "$r/read_only") mapping0=$(cut -d, -f1 "$r/mapping0") pd=$(cat "$r/persistence_domain" 2>/dev/null)"; done; }
echo "MODE $mode"
case $mode in
write)
	st disable-region ndctl disable-region all
	st init-labels ndctl init-labels -f all
	st enable-region ndctl enable-region all
	st ns-raw ndctl create-namespace -r region0 -m raw -s 128M
	raw=$(field blockdev)
	st ns-fsdax ndctl create-namespace -r region0 -m fsdax
	pm=$(field blockdev)
	st write-mark wr "/dev/$raw" 1048576 "$mark"
	st readback-mark sh -c "[ \"\$(dd if=/dev/$raw bs=4096 skip=256 count=1 2>/dev/null | head -c ${#mark})\" = '$mark' ]"
	st mkfs mkfs.ext4 -q -F -b 4096 "/dev/$pm"
	st mount mount -o dax "/dev/$pm" /mnt
	echo "$mark-file" >/mnt/marker
	st umount umount /mnt
	list NS
	;;
verify)
	list NS
	ndctl list -N -m raw >/tmp/o; raw=$(field blockdev)
	ndctl list -N -m fsdax >/tmp/o; pm=$(field blockdev)
	echo "DEVS raw=$raw fsdax=$pm"
	got=$(rd "/dev/$raw" 1048576 ${#mark}); echo "MARK got=$got"
	[ "$got" = "$mark" ]; echo "@@STEP verify-mark rc=$?@@"
	st mount mount -o dax "/dev/$pm" /mnt
	got=$(cat /mnt/marker); echo "FILE got=$got"
	[ "$got" = "$mark-file" ]; echo "@@STEP verify-file rc=$?@@"
	umount /mnt
	;;
private)
	st disable-region ndctl disable-region all
	st init-labels ndctl init-labels -f all
	st enable-region ndctl enable-region all
	st ns-raw ndctl create-namespace -r region0 -m raw
	raw=$(field blockdev)
	got=$(rd "/dev/$raw" 0 ${#mark}); echo "HOSTMARK got=$got"
	[ "$got" = "$mark" ]; echo "@@STEP sees-host-bytes rc=$?@@"
	st write-mark wr "/dev/$raw" 1048576 "guest-$mark"
	echo 3 >/proc/sys/vm/drop_caches
	got=$(rd "/dev/$raw" 1048576 $((${#mark} + 6))); echo "OWN got=$got"
	[ "$got" = "guest-$mark" ]; echo "@@STEP sees-own-write rc=$?@@"
	list NS
	;;
list)
	regions
	list NS
	;;
esac
EOF
mk-l2-initrd "$work/l2.sh" "$work/initrd.img" || { fail "mk-l2-initrd"; summary; exit; }

# boot MACHINE_EXTRA MODE MARK DEVICE_ARGS...: one L2 run.
boot() {
	local mextra=$1 mode=$2 mark=$3
	shift 3
	boot_l2 "$VMM" -machine "pc,accel=kvm,nvdimm=on$mextra" -cpu host -m 512M,slots=4,maxmem=4G -smp 2 "$@" \
		-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/initrd.img" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1 nvmode=$mode nvmark=$mark" -nographic -no-reboot
	local rc=$?
	tr -d '\r' <"$L2_CONSOLE" | grep -v -E '^@@NS-|^ *[]{}["]' | sed 's/^/  | /' | tail -n 60
	[[ $VMM == pmvm ]] && sed 's/^/  stderr: /' "$L2_STDERR"
	if [[ $rc -eq 0 ]] && console_has '@@L2-RC=0@@'; then return 0; fi
	fail "$mode boot: exit $rc (hung=$L2_HUNG), guest script did not finish cleanly"
	return 1
}
steps() { # steps PREFIX STEP...
	local p=$1 s v
	shift
	for s in "$@"; do
		v=$(l2_step "$s")
		[[ $v == 0 ]] && pass "$p: guest step $s" || fail "$p: guest step $s rc=${v:-not reached}"
	done
}
# bytes FILE OFF LEN: LEN bytes of FILE at OFF (NULs dropped)
bytes() { dd if="$1" bs=4096 skip=$(($2 / 4096)) count=1 2>/dev/null | head -c "$3" | tr -d '\0'; }
uuids() { l2_block NS | json_flat | sed 's/^\.regions\[/[/' | grep -E '\.uuid=' | sed 's/^.*namespaces//' | sort; }

echo "=== 1. persistence across boots"
f=$work/nv/persist.img
mark="E2E-MARK-$RANDOM$RANDOM"
dev=(-object "memory-backend-file,id=mem1,share=on,mem-path=$f,size=$SIZE_B" -device nvdimm,id=nv1,memdev=mem1,label-size=128K)
if boot "" write "$mark" "${dev[@]}"; then
	steps "persist/write" disable-region init-labels enable-region ns-raw ns-fsdax write-mark readback-mark mkfs mount umount
	uuids >"$work/uuid1"
	echo "  namespaces after boot 1: $(tr '\n' ' ' <"$work/uuid1")"
	[[ $(wc -l <"$work/uuid1") -eq 2 ]] && pass "persist: boot 1 created 2 namespaces with UUIDs" ||
		fail "persist: boot 1 namespaces: $(cat "$work/uuid1")"
	got=$(bytes "$f" $MARK_OFF ${#mark})
	[[ $got == "$mark" ]] && pass "persist: L1 finds the guest's marker at backend offset $MARK_OFF" ||
		fail "persist: backend offset $MARK_OFF holds '$got' (want '$mark')"
	idx=$(bytes "$f" $((SIZE_B - LABEL_B)) 15)
	[[ $idx == NAMESPACE_INDEX ]] && pass "persist: L1 finds NAMESPACE_INDEX at size - label-size = $((SIZE_B - LABEL_B))" ||
		fail "persist: offset $((SIZE_B - LABEL_B)) holds '$idx' (want NAMESPACE_INDEX)"
	if boot "" verify "$mark" "${dev[@]}"; then
		steps "persist/verify" verify-mark mount verify-file
		uuids >"$work/uuid2"
		if [[ -s $work/uuid1 ]] && cmp -s "$work/uuid1" "$work/uuid2"; then
			pass "persist: boot 2 has the same namespaces and UUIDs"
		else
			fail "persist: namespaces differ: boot 1 [$(tr '\n' ' ' <"$work/uuid1")] boot 2 [$(tr '\n' ' ' <"$work/uuid2")]"
		fi
	fi
fi

echo "=== 2. share=off"
f=$work/nv/private.img
mark="HOST-MARK-$RANDOM$RANDOM"
truncate -s "$SIZE_B" "$f"
printf '%s' "$mark" | dd of="$f" conv=notrunc 2>/dev/null
sum0=$(sha256sum "$f" | cut -d' ' -f1)
if boot "" private "$mark" -object "memory-backend-file,id=mem1,share=off,mem-path=$f,size=$SIZE_B" \
	-device nvdimm,id=nv1,memdev=mem1,label-size=128K; then
	steps "share=off" init-labels ns-raw sees-host-bytes write-mark sees-own-write
	sum1=$(sha256sum "$f" | cut -d' ' -f1)
	[[ $sum0 == "$sum1" ]] && pass "share=off: backend file byte-identical afterwards (sha256 $sum0)" ||
		fail "share=off: backend file changed (sha256 $sum0 -> $sum1); offset 1M now '$(bytes "$f" $MARK_OFF 24)', label index '$(bytes "$f" $((SIZE_B - LABEL_B)) 15)'"
fi

echo "=== 3+4+5a. no label-size, unarmed=on, nvdimm-persistence=cpu"
nolab=$work/nv/nolabel.img unarm=$work/nv/unarmed.img
if boot ",nvdimm-persistence=cpu" list x \
	-object "memory-backend-file,id=mem1,share=on,mem-path=$nolab,size=256M" -device nvdimm,id=nv1,memdev=mem1 \
	-object "memory-backend-file,id=mem2,share=on,mem-path=$unarm,size=$SIZE_B" \
	-device nvdimm,id=nv2,memdev=mem2,label-size=128K,unarmed=on; then
	l2_block NS | json_flat | sed 's/^\.regions\[/[/' >"$work/list3"
	# the regions by DIMM handle: handle 1 = nv1 (slot 0), handle 2 = nv2 (slot 1)
	for h in 1 2; do
		nm=$(sed -n "s/^\.dimms\[\(nmem[0-9]*\)\]\.handle=$h\$/\1/p" "$work/list3")
		rg=$(sed -n "s/^\[\(region[0-9]*\)\]\.mappings\[$nm\]\.dimm=.*/\1/p" "$work/list3")
		eval "nm$h=\$nm rg$h=\$rg"
	done
	echo "  nv1 (no label-size) = ${nm1:-?}/${rg1:-?}, nv2 (unarmed) = ${nm2:-?}/${rg2:-?}"
	n=$(grep -cE "^\[$rg1\]\.namespaces\[[^]]*\]\.dev=" "$work/list3")
	mode=$(sed -n "s/^\[$rg1\]\.namespaces\[[^]]*\]\.mode=//p" "$work/list3")
	nsz=$(sed -n "s/^\[$rg1\]\.namespaces\[[^]]*\]\.size=//p" "$work/list3")
	rsz=$(sed -n "s/^\[$rg1\]\.size=//p" "$work/list3")
	[[ $n -eq 1 && $mode == raw && $nsz == $((256 << 20)) && $rsz == $((256 << 20)) ]] &&
		pass "no label-size: one raw namespace of $nsz bytes = the whole 256M backend (region $rsz)" ||
		fail "no label-size: $n namespaces, mode '$mode', size '$nsz', region size '$rsz' (want 1 raw of $((256 << 20)))"
	ro=$(tr -d '\r' <"$L2_CONSOLE" | sed -n "s/^REGION $rg2 read_only=\([0-9]*\).*/\1/p")
	[[ $ro == 1 ]] && pass "unarmed=on: $rg2 read_only=1" || fail "unarmed=on: $rg2 read_only='$ro' (want 1)"
	ro=$(tr -d '\r' <"$L2_CONSOLE" | sed -n "s/^REGION $rg1 read_only=\([0-9]*\).*/\1/p")
	[[ $ro == 0 ]] && pass "armed device: $rg1 read_only=0" || fail "armed device: $rg1 read_only='$ro' (want 0)"
	fl=$(grep -E "^\.dimms\[$nm2\]\.flag" "$work/list3" | tr '\n' ' ')
	echo "  $nm2 flags: ${fl:-none}"
	for r in $rg1 $rg2; do
		pd=$(sed -n "s/^\[$r\]\.persistence_domain=//p" "$work/list3")
		[[ $pd == cpu_cache ]] && pass "nvdimm-persistence=cpu: $r persistence_domain=cpu_cache" ||
			fail "nvdimm-persistence=cpu: $r persistence_domain='$pd' (want cpu_cache)"
	done
fi

echo "=== 5b. nvdimm-persistence=mem-ctrl"
if boot ",nvdimm-persistence=mem-ctrl" list x \
	-object "memory-backend-file,id=mem1,share=on,mem-path=$work/nv/mc.img,size=$SIZE_B" -device nvdimm,id=nv1,memdev=mem1,label-size=128K; then
	pd=$(l2_block NS | json_flat | sed -n 's/^\.regions\[region0\]\.persistence_domain=//p; s/^\.persistence_domain=//p' | head -n 1)
	[[ $pd == memory_controller ]] && pass "nvdimm-persistence=mem-ctrl: persistence_domain=memory_controller" ||
		fail "nvdimm-persistence=mem-ctrl: persistence_domain='$pd' (want memory_controller)"
fi

umount "$work/nv"
rm -rf "$work"
summary
