# shellcheck shell=bash
# Sourced by tests/e2e/stage.sh: what tests/e2e/qmp.sh and bench/hotplug.sh need in L1.
#   stage_qmp DIR   DIR/python (python3 + traced stdlib + qemu.qmp, see stage_python.py),
#                   DIR/e2e/qmp/* (client scripts, L2 script), DIR/e2e/qmp/l2mods/{button,evdev}.ko
#                   (so the L2 guest sees the ACPI power button of system_powerdown).
# Never fails the staging: a missing piece makes qmp.sh FAIL with the reason instead.
stage_qmp() {
	local dir=$1 src=$E2E_REPO/tests/e2e/qmp k v cache="" pkg="" kver="" m
	mkdir -p "$dir/e2e/qmp/l2mods"
	cp "$src"/*.py "$src"/*.sh "$dir/e2e/qmp/"
	python3 "$src/stage_python.py" "$dir/python" "$src/qmp_e2e.py" "$src/hotplug_bench.py" ||
		echo "stage: python3 + qemu.qmp not staged (run scripts/deps.sh); qmp.sh will fail" >&2
	while IFS='=' read -r k v; do
		case $k in CACHE) cache=$v ;; KERNEL_PKG) pkg=$v ;; KVER) kver=$v ;; esac
	done < <("$E2E_REPO/harness/hib" paths 2>/dev/null)
	for m in drivers/acpi/button.ko drivers/input/evdev.ko; do
		v=$cache/kernel/$pkg/lib/modules/$kver/kernel/$m
		if [[ -f $v ]]; then
			cp "$v" "$dir/e2e/qmp/l2mods/"
		elif [[ -f $v.xz ]]; then
			xz -dc "$v.xz" >"$dir/e2e/qmp/l2mods/$(basename "$m")"
		else
			echo "stage: $m not found under $cache/kernel/$pkg (hib setup first)" >&2
		fi
	done
	return 0
}
