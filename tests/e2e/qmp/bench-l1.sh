#!/bin/bash
# tests/e2e/qmp/bench-l1.sh: runs inside L1 for bench/hotplug.sh: BENCH_N rounds, QEMU and pmvm alternating (order flips
# every round), each boots 512M,slots=3,maxmem=4G with one cold unlabelled 1G NVDIMM, and
# tests/e2e/qmp/hotplug_bench.py (qemu.qmp) hot-adds a second one and times
# device_add reply -> guest sees region1 / /dev/pmem1. One "BENCH ..." line per sample.
. "${E2E_LIB:-$HIB_OPT/e2e/lib.sh}"
qdir=$HIB_OPT/e2e/qmp
PY=$HIB_OPT/python/bin/python3
export PYTHONHOME=$HIB_OPT/python PYTHONPATH=$HIB_OPT/python/pkgs PYTHONDONTWRITEBYTECODE=1
"$PY" -c 'import qemu.qmp' || { echo "bench: python3 + qemu.qmp not staged"; exit 1; }
work=$(mktemp -d)
mk-l2-initrd "$qdir/l2-bench.sh" "$work/initrd.img" || exit 1
N=${BENCH_N:-3}

one() { # VMM ROUND
	local vmm=$1 bin d=$work/$1-$2 extra=()
	bin=$(vmm_bin "$vmm")
	mkdir -p "$d"
	[[ $vmm == qemu ]] && extra=(-L "$HIB_OPT/share/qemu" -nodefaults -display none)
	timeout 600 "$bin" -machine pc,accel=kvm,nvdimm=on -cpu host -m 512M,slots=3,maxmem=4G -smp 2 \
		-object "memory-backend-file,id=mem1,share=on,mem-path=$d/nv0.img,size=1G" \
		-device nvdimm,id=nv1,memdev=mem1 \
		-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/initrd.img" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1" -serial "file:$d/console" \
		-qmp "unix:$d/qmp.sock,server=on,wait=off" -no-reboot "${extra[@]}" \
		</dev/null >"$d/stdout" 2>"$d/stderr" &
	local pid=$!
	"$PY" "$qdir/hotplug_bench.py" --vmm "$vmm" --sock "$d/qmp.sock" --console "$d/console" --workdir "$d" 2>&1 |
		sed "s/\$/ round=$2/"
	local i
	for i in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill "$pid" 2>/dev/null
	wait "$pid"
	echo "vmm=$vmm round=$2 exit=$? console: $(tr -d '\r' <"$d/console" | grep -E '^BH-' | tr '\n' ' ')"
	if ! grep -q BH-WAITING "$d/console" 2>/dev/null; then # a guest that never got going: show why
		echo "vmm=$vmm round=$2 console tail:"; tr -d '\r' <"$d/console" | tail -n 15 | sed 's/^/    /'
		echo "vmm=$vmm round=$2 stderr tail:"; grep -v '^pmvm: nvdimm' "$d/stderr" | tail -n 10 | sed 's/^/    /'
	fi
	rm -f "$d"/*.img
}

for r in $(seq 1 "$N"); do
	if ((r % 2)); then one qemu "$r"; one pmvm "$r"; else one pmvm "$r"; one qemu "$r"; fi
done
rm -rf "$work"
