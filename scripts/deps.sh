#!/bin/bash
# scripts/deps.sh: installs what building and testing pmvm needs on Debian 12 (idempotent).
# Debian packages: the nested harness (QEMU, SeaBIOS, busybox, ndctl, daxctl, kmod, cpio,
# e2fsprogs, zstd, xz), iasl/acpiexec for the ACPI tests, g++ for libFuzzer (built by the fuzz
# targets' libfuzzer-sys; scripts/fuzz.sh installs nightly Rust and cargo-fuzz itself), the
# boot-media tools of tests/e2e/fwboot.sh and fwboot-debian.sh (syslinux, mtools, dosfstools,
# fdisk, xorriso, isolinux, debootstrap); PyPI: qemu.qmp (a real QMP client used by the QMP
# tests). The harness fetches the Debian kernel itself (harness/hib setup).
set -euo pipefail
pkgs=(qemu-system-x86 qemu-system-data seabios busybox-static ndctl daxctl kmod cpio e2fsprogs
	zstd xz-utils acpica-tools gcc g++ libc6-dev coreutils util-linux python3 python3-pip
	syslinux syslinux-common mtools dosfstools fdisk xorriso isolinux debootstrap)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
	echo "deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends "${missing[@]}" ||
		{ apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
fi
if ! python3 -c 'import qemu.qmp' 2>/dev/null; then
	python3 -m pip install --quiet qemu.qmp ||
		python3 -m pip install --quiet --break-system-packages qemu.qmp
fi
command -v cargo >/dev/null || { echo "deps: cargo is missing: install Rust (rustup) first" >&2; exit 1; }
