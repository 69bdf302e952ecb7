#!/bin/sh
# L2 guest script for bench/hotplug.sh: report when a hot-added unlabelled NVDIMM's region and
# its pmem block device appear (polled every 5 ms; busybox sleep), with the guest's uptime.
echo "BH-WAITING up=$(cut -d' ' -f1 /proc/uptime)"
i=0
while [ ! -e /sys/bus/nd/devices/region1 ] && [ $i -lt 24000 ]; do sleep 0.005; i=$((i + 1)); done
echo "BH-REGION polls=$i up=$(cut -d' ' -f1 /proc/uptime)"
j=0
while [ ! -b /dev/pmem1 ] && [ $j -lt 24000 ]; do sleep 0.005; j=$((j + 1)); done
echo "BH-PMEM polls=$j up=$(cut -d' ' -f1 /proc/uptime)"
sleep 1
