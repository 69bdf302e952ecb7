#!/bin/bash
# hib: HIB_TIMEOUT=1500
# E2E: firmware boot (runs inside the harness's L1). No -kernel: the guest boots from its disk
# through firmware, as in the seed's example. The images are built on the host from Debian
# packages (tests/e2e/fwboot/stage-hook.sh): a raw disk with an MBR (syslinux mbr.bin), a
# bootable FAT partition with syslinux, the harness's L2 kernel and an initrd holding
# tests/e2e/fwboot/l2.sh; and an isohybrid ISO (xorriso + isolinux) with the same kernel.
#  1. The seed's command-line shape (minus -vnc/-net, which pmvm has no devices for):
#     -drive file=disk.raw,format=raw,index=0,media=disk -m 512M,slots=4,maxmem=4G -smp 2
#     -machine pc,accel=kvm,nvdimm=on -enable-kvm and two memory-backend-file,share +
#     nvdimm,label-size=2M, under QEMU (pc, its own SeaBIOS, an IDE disk) and pmvm (SeaBIOS
#     for microvm, /usr/share/seabios/bios-microvm.bin, a virtio-mmio disk): the guest reaches
#     its script, sees 2 CPUs, `ndctl list -DR` shows both NVDIMMs with the region sizes QEMU
#     gives, and the guest's poweroff ends the VMM with status 0.
#  2. pmvm -cdrom boot.iso (no disk): the installer-shaped boot reaches the script too.
# Times from start to the guest script's first line and to exit are printed for both VMMs
# (INFO lines, docs/benchmarks.md).
set -uo pipefail
. "${E2E_LIB:-${HIB_OPT:-/opt}/e2e/lib.sh}"

work=$(mktemp -d)
OUT=${HIB_OUT:-$work}
opt=${HIB_OPT:-/opt}
export L2_TIMEOUT=${L2_TIMEOUT:-600}
SIZE=1026M
LABEL=2M

if [[ ! -f $opt/fwboot/disk.raw || ! -f $opt/fwboot/boot.iso ]]; then
	fail "fwboot images not staged (see the 'stage: fwboot' lines of run.sh)"
	summary
	exit 1
fi
# pmvm's default firmware, where Debian's seabios package installs it (L1 has no such package).
if [[ ! -f /usr/share/seabios/bios-microvm.bin ]]; then
	mkdir -p /usr/share/seabios && cp "$opt/share/seabios/bios-microvm.bin" /usr/share/seabios/ ||
		{ fail "bios-microvm.bin not staged"; summary; exit 1; }
fi

# show VMM: the console (escape sequences dropped) and, for pmvm, stderr.
show() {
	echo "--- $1 console:"
	tr -d '\r' <"$L2_CONSOLE" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g' | grep -v '^\s*$' |
		sed 's/^/  /' | tail -n 40
	if [[ $1 == pmvm ]]; then
		echo "--- pmvm stderr:"
		sed 's/^/  /' "$L2_STDERR" | tail -n 20
	fi
}

# boot_timed VMM ARGS...: boot_l2, plus FIRST_LINE = seconds from the VMM's start to the guest
# script's first console line (a watcher polls the console file boot_l2 is about to create).
boot_timed() {
	local vmm=$1 tag mark
	tag=$(printf '%03d-%s' $((L2_SEQ + 1)) "$(basename "$(vmm_bin "$vmm")")")
	mark=$work/$tag.first
	rm -f "$mark"
	(
		c=$L2_LOG_DIR/$tag.console
		for _ in $(seq 1 $((L2_TIMEOUT * 20))); do
			if [[ -f $c ]] && grep -q '@@FW-SCRIPT' "$c" 2>/dev/null; then
				echo "$EPOCHREALTIME" >"$mark"
				exit 0
			fi
			[[ -s $L2_LOG_DIR/$tag.end ]] && exit 0
			sleep 0.05
		done
	) &
	local watcher=$!
	boot_l2 "$@"
	local rc=$?
	wait "$watcher"
	FIRST_LINE="?"
	if [[ -s $mark && -s $L2_LOG_DIR/$tag.pid ]]; then
		local t0 t1
		read -r _ t0 <"$L2_LOG_DIR/$tag.pid"
		read -r t1 <"$mark"
		FIRST_LINE=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	fi
	return $rc
}

declare -A TIME FIRST
for vmm in qemu pmvm; do
	echo "=== $vmm: disk"
	d=$work/$vmm
	mkdir -p "$d"
	cp "$opt/fwboot/disk.raw" "$d/disk.raw"
	boot_timed "$vmm" -drive "file=$d/disk.raw,format=raw,index=0,media=disk" \
		-m 512M,slots=4,maxmem=4G -smp 2 -machine pc,accel=kvm,nvdimm=on -enable-kvm \
		-object "memory-backend-file,id=mem1,share,mem-path=$d/nv1.img,size=$SIZE" \
		-device "nvdimm,memdev=mem1,id=nv1,label-size=$LABEL" \
		-object "memory-backend-file,id=mem2,share,mem-path=$d/nv2.img,size=$SIZE" \
		-device "nvdimm,memdev=mem2,id=nv2,label-size=$LABEL" \
		-nographic -no-reboot
	rc=$?
	show "$vmm"
	TIME[$vmm]=$L2_TIME
	FIRST[$vmm]=$FIRST_LINE
	if [[ $L2_HUNG -eq 1 ]]; then fail "$vmm: HANG (no exit within ${L2_TIMEOUT}s)"; continue; fi
	[[ $rc -eq 0 ]] && pass "$vmm: poweroff ends the VMM with status 0" || fail "$vmm: exit status $rc (want 0)"
	console_has '@@FW-SCRIPT' && pass "$vmm: the guest booted from the disk and reached its script" ||
		{ fail "$vmm: the guest script did not run"; continue; }
	[[ $(l2_value FWBOOT) == disk ]] && pass "$vmm: kernel command line from the disk's syslinux.cfg" ||
		fail "$vmm: FWBOOT='$(l2_value FWBOOT)' (want disk)"
	[[ $(l2_value CPUS) == 2 ]] && pass "$vmm: 2 CPUs" || fail "$vmm: CPUS=$(l2_value CPUS) (want 2)"
	l2_block NDCTL | json_flat | sed 's/^\.regions\[/[/' >"$work/$vmm.dr"
	ndimm=$(grep -c '^\.dimms\[[^]]*\]\.dev=' "$work/$vmm.dr")
	nreg=$(grep -c '^\[region[0-9]*\]\.dev=' "$work/$vmm.dr")
	[[ $ndimm -eq 2 ]] && pass "$vmm: ndctl list -DR: 2 DIMMs" || fail "$vmm: ndctl list -DR: $ndimm DIMMs (want 2)"
	[[ $nreg -eq 2 ]] && pass "$vmm: ndctl list -DR: 2 regions" || fail "$vmm: ndctl list -DR: $nreg regions (want 2)"
	grep '^\[region[0-9]*\]\.size=' "$work/$vmm.dr" | sort >"$work/$vmm.sizes"
	echo "INFO: $vmm region sizes: $(tr '\n' ' ' <"$work/$vmm.sizes")"
	if [[ $vmm == pmvm ]]; then
		console_has 'SeaBIOS (version' && pass "pmvm: SeaBIOS for microvm ran" || fail "pmvm: no SeaBIOS banner"
	fi
done
if [[ -s $work/qemu.sizes ]]; then
	diff "$work/qemu.sizes" "$work/pmvm.sizes" >/dev/null &&
		pass "pmvm: region sizes equal QEMU's" || fail "pmvm: region sizes differ from QEMU's: $(cat "$work/pmvm.sizes")"
fi

for vmm in qemu pmvm; do
	echo "=== $vmm: -cdrom (isohybrid ISO, no disk)"
	boot_timed "$vmm" -cdrom "$opt/fwboot/boot.iso" -m 512M -machine pc,accel=kvm -nographic -no-reboot
	rc=$?
	show "$vmm"
	TIME[$vmm-iso]=$L2_TIME
	FIRST[$vmm-iso]=$FIRST_LINE
	[[ $rc -eq 0 ]] && pass "$vmm -cdrom: exit status 0" || fail "$vmm -cdrom: exit status $rc (want 0)"
	[[ $(l2_value FWBOOT) == iso ]] && pass "$vmm -cdrom: booted the ISO's isolinux.cfg" ||
		fail "$vmm -cdrom: FWBOOT='$(l2_value FWBOOT)' (want iso)"
done

echo "INFO: start to the guest script's first line, disk: qemu ${FIRST[qemu]:-?}s pmvm ${FIRST[pmvm]:-?}s"
echo "INFO: start to the guest script's first line, -cdrom: qemu ${FIRST[qemu-iso]:-?}s pmvm ${FIRST[pmvm-iso]:-?}s"
echo "INFO: start to exit, disk boot + script + poweroff: qemu ${TIME[qemu]:-?}s pmvm ${TIME[pmvm]:-?}s"
echo "INFO: start to exit, -cdrom: qemu ${TIME[qemu-iso]:-?}s pmvm ${TIME[pmvm-iso]:-?}s"
summary
