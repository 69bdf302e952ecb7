# shellcheck shell=bash
# Host-side helper for tests/e2e/run.sh and bench/*.sh (sourced): build pmvm and stage an
# HIB_EXTRA_DIR holding bin/pmvm, bin/pmctl, bin/vncprobe and e2e/*.sh (the test scripts and lib.sh),
# plus python/ and e2e/qmp/ for qmp.sh (tests/e2e/qmp/stage-hook.sh), and fwboot/ +
# share/seabios/ for fwboot.sh (tests/e2e/fwboot/stage-hook.sh).
#
#   stage_extra_dir DIR   sets STAGE_PMVM to the staged binary's source ("" if none)
# Settings: E2E_NO_BUILD=1 (do not run cargo; use an existing binary), PMVM_BIN=/path
# (use this binary as is), E2E_PROFILE=release|debug (default release).

E2E_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# find_pmvm: print the pmvm binary to stage, building it unless told not to.
find_pmvm() {
	local tdir=${CARGO_TARGET_DIR:-$E2E_REPO/target} profile=${E2E_PROFILE:-release} c
	if [[ -n ${PMVM_BIN:-} ]]; then
		[[ -x $PMVM_BIN ]] && { echo "$PMVM_BIN"; return 0; }
		echo "stage: PMVM_BIN=$PMVM_BIN is not an executable" >&2
		return 1
	fi
	if [[ ${E2E_NO_BUILD:-0} != 1 ]]; then
		local flag=()
		[[ $profile == release ]] && flag=(--release)
		echo "stage: cargo build ${flag[*]} -p pmvm" >&2
		if ! (cd "$E2E_REPO" && cargo build "${flag[@]}" -p pmvm >&2); then
			echo "stage: cargo build -p pmvm FAILED; pmvm cases will fail" >&2
			return 1
		fi
		c=$tdir/$profile/pmvm
		[[ -x $c ]] && { echo "$c"; return 0; }
		echo "stage: build succeeded but $c is missing" >&2
		return 1
	fi
	for c in "$tdir/release/pmvm" "$tdir/debug/pmvm"; do
		[[ -x $c ]] && { echo "$c"; return 0; }
	done
	echo "stage: no pmvm binary in $tdir/{release,debug} (E2E_NO_BUILD=1)" >&2
	return 1
}

# find_pmctl: the pmctl binary to stage as bin/pmctl (tests/e2e/pmctl-host.sh), built like
# pmvm but separately, so a pmctl build failure never costs the pmvm cases. PMCTL_BIN=path overrides.
find_pmctl() {
	local tdir=${CARGO_TARGET_DIR:-$E2E_REPO/target} profile=${E2E_PROFILE:-release} c flag=()
	[[ -n ${PMCTL_BIN:-} ]] && { echo "$PMCTL_BIN"; return 0; }
	[[ $profile == release ]] && flag=(--release)
	if [[ ${E2E_NO_BUILD:-0} != 1 ]]; then
		echo "stage: cargo build ${flag[*]} -p pmctl" >&2
		(cd "$E2E_REPO" && cargo build "${flag[@]}" -p pmctl >&2) || { echo "stage: cargo build -p pmctl FAILED" >&2; return 1; }
	fi
	for c in "$tdir/$profile/pmctl" "$tdir/release/pmctl" "$tdir/debug/pmctl"; do
		[[ -x $c ]] && { echo "$c"; return 0; }
	done
	echo "stage: no pmctl binary in $tdir" >&2
	return 1
}

stage_extra_dir() {
	local dir=$1
	mkdir -p "$dir/bin" "$dir/e2e"
	cp "$E2E_REPO"/tests/e2e/*.sh "$dir/e2e/"
	STAGE_PMVM=$(find_pmvm) || STAGE_PMVM=""
	if [[ -n $STAGE_PMVM ]]; then
		cp "$STAGE_PMVM" "$dir/bin/pmvm"
		echo "stage: pmvm = $STAGE_PMVM" >&2
	fi
	STAGE_PMCTL=$(find_pmctl) || STAGE_PMCTL=""
	[[ -n $STAGE_PMCTL ]] && cp "$STAGE_PMCTL" "$dir/bin/pmctl" && echo "stage: pmctl = $STAGE_PMCTL" >&2
	# tests/e2e/vnc.sh: the static RFB client for L1's busybox userland (built like hibprobe).
	gcc -static -O2 -Wall -Wextra -o "$dir/bin/vncprobe" "$E2E_REPO/harness/vncprobe.c" ||
		echo "stage: building harness/vncprobe.c FAILED; vnc.sh will fail" >&2
	# QEMU's VNC server will not start without its keymap (merged into L1's /opt/share/qemu).
	if [[ -f /usr/share/qemu/keymaps/en-us ]]; then
		mkdir -p "$dir/share/qemu/keymaps"
		cp /usr/share/qemu/keymaps/en-us "$dir/share/qemu/keymaps/"
	fi
	# tests/e2e/qmp.sh, bench/hotplug.sh: python3 + qemu.qmp ($dir/python), e2e/qmp/, L2 modules
	if [[ -f $E2E_REPO/tests/e2e/qmp/stage-hook.sh ]]; then
		. "$E2E_REPO/tests/e2e/qmp/stage-hook.sh"
		stage_qmp "$dir"
	fi
	# tests/e2e/fwboot.sh: a bootable disk and ISO, and pmvm's default firmware
	if [[ -f $E2E_REPO/tests/e2e/fwboot/stage-hook.sh ]]; then
		. "$E2E_REPO/tests/e2e/fwboot/stage-hook.sh"
		stage_fwboot "$dir"
	fi
	# tests/e2e/fwboot-debian.sh: a debootstrapped Debian 12 disk (large: only when that test runs)
	if [[ " ${E2E_TESTS:-} " == *" fwboot-debian "* && -f $E2E_REPO/tests/e2e/fwboot/debian-hook.sh ]]; then
		. "$E2E_REPO/tests/e2e/fwboot/debian-hook.sh"
		stage_fwboot_debian "$dir"
	fi
	return 0
}
