#!/bin/sh
# L2 guest script for bench/hotplug.sh: report when a hot-added unlabelled NVDIMM's region and
# its pmem block device appear. The poll loop forks nothing (a fork+exec costs ~100 ms in L2
# under nested KVM on TCG): `[` is an ash builtin, the 5 ms pause is `read -t` on an idle FIFO,
# the uptime is read with the `read` builtin, and the marker is printed at once.
mkfifo /tmp/idle && exec 3<>/tmp/idle
read up _ </proc/uptime
echo "BH-WAITING up=$up"
i=0
while [ ! -e /sys/bus/nd/devices/region1 ] && [ $i -lt 60000 ]; do read -t 0.005 x <&3; i=$((i + 1)); done
read up _ </proc/uptime
echo "BH-REGION polls=$i up=$up"
j=0
while [ ! -b /dev/pmem1 ] && [ $j -lt 60000 ]; do read -t 0.005 x <&3; j=$((j + 1)); done
read up _ </proc/uptime
echo "BH-PMEM polls=$j up=$up"
echo "BH-DONE"
sleep 1
