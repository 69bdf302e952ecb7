#!/bin/bash
# hib: HIB_TIMEOUT=900
# Guest reboot: with -no-reboot pmvm ends with status 0, through the ACPI reset register
# (reboot=a) and through the i8042 keyboard controller (reboot=k); without -no-reboot the VMM
# restarts the guest (Linux's default reboot method and reboot=k), and an NVDIMM's data
# survives every reset. QEMU runs the same cases as the reference.
. "${E2E_LIB:-$HIB_OPT/e2e/lib.sh}"

work=$(mktemp -d)
cat >"$work/l2.sh" <<'X'
#!/bin/sh
echo "RB-BOOTED"
reboot -f
X
mk-l2-initrd "$work/l2.sh" "$work/initrd.cpio" || { fail "mk-l2-initrd"; summary; exit 1; }

for vmm in qemu pmvm; do
	for method in a k; do
		boot_l2 "$vmm" -machine pc,accel=kvm -cpu host -m 512M -smp 1 -kernel "$HIB_OPT/l2/vmlinux" \
			-initrd "$work/initrd.cpio" -append "console=ttyS0 quiet loglevel=3 panic=-1 reboot=$method" \
			-nographic -no-reboot
		if [[ $L2_RC -eq 0 ]] && console_has RB-BOOTED; then
			pass "$vmm: reboot=$method with -no-reboot: guest rebooted, VMM exited 0 (${L2_TIME}s)"
		else
			fail "$vmm: reboot=$method with -no-reboot: rc=$L2_RC hung=$L2_HUNG"
			tail -5 "$L2_STDERR"
		fi
	done
done

# Without -no-reboot the VMM restarts the guest. The guest counts its boots in the first bytes
# of a label-less NVDIMM (/dev/pmem0) and reboots until the third boot, which powers off: the
# VMM must have rebuilt the machine twice, kept the NVDIMM's data across each reset, and exit 0.
# The count also goes to a virtio disk (-drive): pmvm reopens and relocks it at every rebuild.
cat >"$work/count.sh" <<'X'
#!/bin/sh
i=0
while [ ! -b /dev/pmem0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
n=$(dd if=/dev/pmem0 bs=512 count=1 2>/dev/null | tr -d '\000' | sed -n 's/^RB\([0-9]*\);.*/\1/p')
n=$((${n:-0} + 1))
printf 'RB%d;' "$n" | dd of=/dev/pmem0 bs=512 count=1 conv=notrunc,fsync 2>/dev/null
modprobe virtio_mmio 2>/dev/null; modprobe virtio_pci 2>/dev/null; modprobe virtio_blk
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
printf 'RB%d;' "$n" | dd of=/dev/vda bs=512 count=1 conv=notrunc,fsync 2>/dev/null
echo "RB-BOOT n=$n"
[ "$n" -lt 3 ] && reboot -f
exit 0
X
mk-l2-initrd "$work/count.sh" "$work/count.cpio" || { fail "mk-l2-initrd (count)"; summary; exit 1; }
for vmm in qemu pmvm; do
	for method in default k; do
		nv=$work/nv-$vmm-$method.img
		rm -f "$nv" "$work/disk.raw" && truncate -s 256M "$nv" && truncate -s 1M "$work/disk.raw"
		append="console=ttyS0 quiet loglevel=3 panic=-1"
		[[ $method == default ]] || append+=" reboot=$method"
		L2_TIMEOUT=300 boot_l2 "$vmm" -machine pc,accel=kvm,nvdimm=on -cpu host -m 512M,slots=2,maxmem=2G -smp 1 \
			-object "memory-backend-file,id=nv0,share=on,mem-path=$nv,size=256M" -device nvdimm,id=nvdimm0,memdev=nv0 \
			-drive "file=$work/disk.raw,format=raw,if=virtio" \
			-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/count.cpio" -append "$append" -nographic
		boots=$(grep -c 'RB-BOOT n=' "$L2_CONSOLE")
		what="$vmm: reboot ($method) without -no-reboot"
		check "$what: VMM exited 0 after the third boot powered off (rc=$L2_RC, ${L2_TIME}s)" test "$L2_RC" -eq 0
		check "$what: the guest booted 3 times (saw $boots)" test "$boots" -eq 3
		check "$what: boots counted 1, 2, 3 on the NVDIMM (data kept across resets)" \
			bash -c "grep -o 'RB-BOOT n=[0-9]*' '$L2_CONSOLE' | tr '\n' ' ' | grep -qx 'RB-BOOT n=1 RB-BOOT n=2 RB-BOOT n=3 '"
		check "$what: the backend file holds the count" test "$(head -c 4 "$nv")" = "RB3;"
		check "$what: the disk image holds the count" test "$(head -c 4 "$work/disk.raw")" = "RB3;"
		rm -f "$nv"
	done
done

rm -rf "$work"
summary
