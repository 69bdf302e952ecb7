#!/bin/bash
# E2E: -drive disks (runs inside the harness's L1). pmvm gives a -drive as virtio-blk over
# virtio-mmio (ACPI LNRO0005); QEMU, asked for if=virtio, as virtio-blk over PCI. The same
# guest script runs under both and the guest's view is compared:
#  - a 64 MiB raw ext4 image prepared in L1: /dev/vda has the same size in sectors, mounts,
#    its files read back (a text and a 3 MiB pattern, md5), a file written by the guest and
#    synced is in the image afterwards (checked in L1 through a loop mount);
#  - a second drive with readonly=on: /sys/block/vdb/ro is 1 and a direct write to it fails;
#  - sequential direct reads of 48 MiB, timed by the guest (INFO, pmvm/QEMU ratio);
#  - disk DMA to and from NVDIMM memory: with a label-less NVDIMM turned fsdax and ext4 -o dax,
#    `hibprobe dmaread` reads 4 MiB of /dev/vda with O_DIRECT into a mapped DAX file (the
#    device writes into pmem guest addresses) and `dmawrite` writes that mapping to a third,
#    scratch drive; the bytes must match (pmvm: virtio devices address memory devices too);
#  - discard: the scratch drive has discard=unmap; the guest fills its second half and
#    blkdiscards it: in L1 that half reads as zeros and is no longer allocated (a hole);
#  - cache=none: the scratch drive lives on ext4 (a loop mount in L1) and is opened O_DIRECT
#    by both VMMs; on tmpfs pmvm refuses cache=none, naming the file system.
# pmvm gets the first drive in the seed's own form (`file=...,format=raw,index=0,media=disk`,
# which QEMU's pc would make an IDE disk) and must say it gives it as a virtio disk.
# Refusals, without a guest: a qcow2 image (probed), format=qcow2, a missing file, an image a
# running pmvm holds (lock), if=scsi, cache=none on tmpfs: each a non-zero exit with the fix
# named. A paused pmvm shows its disk I/O thread and an O_DIRECT descriptor for cache=none.
set -uo pipefail
. "${E2E_LIB:-${HIB_OPT:-/opt}/e2e/lib.sh}"

work=$(mktemp -d)
OUT=${HIB_OUT:-$work}
mnt=$work/mnt
mkdir -p "$mnt"
img=$work/disk.raw ro=$work/ro.raw scratch=$work/ext4/scratch.raw
mkdir -p "$work/ext4"
truncate -s 64M "$work/ext4.img"
mke2fs -q -t ext4 -F "$work/ext4.img" && mount -o loop "$work/ext4.img" "$work/ext4" ||
	{ fail "ext4 loop mount for the cache=none drive"; summary; exit 1; }
trap 'umount "$work/ext4" 2>/dev/null' EXIT
truncate -s 64M "$img"
mke2fs -q -t ext4 -F "$img" || { fail "mke2fs"; summary; exit 1; }
mount -o loop "$img" "$mnt" || { fail "mount -o loop"; summary; exit 1; }
echo "PMVM-DISK-HELLO" >"$mnt/hello"
yes PMVM-DISK-PATTERN | head -c $((3 << 20)) >"$mnt/pattern"
want_md5=$(md5sum <"$mnt/pattern" | cut -d' ' -f1)
umount "$mnt"
truncate -s 8M "$ro"
DMA_B=$((4 << 20))

cat >"$work/l2.sh" <<'L2_END'
for a in $(cat /proc/cmdline); do case $a in vmm=*) vmm=${a#vmm=} ;; esac; done
modprobe virtio_mmio 2>/dev/null; modprobe virtio_pci 2>/dev/null; modprobe virtio_blk
i=0
while [ ! -b /dev/vdb ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
for d in vda vdb; do
	[ -b /dev/$d ] && echo "DISK $d size=$(cat /sys/block/$d/size) ro=$(cat /sys/block/$d/ro)"
done
echo "SERIAL vda=$(cat /sys/block/vda/serial 2>/dev/null)"
if mount -t ext4 /dev/vda /mnt; then
	echo "@@MOUNT-OK@@"
	echo "HELLO=$(cat /mnt/hello)"
	echo "PATTERN-MD5=$(md5sum </mnt/pattern | cut -d' ' -f1)"
	echo "written by the guest under $vmm" >/mnt/from-guest
	sync
	umount /mnt && echo "@@UMOUNT-OK@@"
else
	dmesg | grep -i virtio | tail -n 5
fi
if dd if=/dev/zero of=/dev/vdb bs=4096 count=1 oflag=direct 2>/dev/null; then
	echo "@@RO-WRITE-SUCCEEDED@@"
else
	echo "@@RO-WRITE-REFUSED@@"
fi
mkdir -p /pm
if ndctl create-namespace -f -e namespace0.0 -m fsdax >/dev/null 2>&1 && mkfs.ext4 -q -F -b 4096 /dev/pmem0 &&
	mount -o dax /dev/pmem0 /pm; then
	hibprobe dmaread /dev/vda /pm/buf 4194304 && echo "@@DMA-IN-OK@@"
	echo "DMA-IN md5=$(md5sum </pm/buf | cut -d' ' -f1) want=$(head -c 4194304 /dev/vda | md5sum | cut -d' ' -f1)"
	hibprobe dmawrite /pm/buf /dev/vdc 4194304 && echo "@@DMA-OUT-OK@@"
	dd if=/dev/vda of=/dev/vdc bs=1M count=4 seek=4 oflag=direct 2>/dev/null &&
		blkdiscard -o 4194304 -l 4194304 /dev/vdc && echo "@@DISCARD-OK@@"
	umount /pm
else
	echo "@@NO-DAX@@"
fi
read -r t0 _ </proc/uptime
dd if=/dev/vda of=/dev/null bs=1M count=48 iflag=direct 2>/dev/null
read -r t1 _ </proc/uptime
echo "READ48 secs=$(awk -v a=$t0 -v b=$t1 'BEGIN { printf "%.2f", b - a }')"
L2_END
mk-l2-initrd "$work/l2.sh" "$work/initrd.img" || { fail "mk-l2-initrd"; summary; exit 1; }

declare -A view read48
for vmm in pmvm qemu; do
	if [[ $vmm == pmvm ]]; then
		first="file=$img,format=raw,index=0,media=disk"
	else
		first="file=$img,format=raw,if=virtio,index=0"
	fi
	rm -f "$work/nv.img" "$scratch"
	truncate -s 8M "$scratch"
	boot_l2 "$vmm" -machine pc,accel=kvm,nvdimm=on -cpu host -m 512M,slots=2,maxmem=2G -smp 1 \
		-drive "$first" -drive "file=$ro,format=raw,if=virtio,index=1,readonly=on" \
		-drive "file=$scratch,format=raw,if=virtio,index=2,discard=unmap,cache=none" \
		-object "memory-backend-file,id=m0,share=on,mem-path=$work/nv.img,size=256M" -device nvdimm,id=nv0,memdev=m0 \
		-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/initrd.img" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1 vmm=$vmm" -nographic -no-reboot
	[[ $L2_RC -eq 0 ]] && pass "$vmm: guest ran and powered off" || fail "$vmm: exit $L2_RC"
	con=$(tr -d '\r' <"$L2_CONSOLE")
	view[$vmm]=$(grep -E '^(DISK|HELLO=|PATTERN-MD5=)' <<<"$con")
	echo "$vmm sees:"
	sed 's/^/    /' <<<"${view[$vmm]}"
	grep -q '^DISK vda size=131072 ro=0$' <<<"$con" && pass "$vmm: /dev/vda is 64 MiB, writable" ||
		fail "$vmm: no 64 MiB writable /dev/vda"
	grep -q '^DISK vdb size=16384 ro=1$' <<<"$con" && pass "$vmm: /dev/vdb is read-only" ||
		fail "$vmm: /dev/vdb is not a read-only 8 MiB disk"
	grep -q '^HELLO=PMVM-DISK-HELLO$' <<<"$con" && grep -q "^PATTERN-MD5=$want_md5\$" <<<"$con" &&
		grep -q '@@UMOUNT-OK@@' <<<"$con" && pass "$vmm: the ext4 image mounts and its files read back" ||
		fail "$vmm: the image did not mount or its files differ"
	grep -q '@@RO-WRITE-REFUSED@@' <<<"$con" && pass "$vmm: a write to the read-only drive fails" ||
		fail "$vmm: a write to the read-only drive did not fail"
	if [[ $vmm == pmvm ]]; then
		grep -q '^SERIAL vda=virtio0$' <<<"$con" && pass "pmvm: the disk's serial (VIRTIO_BLK_T_GET_ID) is its drive id" ||
			fail "pmvm: /sys/block/vda/serial is not the drive id"
	fi
	if grep -q '@@DMA-IN-OK@@' <<<"$con" && grep -qE '^DMA-IN md5=([0-9a-f]+) want=\1$' <<<"$con"; then
		pass "$vmm: O_DIRECT read from the disk into DAX (NVDIMM) memory"
	else
		fail "$vmm: O_DIRECT read from the disk into DAX (NVDIMM) memory"
		grep -E 'DMA|NO-DAX|hibprobe' <<<"$con" | sed 's/^/    /'
	fi
	head -c $DMA_B "$scratch" >"$work/scratch.head"
	grep -q '@@DMA-OUT-OK@@' <<<"$con" && head -c $DMA_B "$img" | cmp -s - "$work/scratch.head" &&
		pass "$vmm: O_DIRECT write from DAX memory to the disk: the scratch image holds the bytes" ||
		fail "$vmm: O_DIRECT write from DAX memory to the disk"
	tail -c $DMA_B "$scratch" >"$work/scratch.tail"
	alloc_kib=$(du -k "$scratch" | cut -f1)
	if grep -q '@@DISCARD-OK@@' <<<"$con" && [[ $(tr -d '\0' <"$work/scratch.tail" | wc -c) -eq 0 && $alloc_kib -le 4608 ]]; then
		pass "$vmm: blkdiscard on a discard=unmap drive punched a hole (image allocates ${alloc_kib} KiB)"
	else
		fail "$vmm: blkdiscard: marker $(grep -c '@@DISCARD-OK@@' <<<"$con"), image allocates ${alloc_kib} KiB"
	fi
	read48[$vmm]=$(l2_value secs)
	if mount -o loop,ro "$img" "$mnt"; then
		grep -q "written by the guest under $vmm" "$mnt/from-guest" 2>/dev/null &&
			pass "$vmm: the file the guest wrote is in the image" || fail "$vmm: the guest's file is not in the image"
		umount "$mnt"
	else
		fail "$vmm: the image no longer mounts in L1"
	fi
	[[ $(stat -c %s "$ro") -eq $((8 << 20)) && $(tr -d '\0' <"$ro" | wc -c) -eq 0 ]] &&
		pass "$vmm: the read-only image is unchanged" || fail "$vmm: the read-only image changed"
done
grep -q 'given to the guest as virtio disk /dev/vda' "$L2_LOG_DIR"/*pmvm.stderr &&
	pass "pmvm: says the seed's IDE-style -drive becomes virtio disk /dev/vda" ||
	fail "pmvm: no notice that the seed's -drive is given as a virtio disk"
[[ -n ${view[pmvm]} && ${view[pmvm]} == "${view[qemu]}" ]] && pass "the guest sees the same disks under pmvm and QEMU" ||
	fail "the guest's view differs between pmvm and QEMU"
echo "INFO: 48 MiB direct read in the guest: pmvm ${read48[pmvm]:-?} s, QEMU ${read48[qemu]:-?} s" \
	"(ratio $(awk -v p="${read48[pmvm]:-0}" -v q="${read48[qemu]:-0}" 'BEGIN { if (q > 0) printf "%.2f", p / q; else print "n/a" }'))"

# The monitor: `info block` under both VMMs (paused VMs, monitor on stdio).
for vmm in pmvm qemu; do
	extra=()
	[[ $vmm == qemu ]] && extra=(-nodefaults -L "$HIB_OPT/share/qemu")
	# pmvm does not echo the command on a non-terminal (QEMU's readline does), so its answer
	# follows the prompt on the same line.
	printf 'info block\nquit\n' | timeout 60 "$(vmm_bin "$vmm")" "${extra[@]}" -machine pc,accel=kvm -m 128M -S \
		-display none -serial none -monitor stdio -kernel "$HIB_OPT/l2/vmlinux" \
		-drive "file=$img,format=raw,if=virtio,index=0" -drive "file=$ro,format=raw,if=virtio,index=1,readonly=on" \
		>"$work/$vmm.infoblock" 2>&1
	tr -d '\r' <"$work/$vmm.infoblock" | grep -E 'virtio|Cache' | sed "s/^/    $vmm: /"
	if tr -d '\r' <"$work/$vmm.infoblock" | grep -qE "^(\(qemu\) )?virtio0( \(#block[0-9]+\))?: $img \(raw\)\$" &&
		tr -d '\r' <"$work/$vmm.infoblock" | grep -qE "^(\(qemu\) )?virtio1( \(#block[0-9]+\))?: $ro \(raw, read-only\)\$" &&
		grep -q 'Cache mode:       writeback' "$work/$vmm.infoblock"; then
		pass "$vmm: info block lists both drives, the read-only one marked, cache mode writeback"
	else
		fail "$vmm: info block"
		sed 's/^/    /' "$work/$vmm.infoblock" | tail -n 12
	fi
done

# Refusals: pmvm must exit non-zero before booting, naming the fix.
pmvm=$(vmm_bin pmvm)
base=(-machine pc -m 128M -kernel "$HIB_OPT/l2/vmlinux" -display none -serial none)
refuse() { # NAME WANT-IN-STDERR DRIVE...
	local name=$1 want=$2
	shift 2
	local args=()
	for d in "$@"; do args+=(-drive "$d"); done
	run_saved "$name" timeout 20 "$pmvm" "${base[@]}" "${args[@]}"
	if [[ $RC -ne 0 && $RC -ne 124 ]] && grep -qF -- "$want" "$work/$name.err"; then
		pass "$name: refused ($(head -n 1 "$work/$name.err"))"
	else
		fail "$name: exit $RC, want non-zero with '$want'"
		sed 's/^/    /' "$work/$name.err" | tail -n 3
	fi
}
printf 'QFI\xfb\0\0\0\3' >"$work/fake.qcow2"
truncate -s 1M "$work/fake.qcow2"
refuse qcow2-probed "qemu-img convert -O raw" "file=$work/fake.qcow2"
refuse qcow2-format "format=qcow2 is not supported" "file=$img,format=qcow2"
refuse missing-file "cannot open the image" "file=$work/nope.raw,format=raw"
refuse if-scsi "use if=virtio" "file=$img,if=scsi"
mkdir -p "$work/tmpfs" && mount -t tmpfs -o size=16M tmpfs "$work/tmpfs" && truncate -s 1M "$work/tmpfs/t.raw"
refuse cache-none-on-tmpfs "needs O_DIRECT, which the file system of the image refuses" "file=$work/tmpfs/t.raw,format=raw,cache=none"
umount "$work/tmpfs"
"$pmvm" "${base[@]}" -S -drive "file=$img,format=raw" -drive "file=$scratch,format=raw,cache=none" \
	</dev/null >/dev/null 2>"$work/holder.err" &
holder=$!
for ((i = 0; i < 100; i++)); do grep -q 'drive virtio0' "$work/holder.err" && break; sleep 0.1; done
refuse image-locked "in use by another process" "file=$img,format=raw"
# cache=none: pmvm holds the image open with O_DIRECT (040000 in fdinfo's octal flags).
odirect=0
for fd in /proc/"$holder"/fd/*; do
	[[ $(readlink "$fd") == "$scratch" ]] || continue
	flags=$(awk '/^flags:/ { print $2 }' "/proc/$holder/fdinfo/${fd##*/}")
	(((8#$flags) & 8#40000)) && odirect=1
done
[[ $odirect -eq 1 ]] && pass "pmvm: cache=none opens the image with O_DIRECT" ||
	fail "pmvm: cache=none: no O_DIRECT descriptor for $scratch"
# The disk's I/O thread (fed by an ioeventfd on QueueNotify) exists in the running pmvm.
if grep -qx 'io-virtio0' /proc/"$holder"/task/*/comm 2>/dev/null; then
	pass "pmvm: the disk has its I/O thread (io-virtio0): KVM hands it the guest's notifies"
else
	fail "pmvm: no io-virtio0 thread: $(cat /proc/"$holder"/task/*/comm 2>/dev/null | tr '\n' ' ')"
fi
kill -TERM "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
summary
