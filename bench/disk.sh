#!/bin/bash
# bench/disk.sh [N]: virtio disk benchmark, QEMU vs pmvm, in ONE L1 host (harness), N rounds
# (default 3), VMM order alternating between rounds. Both get the same
# `-drive file=IMG,format=raw,if=virtio` (QEMU: virtio-blk-pci; pmvm: virtio-mmio) over a
# 256 MiB image on tmpfs in L1, written full of data (a text pattern) before each boot. Guest-timed
# (/proc/uptime deltas, 10 ms resolution), O_DIRECT so the guest's page cache is out of it:
#   seq read    dd 128 MiB from /dev/vda, bs=1M, iflag=direct
#   seq write   dd 128 MiB to /dev/vda, bs=1M, oflag=direct, then a flush (sync)
#   4K reads    dd 4000 x 4 KiB from /dev/vda, iflag=direct: per-request latency
# Prints a markdown table (medians, pmvm/QEMU ratios) on stdout; raw BENCH lines on stderr.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
export BENCH_N=${1:-${BENCH_N:-3}}

l1=$(mktemp)
out=$(mktemp)
trap 'rm -f "$l1" "$out"' EXIT

cat >"$l1" <<'L1EOF'
#!/bin/bash
# L1 part of bench/disk.sh
set -uo pipefail
. "${E2E_LIB:-${HIB_OPT:-/opt}/e2e/lib.sh}"
N=${BENCH_N:-3}
work=$(mktemp -d)
mkdir -p "$work/img"
mount -t tmpfs -o size=600M tmpfs "$work/img"
cat >"$work/l2.sh" <<'EOF'
modprobe virtio_mmio 2>/dev/null; modprobe virtio_pci 2>/dev/null; modprobe virtio_blk
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
up() { read -r u _ </proc/uptime; echo "$u"; }
d() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
t0=$(up)
dd if=/dev/vda of=/dev/null bs=1M count=128 iflag=direct 2>/dev/null; r1=$?
t1=$(up)
dd if=/dev/zero of=/dev/vda bs=1M count=128 oflag=direct 2>/dev/null; r2=$?
sync
t2=$(up)
dd if=/dev/vda of=/dev/null bs=4k count=4000 iflag=direct 2>/dev/null; r3=$?
t3=$(up)
echo "BENCHL2 seq_read=$(d $t0 $t1) seq_write=$(d $t1 $t2) lat4k_us=$(awk -v a=$t2 -v b=$t3 'BEGIN { printf "%.0f", (b - a) * 1e6 / 4000 }') rc=$r1$r2$r3"
EOF
mk-l2-initrd "$work/l2.sh" "$work/initrd.img" || exit 1
for ((round = 1; round <= N; round++)); do
	order="qemu pmvm"
	((round % 2 == 0)) && order="pmvm qemu"
	for vmm in $order; do
		img=$work/img/disk.raw
		rm -f "$img"
		yes PMVM-DISK-BENCH-DATA | head -c $((256 << 20)) >"$img"
		boot_l2 "$vmm" -machine pc,accel=kvm -cpu host -m 512M -smp 1 \
			-drive "file=$img,format=raw,if=virtio" \
			-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/initrd.img" \
			-append "console=ttyS0 quiet loglevel=3 panic=-1" -nographic -no-reboot >/dev/null
		ok=0
		[[ $L2_RC -eq 0 ]] && console_has '@@L2-RC=0@@' && ok=1
		line=$(tr -d '\r' <"$L2_CONSOLE" | grep '^BENCHL2 ' | head -n 1)
		echo "BENCH vmm=$vmm round=$round ok=$ok ${line#BENCHL2 }"
	done
done
umount "$work/img"
rm -rf "$work"
L1EOF

bench_l1 "$l1" 200 "$out"
rc=$?

awk -v n="$BENCH_N" -v when="$(date -u +%Y-%m-%dT%H:%MZ)" "$BENCH_AWK"'
/^BENCH / {
	kv()
	runs[f["vmm"]]++
	if (f["ok"] != 1 || f["rc"] != "000") next
	ok[f["vmm"]]++
	add("r" SUBSEP f["vmm"], f["seq_read"]); add("w" SUBSEP f["vmm"], f["seq_write"])
	add("l" SUBSEP f["vmm"], f["lat4k_us"])
}
END {
	printf "Disk benchmark: %d rounds, one virtio disk, in one L1 (QEMU TCG host, nested KVM); %s\n\n", n, when
	print "| measurement | QEMU | pmvm | pmvm/QEMU |"
	print "|---|---|---|---|"
	q = med("r" SUBSEP "qemu"); p = med("r" SUBSEP "pmvm")
	printf "| sequential read, 128 MiB, 1 MiB O_DIRECT (s) | %s | %s | %s |\n", fmt(q, 2), fmt(p, 2), ratio(p, q)
	q = med("w" SUBSEP "qemu"); p = med("w" SUBSEP "pmvm")
	printf "| sequential write, 128 MiB, 1 MiB O_DIRECT + sync (s) | %s | %s | %s |\n", fmt(q, 2), fmt(p, 2), ratio(p, q)
	q = med("l" SUBSEP "qemu"); p = med("l" SUBSEP "pmvm")
	printf "| 4 KiB O_DIRECT read, per request (us) | %s | %s | %s |\n", fmt(q, 0), fmt(p, 0), ratio(p, q)
	printf "\nok runs: QEMU %d/%d, pmvm %d/%d\n", ok["qemu"], runs["qemu"], ok["pmvm"], runs["pmvm"]
}' "$out"
[[ $rc -eq 0 && -n $STAGE_PMVM ]]
