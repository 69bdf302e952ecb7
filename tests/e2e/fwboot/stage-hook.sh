# shellcheck shell=bash
# Sourced by tests/e2e/stage.sh: what tests/e2e/fwboot.sh needs in L1, built on the host
# (L0) from Debian packages only and cached by content hash under $HIB_CACHE/fwboot/:
#   DIR/fwboot/disk.raw   a raw disk: MBR (syslinux mbr.bin), one bootable FAT partition at
#                         1 MiB with syslinux, the harness's L2 bzImage and an initrd holding
#                         tests/e2e/fwboot/l2.sh (packages syslinux, syslinux-common, mtools,
#                         dosfstools, fdisk)
#   DIR/fwboot/boot.iso   an isohybrid ISO with isolinux and the same kernel and initrd
#                         (packages xorriso, isolinux)
#   DIR/share/seabios/bios-microvm.bin   pmvm's default firmware (package seabios)
# Never fails the staging: fwboot.sh reports what is missing.
stage_fwboot() {
	local dir=$1 src=$E2E_REPO/tests/e2e/fwboot k v cache="" opt="" key out t
	mkdir -p "$dir/fwboot" "$dir/share/seabios"
	cp /usr/share/seabios/bios-microvm.bin "$dir/share/seabios/" 2>/dev/null ||
		echo "stage: /usr/share/seabios/bios-microvm.bin missing (apt-get install seabios)" >&2
	while IFS='=' read -r k v; do
		case $k in CACHE) cache=$v ;; OPT) opt=$v ;; esac
	done < <("$E2E_REPO/harness/hib" paths 2>/dev/null)
	if [[ ! -f $opt/l2/bzImage || ! -f $opt/l2/initrd.img ]]; then
		echo "stage: fwboot: no L2 kernel/initrd under $opt (hib setup first)" >&2
		return 0
	fi
	for t in syslinux mcopy mkfs.vfat sfdisk xorriso; do
		command -v "$t" >/dev/null || { echo "stage: fwboot: $t missing (scripts/deps.sh)" >&2; return 0; }
	done
	key=$(cat "$opt/l2/bzImage" "$opt/l2/initrd.img" "$src/l2.sh" "$src/stage-hook.sh" \
		/usr/lib/syslinux/mbr/mbr.bin /usr/lib/ISOLINUX/isolinux.bin | sha256sum | cut -c1-16)
	out=$cache/fwboot/$key
	if [[ ! -f $out/disk.raw || ! -f $out/boot.iso ]]; then
		echo "stage: fwboot: building disk.raw and boot.iso in $out" >&2
		fwboot_build "$opt" "$src" "$out"
		[[ -f $out/disk.raw && -f $out/boot.iso ]] || { echo "stage: fwboot: image build FAILED" >&2; return 0; }
	fi
	cp "$out/disk.raw" "$out/boot.iso" "$dir/fwboot/"
	return 0
}

# fwboot_cfg LABEL: a syslinux/isolinux configuration on the serial console.
fwboot_cfg() {
	printf 'SERIAL 0 115200\nPROMPT 0\nTIMEOUT 0\nDEFAULT l2\nLABEL l2\n  LINUX /bzImage\n  INITRD /initrd.img\n  APPEND console=ttyS0 quiet loglevel=3 panic=-1 fwboot=%s\n' "$1"
}

fwboot_build() {
	local opt=$1 src=$2 out=$3 tmp
	tmp=$(mktemp -d)
	mkdir -p "$out" || return 1
	# Not in an || list: set -e must hold inside.
	(
		set -e
		cd "$tmp"
		HIB_L2_BASE=$opt/l2/initrd.img "$opt/bin/mk-l2-initrd" "$src/l2.sh" initrd.img
		cp "$opt/l2/bzImage" bzImage
		# Disk: 40 MiB, partition 1 (FAT16, bootable) from sector 2048.
		truncate -s 40M disk.raw
		printf 'label: dos\nstart=2048, type=6, bootable\n' | sfdisk -q disk.raw
		truncate -s 39M fat.img
		mkfs.vfat -F 16 -h 2048 -n PMVMFW fat.img >/dev/null
		syslinux --install fat.img
		fwboot_cfg disk >syslinux.cfg
		mcopy -i fat.img bzImage initrd.img syslinux.cfg ::/
		dd if=fat.img of=disk.raw bs=1M seek=1 conv=notrunc status=none
		dd if=/usr/lib/syslinux/mbr/mbr.bin of=disk.raw bs=440 count=1 conv=notrunc status=none
		# ISO: isolinux, El Torito + isohybrid MBR.
		mkdir -p iso/isolinux
		cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 iso/isolinux/
		fwboot_cfg iso >iso/isolinux/isolinux.cfg
		cp bzImage initrd.img iso/
		xorriso -as mkisofs -quiet -o boot.iso -isohybrid-mbr /usr/lib/ISOLINUX/isohdpfx.bin \
			-c isolinux/boot.cat -b isolinux/isolinux.bin -no-emul-boot -boot-load-size 4 \
			-boot-info-table iso
		mv disk.raw boot.iso "$out/"
	)
	local rc=$?
	rm -rf "$tmp"
	return $rc
}
