#!/bin/bash
# bench/net.sh [N]: user-network benchmark, QEMU vs pmvm, in ONE L1 host (harness), N rounds
# (default 3), VMM order alternating between rounds. Both get the seed's options verbatim,
# `-net nic -net user,hostfwd=tcp::2222-:22` (QEMU: e1000; pmvm: virtio-net, both over
# libslirp). Measured:
#   download   the guest wgets 64 MiB from a busybox httpd on L1's loopback through 10.0.2.2
#              (guest-timed, /proc/uptime)
#   hostfwd    L1 wgets 64 MiB from the guest's httpd through 127.0.0.1:2222 (L1-timed)
#   ping       guest `ping -c 10 10.0.2.2`, average round trip (ms; libslirp answers itself)
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
# L1 part of bench/net.sh
set -uo pipefail
. "${E2E_LIB:-${HIB_OPT:-/opt}/e2e/lib.sh}"
N=${BENCH_N:-3}
work=$(mktemp -d)
www=$work/www
mkdir -p "$www"
ip link set lo up 2>/dev/null
head -c $((64 << 20)) /dev/zero >"$www/big"
busybox httpd -f -p 127.0.0.1:8080 -h "$www" &
httpd=$!
cat >"$work/l2.sh" <<'EOF'
for m in virtio_mmio virtio_pci virtio_net e1000; do modprobe $m 2>/dev/null; done
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
cat >/tmp/dh.sh <<'X'
#!/bin/sh
[ "$1" = bound ] || exit 0
ip addr add "$ip/${mask:-24}" dev "$interface"
ip route add default via "$router"
X
chmod +x /tmp/dh.sh
ip link set lo up; ip link set eth0 up
udhcpc -i eth0 -n -q -t 10 -T 1 -s /tmp/dh.sh >/dev/null 2>&1
mkdir -p /www
head -c $((64 << 20)) /dev/zero >/www/big
httpd -p 22 -h /www
up() { read -r u _ </proc/uptime; echo "$u"; }
t0=$(up)
wget -q -O /dev/null http://10.0.2.2:8080/big; r1=$?
t1=$(up)
rtt=$(ping -c 10 -i 0.2 10.0.2.2 2>/dev/null | sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p')
echo "BENCHL2 download=$(awk -v a=$t0 -v b=$t1 'BEGIN { printf "%.3f", b - a }') ping_ms=${rtt:-nan} rc=$r1"
i=0
until wget -q -O /dev/null http://10.0.2.2:8080/done 2>/dev/null || [ $i -ge 120 ]; do sleep 1; i=$((i + 1)); done
EOF
mk-l2-initrd "$work/l2.sh" "$work/initrd.img" || exit 1
for ((round = 1; round <= N; round++)); do
	order="qemu pmvm"
	((round % 2 == 0)) && order="pmvm qemu"
	for vmm in $order; do
		rm -f "$www/done" "$work/fwd"
		(
			for i in $(seq 1 200); do
				t0=$EPOCHREALTIME
				if busybox wget -q -O /dev/null http://127.0.0.1:2222/big 2>/dev/null; then
					awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f\n", b - a }' >"$work/fwd"
					break
				fi
				sleep 0.5
			done
			touch "$www/done"
		) &
		side=$!
		boot_l2 "$vmm" -machine pc,accel=kvm -cpu host -m 512M -smp 1 \
			-net nic -net user,hostfwd=tcp::2222-:22 \
			-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/initrd.img" \
			-append "console=ttyS0 quiet loglevel=3 panic=-1" -nographic -no-reboot >/dev/null
		wait $side
		ok=0
		[[ $L2_RC -eq 0 ]] && console_has '@@L2-RC=0@@' && ok=1
		line=$(tr -d '\r' <"$L2_CONSOLE" | grep '^BENCHL2 ' | head -n 1)
		echo "BENCH vmm=$vmm round=$round ok=$ok hostfwd=$(cat "$work/fwd" 2>/dev/null || echo nan) ${line#BENCHL2 }"
	done
done
kill $httpd
rm -rf "$work"
L1EOF

bench_l1 "$l1" 200 "$out"
rc=$?

awk -v n="$BENCH_N" -v when="$(date -u +%Y-%m-%dT%H:%MZ)" "$BENCH_AWK"'
/^BENCH / {
	kv()
	runs[f["vmm"]]++
	if (f["ok"] != 1 || f["rc"] != "0") next
	ok[f["vmm"]]++
	add("d" SUBSEP f["vmm"], f["download"])
	if (f["hostfwd"] != "nan") add("f" SUBSEP f["vmm"], f["hostfwd"])
	if (f["ping_ms"] != "nan") add("p" SUBSEP f["vmm"], f["ping_ms"])
}
END {
	printf "Network benchmark: %d rounds, -net nic -net user,hostfwd=tcp::2222-:22, in one L1 (QEMU TCG host, nested KVM); %s\n\n", n, when
	print "| measurement | QEMU (e1000) | pmvm (virtio-net) | pmvm/QEMU |"
	print "|---|---|---|---|"
	q = med("d" SUBSEP "qemu"); p = med("d" SUBSEP "pmvm")
	printf "| guest download, 64 MiB from L1 through 10.0.2.2 (s) | %s | %s | %s |\n", fmt(q, 2), fmt(p, 2), ratio(p, q)
	q = med("f" SUBSEP "qemu"); p = med("f" SUBSEP "pmvm")
	printf "| L1 download, 64 MiB from the guest through hostfwd 127.0.0.1:2222 (s) | %s | %s | %s |\n", fmt(q, 2), fmt(p, 2), ratio(p, q)
	q = med("p" SUBSEP "qemu"); p = med("p" SUBSEP "pmvm")
	printf "| ping 10.0.2.2, average round trip (ms) | %s | %s | %s |\n", fmt(q, 3), fmt(p, 3), ratio(p, q)
	printf "\nok runs: QEMU %d/%d, pmvm %d/%d\n", ok["qemu"], runs["qemu"], ok["pmvm"], runs["pmvm"]
}' "$out"
[[ $rc -eq 0 && -n $STAGE_PMVM ]]
