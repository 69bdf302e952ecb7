#!/bin/bash
# hib: HIB_TIMEOUT=1500
# E2E: an installed Debian 12 booted from its disk through firmware (pmvm, no -kernel). The
# image (tests/e2e/fwboot/debian-hook.sh) is a debootstrapped bookworm (minbase + systemd +
# udev) on an ext4 partition, started by syslinux from a FAT partition with the harness's
# kernel and a small initramfs that mounts /dev/vda2 and switches to systemd. Checks: systemd
# reaches multi-user.target (a unit prints PMVM-DEBIAN-UP on ttyS0) and serial-getty prints
# the login prompt; then SIGTERM ends pmvm with status 0. The time from start to the login
# prompt is printed.
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

tag=$(printf '%03d-%s' $((L2_SEQ + 1)) pmvm)
mark=$work/login
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
watcher=$!
# The staged copy is this run's own (L1's /opt is a fresh tmpfs): boot it in place.
boot_l2 pmvm -drive "file=$img,format=raw,index=0,media=disk" -m 1G -smp 2 \
	-machine pc,accel=kvm -enable-kvm -nographic
rc=$?
wait "$watcher"
echo "--- pmvm console:"
tr -d '\r' <"$L2_CONSOLE" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g' | grep -v '^\s*$' |
	sed 's/^/  /' | tail -n 40
echo "--- pmvm stderr:"
sed 's/^/  /' "$L2_STDERR" | tail -n 10
console_has 'SeaBIOS (version' && pass "SeaBIOS ran" || fail "no SeaBIOS banner"
console_has '@@DEBIAN-ROOT-MOUNTED@@' && pass "initramfs mounted the Debian root from /dev/vda2" ||
	fail "the Debian root was not mounted"
console_has 'PMVM-DEBIAN-UP 12' && pass "systemd reached multi-user.target (Debian 12)" ||
	fail "no PMVM-DEBIAN-UP line: multi-user.target not reached"
if [[ -s $mark ]]; then
	pass "the login prompt is on the serial console"
	read -r _ t0 <"$L2_LOG_DIR/$tag.pid"
	read -r t1 <"$mark"
	echo "INFO: pmvm: start to the login prompt: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')s"
else
	fail "no login prompt"
fi
[[ $rc -eq 0 ]] && pass "SIGTERM ends pmvm with status 0" || fail "pmvm exit status $rc (want 0)"
summary
