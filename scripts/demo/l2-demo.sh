#!/bin/sh
# Runs inside the pmvm guest: shows the virtual NVDIMMs and uses them.
set -x
ndctl list -DR
ndctl disable-region all && ndctl init-labels -f all && ndctl enable-region all
ndctl create-namespace -r region0 -m fsdax
ndctl create-namespace -r region1 -m devdax -a 2M
ndctl list -N
mkdir -p /mnt/pmem && mkfs.ext4 -q -b 4096 -F /dev/pmem0 && mount -o dax /dev/pmem0 /mnt/pmem
echo "hello from a DAX file system on a pmvm vNVDIMM" > /mnt/pmem/hello && sync
cat /mnt/pmem/hello && grep pmem0 /proc/mounts
umount /mnt/pmem
set +x
echo "@@DEMO-OK@@"
