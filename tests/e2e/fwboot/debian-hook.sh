# shellcheck shell=bash
# Sourced by tests/e2e/stage.sh, only when tests/e2e/fwboot-debian.sh is among the tests run
# (the image is large): DIR/fwboot/debian.raw, a Debian 12 system debootstrapped from
# deb.debian.org (minbase + systemd-sysv + udev, package debootstrap) into an ext4 partition
# (mke2fs -d: no loop mount), booted by syslinux from a FAT partition with the harness's L2
# kernel and an initramfs (tests/e2e/fwboot/debian-init) that mounts it. Cached by content hash
# under $HIB_CACHE/fwboot-debian/. Mirror: E2E_DEBIAN_MIRROR (default http://deb.debian.org/debian).
stage_fwboot_debian() {
	local dir=$1 src=$E2E_REPO/tests/e2e/fwboot k v cache="" opt="" key out pkg="" kver=""
	while IFS='=' read -r k v; do
		case $k in CACHE) cache=$v ;; OPT) opt=$v ;; KERNEL_PKG) pkg=$v ;; KVER) kver=$v ;; esac
	done < <("$E2E_REPO/harness/hib" paths 2>/dev/null)
	FWDEB_KROOT=$cache/kernel/$pkg FWDEB_KVER=$kver
	command -v debootstrap >/dev/null || { echo "stage: fwboot-debian: debootstrap missing (scripts/deps.sh)" >&2; return 0; }
	[[ -f $opt/l2/bzImage ]] || { echo "stage: fwboot-debian: no L2 kernel (hib setup first)" >&2; return 0; }
	key=$(cat "$opt/l2/bzImage" "$opt/l2/initrd.img" "$src/debian-init" "$src/debian-hook.sh" |
		sha256sum | cut -c1-16)
	out=$cache/fwboot-debian/$key
	if [[ ! -f $out/debian.raw ]]; then
		echo "stage: fwboot-debian: building $out/debian.raw (debootstrap, a few minutes)" >&2
		fwboot_debian_build "$opt" "$src" "$out"
		[[ -f $out/debian.raw ]] || { echo "stage: fwboot-debian: image build FAILED" >&2; return 0; }
	fi
	mkdir -p "$dir/fwboot"
	cp --sparse=always "$out/debian.raw" "$dir/fwboot/"
}

fwboot_debian_build() {
	local opt=$1 src=$2 out=$3 tmp mirror=${E2E_DEBIAN_MIRROR:-http://deb.debian.org/debian}
	tmp=$(mktemp -d /var/tmp/fwboot-debian.XXXXXX)
	mkdir -p "$out" || return 1
	# Not in an || list: set -e must hold inside.
	(
		set -e
		cd "$tmp"
		debootstrap --variant=minbase --include=systemd-sysv,udev bookworm rootfs "$mirror" >debootstrap.log 2>&1 ||
			{ tail -n 20 debootstrap.log >&2; exit 1; }
		r=rootfs
		echo pmvm-debian >$r/etc/hostname
		printf 'LABEL=pmvmroot / ext4 defaults 0 1\n' >$r/etc/fstab
		chroot $r passwd -d root >/dev/null
		mkdir -p $r/etc/systemd/system/multi-user.target.wants
		cat >$r/etc/systemd/system/pmvm-up.service <<'UNIT'
[Unit]
Description=Tell the pmvm test that multi-user is reached
After=multi-user.target getty.target
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "PMVM-DEBIAN-UP $(cat /etc/debian_version)" >/dev/ttyS0'
[Install]
WantedBy=multi-user.target
UNIT
		ln -s ../pmvm-up.service $r/etc/systemd/system/multi-user.target.wants/pmvm-up.service
		rm -rf $r/usr/share/doc/* $r/usr/share/man/* $r/usr/share/locale/* $r/var/cache/apt/*.bin \
			$r/var/lib/apt/lists/*_Packages
		mke2fs -q -t ext4 -L pmvmroot -d $r root.img 400M
		mkdir -p ovl
		cp "$src/debian-init" ovl/init
		chmod 0755 ovl/init
		# QEMU's IDE disk: ata_piix, sd_mod and what they need, in load order.
		mkdir -p ovl/lib/ata
		for m in ata_piix sd_mod; do
			modprobe -C /dev/null -d "$FWDEB_KROOT" -S "$FWDEB_KVER" --show-depends --ignore-install "$m"
		done | awk '$1 == "insmod" { print $2 }' >ata.list
		: >ovl/lib/ata/order
		while read -r f; do
			b=$(basename "$f")
			case $b in *.xz) xz -dc "$f" >"ovl/lib/ata/${b%.xz}"; b=${b%.xz} ;; *) cp "$f" ovl/lib/ata/ ;; esac
			grep -qx "$b" ovl/lib/ata/order || echo "$b" >>ovl/lib/ata/order
		done <ata.list
		cp "$opt/l2/initrd.img" initrd.img
		(cd ovl && find . -mindepth 1 | busybox cpio -o -H newc 2>/dev/null | gzip -1) >>initrd.img
		cp "$opt/l2/bzImage" bzImage
		printf 'SERIAL 0 115200\nPROMPT 0\nTIMEOUT 0\nDEFAULT debian\nLABEL debian\n  LINUX /bzImage\n  INITRD /initrd.img\n  APPEND console=ttyS0 loglevel=3 panic=-1\n' >syslinux.cfg
		truncate -s 39M fat.img
		mkfs.vfat -F 16 -h 2048 -n PMVMBOOT fat.img >/dev/null
		syslinux --install fat.img
		mcopy -i fat.img bzImage initrd.img syslinux.cfg ::/
		truncate -s 441M debian.raw
		printf 'label: dos\nstart=2048, size=79872, type=6, bootable\nstart=81920, type=83\n' | sfdisk -q debian.raw
		dd if=fat.img of=debian.raw bs=1M seek=1 conv=notrunc status=none
		dd if=root.img of=debian.raw bs=1M seek=40 conv=notrunc,sparse status=none
		dd if=/usr/lib/syslinux/mbr/mbr.bin of=debian.raw bs=440 count=1 conv=notrunc status=none
		mv debian.raw "$out/"
	)
	local rc=$?
	rm -rf "$tmp"
	return $rc
}
