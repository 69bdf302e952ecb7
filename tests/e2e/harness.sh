#!/bin/bash
# hib: HIB_NVDIMMS=1G,1G HIB_TIMEOUT=300
# Harness self-test (runs inside L1, QEMU only): the L1 host has working nested KVM and
# emulated NVDIMMs (labels, devdax, fsdax + MAP_SYNC), and an L2 under QEMU sees an NVDIMM.
# This is the reference behaviour the pmvm NVDIMM tests compare against.
set -uo pipefail
. "${E2E_LIB:-${HIB_OPT:-/opt}/e2e/lib.sh}"

check "L1: /dev/kvm present" test -c /dev/kvm
check "L1: kvm_amd nested=1" grep -qx 1 /sys/module/kvm_amd/parameters/nested
check "L1: clwb in CPU flags" grep -qw clwb /proc/cpuinfo
check "L1: 2 NVDIMM regions" test "$(ndctl list -R | grep -c '"dev":"region')" -eq 2
{ ndctl disable-region all && ndctl init-labels -f all && ndctl enable-region all; } >/dev/null 2>&1
check "L1: labels initialised" bash -c "ndctl read-labels -j nmem0 2>/dev/null | grep -q NAMESPACE_INDEX"
quiet() { "$@" >/dev/null 2>&1; }
check "L1: devdax namespace" quiet ndctl create-namespace -r region0 -m devdax -a 2M -s 512M
check "L1: fsdax namespace" quiet ndctl create-namespace -r region1 -m fsdax -s 512M
marker="hib-$RANDOM-$RANDOM"
hibprobe poke /dev/dax0.0 $((4 << 20)) "$marker"
check "L1: devdax poke/peek" test "$(hibprobe peek /dev/dax0.0 $((4 << 20)) ${#marker})" = "$marker"
mkdir -p /mnt/fsdax
if mkfs.ext4 -q -F -b 4096 /dev/pmem1 && mount -o dax /dev/pmem1 /mnt/fsdax; then
	check "L1: MAP_SYNC on ext4 -o dax" hibprobe mapsync /mnt/fsdax/probe
	check "L1: MAP_SYNC refused on tmpfs" bash -c "! hibprobe mapsync /tmp/probe >/dev/null"
else
	fail "L1: mkfs.ext4/mount -o dax on /dev/pmem1"
fi

cat >/tmp/l2.sh <<'L2'
echo "L2 regions=$(ls /sys/bus/nd/devices | grep -c '^region')"
ndctl list -R | grep -o '"size":[0-9]*' | head -n 1 | tr -d '"' | sed 's/:/=/'
L2
mk-l2-initrd /tmp/l2.sh /tmp/l2.img
truncate -s $((130 << 20)) /tmp/nv.img
boot_l2 qemu -machine pc,accel=kvm,nvdimm=on -cpu host -m 256M,slots=2,maxmem=1G -smp 1 \
	-object memory-backend-file,id=m0,share=on,mem-path=/tmp/nv.img,size=$((130 << 20)) \
	-device nvdimm,memdev=m0,id=nv0,label-size=128K \
	-kernel "$HIB_OPT/l2/vmlinux" -initrd /tmp/l2.img \
	-append "console=ttyS0 quiet loglevel=3 panic=-1" -nographic -no-reboot
check "L2 (qemu): exit 0" test "$L2_RC" -eq 0
check "L2 (qemu): one NVDIMM region" test "$(l2_value regions)" = 1
# 130 MiB backend - 128 KiB label area
check "L2 (qemu): region size 136183808" test "$(l2_value size)" = 136183808
summary
