#!/bin/bash
# Runs on a KVM host (inside the harness's L1, or directly): boots a guest under pmvm with the
# seed's two vNVDIMMs (scaled to 1 GiB each), QEMU's command-line syntax as written.
set -u
work=$(mktemp -d)
mk-l2-initrd "$HIB_OPT/e2e/l2-demo.sh" "$work/initrd.img" || exit 1
set -x
"$HIB_OPT/bin/pmvm" -m 512M,slots=4,maxmem=8G -smp 2 -machine pc,accel=kvm,nvdimm=on -enable-kvm -cpu host \
	-object memory-backend-file,id=mem1,share,mem-path="$work/nvdimm0",size=1G \
	-device nvdimm,memdev=mem1,id=nv1,label-size=2M \
	-object memory-backend-file,id=mem2,share,mem-path="$work/nvdimm1",size=1G \
	-device nvdimm,memdev=mem2,id=nv2,label-size=2M \
	-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/initrd.img" \
	-append "console=ttyS0 quiet loglevel=3 panic=-1" -nographic -no-reboot </dev/null
rc=$?
set +x
echo "pmvm exited with status $rc; the label index now sits at the end of each backend:"
dd if="$work/nvdimm0" bs=1 skip=$(((1 << 30) - (2 << 20))) count=15 2>/dev/null; echo
rm -rf "$work"
exit $rc
