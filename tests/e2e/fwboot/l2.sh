#!/bin/sh
# Runs in the L2 guest booted by firmware from a disk or an ISO (tests/e2e/fwboot.sh): the
# kernel and this initrd came from the boot medium through SeaBIOS and syslinux/isolinux.
read -r u _ </proc/uptime
echo "@@FW-SCRIPT uptime=$u@@"
for a in $(cat /proc/cmdline); do case $a in fwboot=*) echo "FWBOOT=${a#fwboot=}" ;; esac; done
echo "CPUS=$(grep -c ^processor /proc/cpuinfo)"
echo "@@NDCTL-BEGIN@@"
ndctl list -DR 2>&1
echo "@@NDCTL-END@@"
echo "DIMMS=$(ls -d /sys/bus/nd/devices/nmem* 2>/dev/null | wc -l)"
echo "REGIONS=$(ls -d /sys/bus/nd/devices/region* 2>/dev/null | wc -l)"
echo "@@STEP script rc=0@@"
