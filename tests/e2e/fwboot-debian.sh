#!/bin/bash
# hib: HIB_TIMEOUT=1500
# E2E: an installed Debian 12 booted from its disk through firmware (no -kernel), under QEMU
# (pc, IDE) for reference and pmvm (SeaBIOS for microvm, virtio-mmio). The
# image (tests/e2e/fwboot/debian-hook.sh) is a debootstrapped bookworm (minbase + systemd +
# udev) on an ext4 partition, started by syslinux from a FAT partition with the harness's
# kernel and a small initramfs that mounts /dev/vda2 or /dev/sda2 and switches to systemd. Checks: systemd
# reaches multi-user.target (a unit prints PMVM-DEBIAN-UP on ttyS0) and serial-getty prints
# the login prompt; then SIGTERM ends the VMM with status 0. The time from start to the login
# prompt is printed for both.
set -uo pipefail
. "${E2E_LIB:-${HIB_OPT:-/opt}/e2e/lib.sh}"

work=$(mktemp -d)
opt=${HIB_OPT:-/opt}
export L2_TIMEOUT=${L2_TIMEOUT:-600}
img=$opt/fwboot/debian.raw
if [[ ! -f $img ]]; then
	fail "debian.raw not staged (see the 'stage: fwboot-debian' lines of run.sh)"
	summary
	exit 1
fi
if [[ ! -f /usr/share/seabios/bios-microvm.bin ]]; then
	mkdir -p /usr/share/seabios && cp "$opt/share/seabios/bios-microvm.bin" /usr/share/seabios/
fi

# boot_to_login VMM ARGS...: boot_l2 with a watcher that, once the serial console shows the
# login prompt, records the time (LOGIN = seconds from the VMM's start) and sends SIGTERM.
boot_to_login() {
	local vmm=$1 tag mark
	tag=$(printf '%03d-%s' $((L2_SEQ + 1)) "$(basename "$(vmm_bin "$vmm")")")
	mark=$work/$tag.login
	(
		c=$L2_LOG_DIR/$tag.console
		for _ in $(seq 1 $((L2_TIMEOUT * 10))); do
			if [[ -f $c ]] && tr -d '\r' <"$c" | grep -q 'login: *$' 2>/dev/null; then
				echo "$EPOCHREALTIME" >"$mark"
				sleep 2
				read -r pid _ <"$L2_LOG_DIR/$tag.pid"
				kill -TERM "$pid"
				exit 0
			fi
			[[ -s $L2_LOG_DIR/$tag.end ]] && exit 0
			sleep 0.1
		done
	) &
	local watcher=$!
	boot_l2 "$@"
	local rc=$?
	wait "$watcher"
	LOGIN=""
	if [[ -s $mark ]]; then
		local t0 t1
		read -r _ t0 <"$L2_LOG_DIR/$tag.pid"
		read -r t1 <"$mark"
		LOGIN=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	fi
	echo "--- $vmm console:"
	tr -d '\r' <"$L2_CONSOLE" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g' | grep -v '^\s*$' |
		sed 's/^/  /' | tail -n 25
	echo "--- $vmm stderr:"
	sed 's/^/  /' "$L2_STDERR" | tail -n 6
	return $rc
}

# check_debian VMM RC ROOT: the checks of one boot.
check_debian() {
	local vmm=$1 rc=$2 root=$3
	# (not anchored: SeaBIOS's serial console leaves escape sequences in front of the line)
	[[ $(tr -d '\r' <"$L2_CONSOLE" | grep -ao '@@DEBIAN-ROOT=[^@]*@@' | head -n 1) == "@@DEBIAN-ROOT=$root@@" ]] &&
		console_has '@@DEBIAN-ROOT-MOUNTED@@' && pass "$vmm: initramfs mounted the Debian root from $root" ||
		fail "$vmm: the Debian root was not mounted from $root"
	console_has 'PMVM-DEBIAN-UP 12' && pass "$vmm: systemd reached multi-user.target (Debian 12)" ||
		fail "$vmm: no PMVM-DEBIAN-UP line: multi-user.target not reached"
	if [[ -n $LOGIN ]]; then
		pass "$vmm: the login prompt is on the serial console"
		echo "INFO: $vmm: start to the login prompt: ${LOGIN}s"
	else
		fail "$vmm: no login prompt"
	fi
	[[ $rc -eq 0 ]] && pass "$vmm: SIGTERM ends it with status 0" || fail "$vmm: exit status $rc (want 0)"
}

# QEMU first, with snapshot=on so that pmvm boots the same pristine image (the staged copy is
# this run's own: L1's /opt is a fresh tmpfs). QEMU: pc, its SeaBIOS, an IDE disk (/dev/sda2).
boot_to_login qemu -drive "file=$img,format=raw,index=0,media=disk,snapshot=on" -m 1G -smp 2 \
	-machine pc,accel=kvm -enable-kvm -nographic
check_debian qemu $? /dev/sda2
q=$LOGIN
# pmvm: the seed's drive syntax, SeaBIOS for microvm, a virtio-mmio disk (/dev/vda2).
boot_to_login pmvm -drive "file=$img,format=raw,index=0,media=disk" -m 1G -smp 2 \
	-machine pc,accel=kvm -enable-kvm -nographic
check_debian pmvm $? /dev/vda2
console_has 'SeaBIOS (version' && pass "pmvm: SeaBIOS for microvm ran" || fail "pmvm: no SeaBIOS banner"
echo "INFO: start to the login prompt: qemu ${q:-?}s pmvm ${LOGIN:-?}s"
summary
