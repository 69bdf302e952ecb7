#!/bin/bash
# bench/nvdimm.sh [N]: NVDIMM benchmark, QEMU vs pmvm, in ONE L1 host (harness), N rounds
# (default 3), VMM order alternating between rounds. Per round and VMM:
#  - label VM: two NVDIMMs on tmpfs, nmem0 with label-size=128K, nmem1 with label-size=2M
#    (1 GiB pmem each). Guest-timed (L2 /proc/uptime deltas, 10 ms resolution):
#      read-labels   `ndctl read-labels nmemX -o /tmp/l`, repeated R (default 5) times, per call
#      init+create   `ndctl init-labels -f nmemX` + `ndctl enable-region R` +
#                    `ndctl create-namespace -r R -m raw` (the region disabled before, untimed;
#                    enable-region is needed between the two and reads the new labels back)
#      floor         three `ndctl list -D` right before: the same three process starts and sysfs
#                    scans without any label I/O; init+create minus it is what a VMM can change
#  - boot VM: the seed's shape (two 1 GiB NVDIMMs, label-size=2M, labels not initialised), a
#    guest that powers off at once: time from VMM start to its exit (L1 $EPOCHREALTIME) and the
#    guest's uptime when its script runs.
# Prints a markdown table (medians, pmvm/QEMU ratios) on stdout; raw BENCH lines on stderr.
# pmvm is built and staged like tests/e2e/run.sh (E2E_NO_BUILD, PMVM_BIN apply).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
export BENCH_N=${1:-${BENCH_N:-3}} BENCH_R=${BENCH_R:-5}

l1=$(mktemp)
out=$(mktemp)
trap 'rm -f "$l1" "$out"' EXIT

cat >"$l1" <<'L1EOF'
#!/bin/bash
# L1 part of bench/nvdimm.sh
set -uo pipefail
. "${E2E_LIB:-${HIB_OPT:-/opt}/e2e/lib.sh}"
N=${BENCH_N:-3} R=${BENCH_R:-5}
work=$(mktemp -d)
mkdir -p "$work/nv"
mount -t tmpfs -o size=2500M tmpfs "$work/nv"
cat >"$work/l2.sh" <<EOF
R=$R
EOF
cat >>"$work/l2.sh" <<'EOF'
up() { read -r u _ </proc/uptime; echo "$u"; }
read -r u0 _ </proc/uptime
echo "BENCHL2 uptime_at_script=$u0"
for a in $(cat /proc/cmdline); do case $a in nvmode=*) mode=${a#nvmode=} ;; esac; done
[ "$mode" = boot ] && exit 0
region_of() { for r in /sys/bus/nd/devices/region*; do
	[ "$(cut -d, -f1 "$r/mapping0")" = "$1" ] && basename "$r"; done; }
for d in nmem0 nmem1; do
	r=$(region_of $d)
	ls=$(cat /sys/bus/nd/devices/$d/available_slots 2>/dev/null)
	ndctl disable-region "$r" >/dev/null 2>&1
	f0=$(up)
	for i in 1 2 3; do ndctl list -D >/dev/null 2>&1; done
	t0=$(up)
	ndctl init-labels -f "$d" >/dev/null 2>&1; rc1=$?
	ndctl enable-region "$r" >/dev/null 2>&1; rc2=$?
	ndctl create-namespace -r "$r" -m raw >/dev/null 2>&1; rc3=$?
	t1=$(up)
	i=0; rc4=0
	while [ $i -lt $R ]; do ndctl read-labels "$d" -o /tmp/l >/dev/null 2>&1 || rc4=$?; i=$((i + 1)); done
	t2=$(up)
	sz=$(stat -c %s /tmp/l 2>/dev/null)
	echo "BENCHL2 dimm=$d region=$r label_bytes=$sz init_create=$(awk -v a=$t0 -v b=$t1 'BEGIN{printf "%.3f", b-a}') floor=$(awk -v a=$f0 -v b=$t0 'BEGIN{printf "%.3f", b-a}') read_labels=$(awk -v a=$t1 -v b=$t2 -v r=$R 'BEGIN{printf "%.4f", (b-a)/r}') rc=$rc1$rc2$rc3$rc4"
done
EOF
mk-l2-initrd "$work/l2.sh" "$work/initrd.img" || exit 1
boot() { # boot VMM MODE LABEL0 LABEL1
	rm -f "$work"/nv/*.img
	boot_l2 "$1" -machine pc,accel=kvm,nvdimm=on -cpu host -m 512M,slots=4,maxmem=4G -smp 1 \
		-object "memory-backend-file,id=mem1,share=on,mem-path=$work/nv/a.img,size=$(((1 << 30) + $3))" \
		-device "nvdimm,id=nv1,memdev=mem1,label-size=$3" \
		-object "memory-backend-file,id=mem2,share=on,mem-path=$work/nv/b.img,size=$(((1 << 30) + $4))" \
		-device "nvdimm,id=nv2,memdev=mem2,label-size=$4" \
		-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/initrd.img" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1 nvmode=$2" -nographic -no-reboot >/dev/null
}
for ((round = 1; round <= N; round++)); do
	order="qemu pmvm"
	((round % 2 == 0)) && order="pmvm qemu"
	for vmm in $order; do
		boot "$vmm" labels $((128 << 10)) $((2 << 20))
		ok=0
		[[ $L2_RC -eq 0 ]] && console_has '@@L2-RC=0@@' && ok=1
		tr -d '\r' <"$L2_CONSOLE" | grep '^BENCHL2 dimm=' | while read -r _ rest; do
			lab=128K
			[[ $rest == *dimm=nmem1* ]] && lab=2M
			echo "BENCH kind=labels vmm=$vmm round=$round label=$lab ok=$ok $rest"
		done
		boot "$vmm" boot $((2 << 20)) $((2 << 20))
		ok=0
		[[ $L2_RC -eq 0 ]] && console_has '@@L2-RC=0@@' && ok=1
		echo "BENCH kind=boot vmm=$vmm round=$round ok=$ok time=$L2_TIME guest_uptime=$(l2_value uptime_at_script) rss_kb=$L2_RSS_KB"
	done
done
umount "$work/nv"
rm -rf "$work"
L1EOF

bench_l1 "$l1" 400 "$out" BENCH_R
rc=$?

awk -v n="$BENCH_N" -v r="$BENCH_R" -v when="$(date -u +%Y-%m-%dT%H:%MZ)" "$BENCH_AWK"'
/^BENCH / {
	kv()
	runs[f["kind"], f["vmm"], f["label"]]++
	if (f["ok"] != 1) next
	if (f["kind"] == "labels" && f["rc"] != "0000") next
	ok[f["kind"], f["vmm"], f["label"]]++
	if (f["kind"] == "labels") {
		add("read" SUBSEP f["vmm"] SUBSEP f["label"], f["read_labels"])
		add("init" SUBSEP f["vmm"] SUBSEP f["label"], f["init_create"])
		add("floor" SUBSEP f["vmm"] SUBSEP f["label"], f["floor"])
		add("above" SUBSEP f["vmm"] SUBSEP f["label"], f["init_create"] - f["floor"])
	} else {
		add("boot" SUBSEP f["vmm"], f["time"]); add("up" SUBSEP f["vmm"], f["guest_uptime"])
	}
}
END {
	printf "NVDIMM benchmark: %d rounds, QEMU and pmvm alternated, in one L1 (QEMU TCG host, nested KVM); %s\n\n", n, when
	print "| measurement | QEMU (s) | pmvm (s) | pmvm/QEMU | ok runs QEMU/pmvm |"
	print "|---|---|---|---|---|"
	split("128K 2M", L, " ")
	for (i = 1; i <= 2; i++) {
		q = med("read" SUBSEP "qemu" SUBSEP L[i]); p = med("read" SUBSEP "pmvm" SUBSEP L[i])
		printf "| `ndctl read-labels` (%s label area, per call, median of %d-call averages) | %s | %s | %s | %d/%d |\n", L[i], r,
			fmt(q, 3), fmt(p, 3), ratio(p, q), ok["labels", "qemu", L[i]], ok["labels", "pmvm", L[i]]
	}
	for (i = 1; i <= 2; i++) {
		q = med("init" SUBSEP "qemu" SUBSEP L[i]); p = med("init" SUBSEP "pmvm" SUBSEP L[i])
		printf "| `init-labels` + `enable-region` + `create-namespace -m raw` (%s) | %s | %s | %s | %d/%d |\n", L[i],
			fmt(q, 2), fmt(p, 2), ratio(p, q), ok["labels", "qemu", L[i]], ok["labels", "pmvm", L[i]]
		q = med("floor" SUBSEP "qemu" SUBSEP L[i]); p = med("floor" SUBSEP "pmvm" SUBSEP L[i])
		printf "| (floor: three `ndctl list -D`, the same three process starts without label I/O, %s) | %s | %s | %s | |\n", L[i],
			fmt(q, 2), fmt(p, 2), ratio(p, q)
		q = med("above" SUBSEP "qemu" SUBSEP L[i]); p = med("above" SUBSEP "pmvm" SUBSEP L[i])
		printf "| (init+create above that floor, %s) | %s | %s | %s | |\n", L[i], fmt(q, 2), fmt(p, 2), ratio(p, q)
	}
	q = med("boot" SUBSEP "qemu"); p = med("boot" SUBSEP "pmvm")
	printf "| boot to poweroff, 2 NVDIMMs (label-size=2M), VMM start to exit | %s | %s | %s | %d/%d |\n",
		fmt(q, 2), fmt(p, 2), ratio(p, q), ok["boot", "qemu", ""], ok["boot", "pmvm", ""]
	q = med("up" SUBSEP "qemu"); p = med("up" SUBSEP "pmvm")
	printf "| (guest uptime when its script starts, same boots) | %s | %s | %s | |\n", fmt(q, 2), fmt(p, 2), ratio(p, q)
}' "$out"
[[ $rc -eq 0 && -n $STAGE_PMVM ]]
