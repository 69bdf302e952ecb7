# shellcheck shell=bash
# hib setup: packages, kernel download/extraction, image builds. Sourced by harness/hib.
# Sets: KPKG KVER KROOT VMLINUX BZIMAGE BUILD (the build dir holding the images).

HIB_PACKAGES=(qemu-system-x86 qemu-system-data seabios ipxe-qemu dropbear-bin busybox-static ndctl daxctl kmod cpio
	e2fsprogs gcc libc6-dev zstd xz-utils coreutils util-linux bash)
# Modules loaded by the L1 /init (dependencies and softdeps are added automatically).
L1_MODULES=(kvm_amd nfit nd_pmem nd_btt dax_pmem device_dax kmem ext4 crc32c_generic loop
	virtio_pci 9pnet_virtio 9p)
# Modules loaded by the L2 /init.
L2_MODULES=(nfit nd_pmem nd_btt dax_pmem device_dax ext4 crc32c_generic)
# Modules in the L2 image that a test loads itself when it needs them (virtio disks: pmvm's
# virtio-mmio, QEMU's virtio-pci; NICs: virtio_net, and e1000 for QEMU's -net nic), so that
# other boots do not pay for them.
L2_EXTRA_MODULES=(virtio_mmio virtio_pci virtio_blk virtio_net e1000)
QEMU_FIRMWARE=(bios-256k.bin bios.bin kvmvapic.bin linuxboot.bin linuxboot_dma.bin multiboot.bin
	multiboot_dma.bin pvh.bin qboot.rom vgabios-stdvga.bin
	efi-e1000.rom efi-virtio.rom) # NIC option ROMs (ipxe-qemu): QEMU's pc refuses a NIC without its ROM

hlog() { echo "hib: $*" >&2; }

ensure_packages() {
	local p missing=()
	for p in "${HIB_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
			missing+=("$p")
	done
	[[ ${#missing[@]} -eq 0 ]] && return 0
	hlog "installing missing packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! timeout 900 apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
		timeout 600 apt-get update >&2 || true
		timeout 900 apt-get install -y --no-install-recommends "${missing[@]}" >&2 || {
			hlog "error: could not install ${missing[*]} (need root and Debian's package archive)"
			return 1
		}
	fi
}

kernel_pkg_name() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}

# Resolve and fetch the kernel; sets KPKG KVER KROOT VMLINUX BZIMAGE.
ensure_kernel() {
	KPKG=${HIB_KERNEL_PKG:-$(kernel_pkg_name)}
	if [[ -z $KPKG ]]; then
		timeout 600 apt-get update >&2 || true
		KPKG=$(kernel_pkg_name)
	fi
	if [[ -z $KPKG ]]; then
		# Offline: fall back to the newest kernel already in the cache.
		KPKG=$(ls -1 "$CACHE/kernel" 2>/dev/null | grep '^linux-image-' | sort -V | tail -n 1)
		[[ -n $KPKG ]] || { hlog "error: cannot resolve linux-image-amd64 (apt-cache depends)"; return 1; }
		hlog "warning: apt-cache gave no kernel; using cached $KPKG"
	fi
	KVER=${KPKG#linux-image-}
	KROOT=$CACHE/kernel/$KPKG
	BZIMAGE=$KROOT/boot/vmlinuz-$KVER
	VMLINUX=$CACHE/kernel/vmlinux-$KVER
	if [[ ! -f $KROOT/.complete ]]; then
		mkdir -p "$CACHE/debs" "$CACHE/kernel"
		local deb
		deb=$(ls -1 "$CACHE/debs/${KPKG}_"*.deb 2>/dev/null | tail -n 1)
		if [[ -z $deb ]]; then
			hlog "downloading $KPKG"
			(cd "$CACHE/debs" && timeout 900 apt-get download -o APT::Sandbox::User=root "$KPKG" >&2) || {
				hlog "error: apt-get download $KPKG failed"
				return 1
			}
			deb=$(ls -1 "$CACHE/debs/${KPKG}_"*.deb 2>/dev/null | tail -n 1)
		fi
		rm -rf "$KROOT"
		dpkg -x "$deb" "$KROOT" || { hlog "error: dpkg -x $deb failed"; return 1; }
		depmod -b "$KROOT" "$KVER" || { hlog "error: depmod -b $KROOT failed"; return 1; }
		touch "$KROOT/.complete"
	fi
	if [[ ! -s $VMLINUX ]]; then
		# The bzImage carries an XZ-compressed vmlinux; find the XZ magic and unpack it so that
		# QEMU can PVH-boot the ELF (the kernel's own XZ decompression is slow under TCG).
		local off
		off=$(LC_ALL=C grep -m1 -obUaP '\xfd7zXZ\x00' "$BZIMAGE" | LC_ALL=C cut -d: -f1)
		[[ -n $off ]] || { hlog "error: no XZ payload in $BZIMAGE"; return 1; }
		tail -c +$((off + 1)) "$BZIMAGE" | xz -dc --single-stream >"$VMLINUX.tmp" 2>/dev/null
		if [[ $(head -c 4 "$VMLINUX.tmp" | od -An -tx1 | tr -d ' \n') != 7f454c46 ]]; then
			hlog "error: extracted vmlinux is not an ELF file"
			rm -f "$VMLINUX.tmp"
			return 1
		fi
		mv "$VMLINUX.tmp" "$VMLINUX"
	fi
}

# Build key: harness sources + kernel + versions of everything copied into the images.
build_key() {
	{
		cat "$HARNESS_DIR"/hib "$HARNESS_DIR"/lib-build.sh "$HARNESS_DIR"/lib-run.sh \
			"$HARNESS_DIR"/l1-init "$HARNESS_DIR"/l2-init "$HARNESS_DIR"/mk-l2-initrd \
			"$HARNESS_DIR"/hibprobe.c
		echo "$KPKG"
		dpkg-query -W -f='${Package}=${Version}\n' "${HIB_PACKAGES[@]}" libc6 2>/dev/null
		stat -c '%s %Y' "$BZIMAGE"
	} | sha256sum | cut -c1-16
}

is_elf() { [[ -f $1 && ! -L $1 && $(head -c 4 "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n') == 7f454c46 ]]; }

# copy_libs ROOT FILE: copy the shared libraries ldd finds for FILE into ROOT at their host paths.
copy_libs() {
	local root=$1 file=$2 lib out
	out=$(ldd "$file" 2>/dev/null) || return 0
	if grep -q 'not found' <<<"$out"; then
		hlog "warning: $file: $(grep 'not found' <<<"$out" | tr -s ' \t' ' ' | tr '\n' ';')"
	fi
	while read -r lib; do
		[[ -e $root$lib ]] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done < <(grep -o '/[^ ]*' <<<"$out" | grep -v '^/\(proc\|dev\)' | sort -u)
}

# install_bin ROOT SRC DEST: copy an executable to ROOT/DEST plus its libraries.
install_bin() {
	local root=$1 src=$2 dest=$3
	mkdir -p "$root$(dirname "$dest")"
	rm -f "$root$dest"
	cp -L "$src" "$root$dest"
	copy_libs "$root" "$src"
}

install_busybox() {
	local root=$1 a
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,mnt}
	cp /bin/busybox "$root/bin/busybox"
	while read -r a; do
		[[ -e $root/$a || $a == bin/busybox ]] && continue
		mkdir -p "$root/$(dirname "$a")"
		ln -s /bin/busybox "$root/$a"
	done < <(/bin/busybox --list-full)
}

# install_modules ROOT MOD...: the modules and their dependency closure, plus depmod.
install_modules() {
	local root=$1 m line f rel
	shift
	local mdir=$KROOT/lib/modules/$KVER
	mkdir -p "$root/lib/modules/$KVER"
	for m in "$@"; do
		line=$(modprobe -C /dev/null -d "$KROOT" -S "$KVER" --show-depends --ignore-install "$m" 2>&1) || {
			hlog "error: module $m: $line"
			return 1
		}
		while read -r f; do
			rel=${f#"$mdir"/}
			mkdir -p "$root/lib/modules/$KVER/$(dirname "$rel")"
			cp "$f" "$root/lib/modules/$KVER/$rel"
		done < <(awk '$1 == "insmod" { print $2 }' <<<"$line")
	done
	cp "$mdir"/modules.order "$mdir"/modules.builtin "$mdir"/modules.builtin.modinfo "$root/lib/modules/$KVER/"
	depmod -b "$root" "$KVER"
}

install_tools_common() {
	local root=$1 e
	install_bin "$root" "$(command -v ndctl)" /usr/bin/ndctl
	install_bin "$root" "$(command -v daxctl)" /usr/bin/daxctl
	install_bin "$root" /sbin/mke2fs /sbin/mke2fs
	ln -sf mke2fs "$root/sbin/mkfs.ext4"
	for e in /etc/ndctl /etc/ndctl.conf.d /etc/daxctl.conf.d /etc/mke2fs.conf; do
		[[ -e $e ]] && cp -a "$e" "$root/etc/"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
	printf 'root:x:0:\nkvm:x:104:\n' >"$root/etc/group"
}

mk_cpio_zst() { # DIR OUT
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | zstd -q -3 -T0 >"$2"
}

build_images() {
	local b=$1 r
	hlog "building images in $b"
	rm -rf "$b" && mkdir -p "$b"
	gcc -static -O2 -Wall -Wextra -o "$b/hibprobe" "$HARNESS_DIR/hibprobe.c" || return 1

	# L1 base: busybox, bash, modules, ndctl/daxctl/mke2fs, hibprobe, /init.
	r=$b/l1root
	install_busybox "$r"
	install_bin "$r" /bin/bash /bin/bash
	install_bin "$r" /usr/bin/timeout /usr/bin/timeout
	install_tools_common "$r"
	install_bin "$r" /sbin/e2fsck /sbin/e2fsck
	# ssh client and key generator (tests/e2e/net.sh: ssh -p 2222 root@127.0.0.1 through hostfwd)
	install_bin "$r" /usr/bin/dbclient /usr/bin/dbclient
	install_bin "$r" /usr/bin/dropbearkey /usr/bin/dropbearkey
	install_modules "$r" "${L1_MODULES[@]}" || return 1
	mkdir -p "$r/etc/hib" "$r/hib/out" "$r/opt/bin"
	printf '%s\n' "${L1_MODULES[@]}" >"$r/etc/hib/modules"
	cp "$b/hibprobe" "$r/usr/bin/hibprobe"
	cp "$HARNESS_DIR/l1-init" "$r/init"
	chmod 0755 "$r/init"
	mk_cpio_zst "$r" "$b/l1-base.cpio.zst"

	# L2 base: busybox, NVDIMM modules, ndctl/daxctl/mke2fs, hibprobe, generic /init.
	r=$b/l2root
	install_busybox "$r"
	install_tools_common "$r"
	install_modules "$r" "${L2_MODULES[@]}" "${L2_EXTRA_MODULES[@]}" || return 1
	# an ssh server for tests that log in (key auth; the test supplies the key and host key)
	install_bin "$r" /usr/sbin/dropbear /usr/sbin/dropbear
	[[ -e $r/etc/passwd ]] || echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
	mkdir -p "$r/etc/l2" "$r/l2"
	printf '%s\n' "${L2_MODULES[@]}" >"$r/etc/l2/modules"
	cp "$b/hibprobe" "$r/usr/bin/hibprobe"
	cp "$HARNESS_DIR/l2-init" "$r/init"
	chmod 0755 "$r/init"
	mk_cpio_zst "$r" "$b/l2-initrd.img"

	# /opt tree for L1 (and for direct mode): L2 kernel + initrd, QEMU + firmware, helpers.
	r=$b/optroot
	local o=$r/opt f src
	mkdir -p "$o/bin" "$o/l2" "$o/share/qemu"
	ln "$VMLINUX" "$o/l2/vmlinux" 2>/dev/null || cp "$VMLINUX" "$o/l2/vmlinux"
	cp "$BZIMAGE" "$o/l2/bzImage"
	cp "$b/l2-initrd.img" "$o/l2/initrd.img"
	cp "$HARNESS_DIR/mk-l2-initrd" "$o/bin/mk-l2-initrd"
	cp "$b/hibprobe" "$o/bin/hibprobe"
	install_bin "$r" /usr/bin/qemu-system-x86_64 /opt/bin/qemu-system-x86_64
	for f in "${QEMU_FIRMWARE[@]}"; do
		src=""
		for d in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
			[[ -e $d/$f ]] && { src=$d/$f; break; }
		done
		[[ -n $src ]] || { hlog "error: QEMU firmware $f not found"; return 1; }
		cp -L "$src" "$o/share/qemu/$f"
	done
	mk_cpio_zst "$r" "$b/l1-opt.cpio.zst"
	rm -rf "$b/l1root" "$b/l2root"
}

# hib_setup: sets BUILD (and the kernel variables); builds what is missing.
hib_setup() {
	local t0=$EPOCHREALTIME
	if [[ $(id -u) -ne 0 ]]; then
		hlog "error: the harness needs root (apt-get, QEMU, 9p security_model=none)"
		return 1
	fi
	ensure_packages || return 1
	mkdir -p "$CACHE"
	ensure_kernel || return 1
	local key
	key=$(build_key)
	BUILD=$CACHE/build/$KVER-$key
	if [[ ! -f $BUILD/.complete ]]; then
		build_images "$BUILD.tmp" || { hlog "error: image build failed"; return 1; }
		rm -rf "$BUILD" && mv "$BUILD.tmp" "$BUILD"
		# the optroot vmlinux may be a hard link to the kernel cache: fine after the move
		touch "$BUILD/.complete"
		# keep only the 3 newest builds
		ls -1dt "$CACHE"/build/*/ 2>/dev/null | tail -n +4 | xargs -r rm -rf
	fi
	hlog "setup ok: kernel $KPKG, build $(basename "$BUILD") ($(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}') s)"
}
