#!/bin/bash
# E2E: networking with the seed's options verbatim, `-net nic -net user,hostfwd=tcp::2222-:22`,
# under QEMU (pc: an e1000 on PCI) and pmvm (a virtio-net on virtio-mmio, with a notice naming
# the guest driver). The same guest script runs under both:
#  - the NIC appears (driver virtio_net under pmvm, e1000 under QEMU) with QEMU's default MAC
#    52:54:00:12:34:56;
#  - udhcpc gets 10.0.2.15 with router 10.0.2.2 and DNS 10.0.2.3 (libslirp's DHCP);
#  - the guest fetches a 4 MiB file from a busybox httpd on L1's loopback through the gateway
#    10.0.2.2 (md5 compared) and times a 32 MiB fetch (INFO, pmvm/QEMU);
#  - hostfwd: `ssh -p 2222 root@127.0.0.1 cat /www/hello` from L1 (dropbear's dbclient, key
#    auth) runs a command in the guest, whose dropbear listens on port 22 (an image without
#    dropbear: L1 fetches the file from a guest httpd on port 22 instead);
#  - the monitor (QMP human-monitor-command over -qmp tcp:): `info network` lists the NIC and
#    the user network, `set_link e1000.0 off` takes the guest's carrier down (a configuration
#    interrupt under pmvm).
# pmvm only, without a guest: an occupied host port 2222 is refused naming the rule and port.
set -uo pipefail
. "${E2E_LIB:-${HIB_OPT:-/opt}/e2e/lib.sh}"

work=$(mktemp -d)
www=$work/www
mkdir -p "$www"
ip link set lo up 2>/dev/null
head -c $((4 << 20)) /dev/urandom >"$www/file"
want_md5=$(md5sum <"$www/file" | cut -d' ' -f1)
head -c $((32 << 20)) /dev/zero >"$www/big"
HTTP_PORT=8080 QMP_PORT=4445
busybox httpd -f -p "127.0.0.1:$HTTP_PORT" -h "$www" &
httpd_pid=$!
trap 'kill $httpd_pid 2>/dev/null' EXIT

cat >"$work/l2.sh" <<'L2_END'
for a in $(cat /proc/cmdline); do case $a in vmm=*) vmm=${a#vmm=} ;; esac; done
for m in virtio_mmio virtio_pci virtio_net e1000; do modprobe $m 2>/dev/null; done
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
echo "NICDRV=$(basename "$(readlink /sys/class/net/eth0/device/driver)")"
echo "MAC=$(cat /sys/class/net/eth0/address)"
cat >/tmp/dh.sh <<'EOF'
#!/bin/sh
[ "$1" = bound ] || exit 0
ip addr add "$ip/${mask:-24}" dev "$interface"
ip route add default via "$router"
echo "LEASE ip=$ip router=$router dns=$dns"
EOF
chmod +x /tmp/dh.sh
ip link set lo up
ip link set eth0 up
udhcpc -i eth0 -n -q -t 10 -T 1 -s /tmp/dh.sh 2>&1 | grep -v '^udhcpc: \(started\|broadcasting\|sending\)'
mkdir -p /www
echo "HELLO-FROM-THE-GUEST" >/www/hello
if command -v dropbear >/dev/null; then
	dropbear -r /etc/dropbear/host_key -p 22 -E 2>/tmp/dropbear.log && echo "SSHD=dropbear"
else
	httpd -p 22 -h /www && echo "SSHD=none"
fi
if wget -q -O /tmp/file http://10.0.2.2:8080/file; then
	echo "FETCH-MD5=$(md5sum </tmp/file | cut -d' ' -f1)"
else
	echo "@@FETCH-FAILED@@"
fi
read -r t0 _ </proc/uptime
wget -q -O /dev/null http://10.0.2.2:8080/big && read -r t1 _ </proc/uptime &&
	echo "BIG32 secs=$(awk -v a=$t0 -v b=$t1 'BEGIN { printf "%.2f", b - a }')"
# L1 fetches /hello through hostfwd, then publishes "done".
i=0
until wget -q -O /dev/null http://10.0.2.2:8080/done 2>/dev/null || [ $i -ge 90 ]; do sleep 1; i=$((i + 1)); done
[ $i -lt 90 ] && echo "@@HOSTFWD-DONE@@"
# L1 then sets the link down through the monitor.
i=0
while [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" = 1 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
[ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" = 0 ] && echo "@@CARRIER-DOWN@@"
L2_END
extra=$work/extra
mkdir -p "$extra/etc/dropbear" "$extra/root/.ssh"
chmod 700 "$extra/root/.ssh"
have_ssh=0
if command -v dbclient >/dev/null && command -v dropbearkey >/dev/null; then
	dropbearkey -t ed25519 -f "$work/id" >/dev/null 2>&1 &&
		dropbearkey -y -f "$work/id" 2>/dev/null | grep '^ssh-' >"$extra/root/.ssh/authorized_keys" &&
		dropbearkey -t ed25519 -f "$extra/etc/dropbear/host_key" >/dev/null 2>&1 && have_ssh=1
	chmod 600 "$extra/root/.ssh/authorized_keys" 2>/dev/null
fi
mk-l2-initrd "$work/l2.sh" "$work/initrd.img" "$extra" || { fail "mk-l2-initrd"; summary; exit 1; }

qmp() { # qmp JSON...: one QMP session, the replies on stdout
	{
		echo '{"execute":"qmp_capabilities"}'
		for c in "$@"; do sleep 0.3; echo "$c"; done
		sleep 1
	} | busybox nc 127.0.0.1 "$QMP_PORT"
}

# l1_side VMM: fetch through the forwarded port, then the monitor; results in $work/VMM.*.
l1_side() {
	local vmm=$1 i
	for i in $(seq 1 150); do
		if [[ $have_ssh == 1 ]]; then
			HOME=$work timeout 20 dbclient -y -y -i "$work/id" -p 2222 root@127.0.0.1 'cat /www/hello' \
				</dev/null >"$work/$vmm.hello" 2>"$work/$vmm.ssh-err" && break
		elif busybox wget -q -O "$work/$vmm.hello" http://127.0.0.1:2222/hello 2>/dev/null; then
			break
		fi
		sleep 1
	done
	touch "$www/done"
	sleep 2
	qmp '{"execute":"human-monitor-command","arguments":{"command-line":"info network"}}' \
		'{"execute":"set_link","arguments":{"name":"e1000.0","up":false}}' >"$work/$vmm.qmp" 2>&1
}

declare -A big
for vmm in pmvm qemu; do
	rm -f "$www/done" "$work/$vmm.hello"
	l1_side "$vmm" &
	side=$!
	boot_l2 "$vmm" -machine pc,accel=kvm -cpu host -m 512M -smp 1 \
		-net nic -net user,hostfwd=tcp::2222-:22 \
		-qmp "tcp:127.0.0.1:$QMP_PORT,server=on,wait=off" \
		-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/initrd.img" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1 vmm=$vmm" -nographic -no-reboot
	wait $side
	[[ $L2_RC -eq 0 ]] && pass "$vmm: guest ran and powered off" || fail "$vmm: exit $L2_RC"
	con=$(tr -d '\r' <"$L2_CONSOLE")
	cp "$L2_CONSOLE" "${HIB_OUT:-$work}/net-$vmm.console" 2>/dev/null
	echo "$vmm guest:"
	grep -E '^(NICDRV|MAC|LEASE|FETCH|BIG32|SSHD|@@)' <<<"$con" | sed 's/^/    /'
	want_drv=virtio_net
	[[ $vmm == qemu ]] && want_drv=e1000
	grep -q "^NICDRV=$want_drv\$" <<<"$con" && pass "$vmm: the guest's NIC is $want_drv" ||
		fail "$vmm: no $want_drv NIC in the guest"
	grep -q '^MAC=52:54:00:12:34:56$' <<<"$con" && pass "$vmm: QEMU's default MAC" ||
		fail "$vmm: MAC is not 52:54:00:12:34:56"
	grep -q '^LEASE ip=10.0.2.15 router=10.0.2.2 dns=10.0.2.3$' <<<"$con" &&
		pass "$vmm: udhcpc got 10.0.2.15, router 10.0.2.2, DNS 10.0.2.3" || fail "$vmm: no DHCP lease for 10.0.2.15"
	grep -q "^FETCH-MD5=$want_md5\$" <<<"$con" && pass "$vmm: the guest fetched 4 MiB from L1's loopback through 10.0.2.2" ||
		fail "$vmm: the fetch through 10.0.2.2 failed or differs"
	[[ $(cat "$work/$vmm.hello" 2>/dev/null) == HELLO-FROM-THE-GUEST ]] &&
		grep -q '@@HOSTFWD-DONE@@' <<<"$con" &&
		pass "$vmm: hostfwd: 127.0.0.1:2222 in L1 reaches the guest's server on port 22" ||
		fail "$vmm: hostfwd: 127.0.0.1:2222 did not reach the guest ($(tail -n 1 "$work/$vmm.ssh-err" 2>/dev/null))"
	if [[ $have_ssh == 1 ]]; then
		grep -q '^SSHD=dropbear$' <<<"$con" && [[ $(cat "$work/$vmm.hello" 2>/dev/null) == HELLO-FROM-THE-GUEST ]] &&
			pass "$vmm: ssh -p 2222 root@127.0.0.1 ran a command in the guest (dropbear, key auth)" ||
			fail "$vmm: ssh through hostfwd did not run the command"
	else
		echo "INFO: no dbclient/dropbear in the images: hostfwd checked with HTTP only"
	fi
	echo "$vmm monitor:"
	tr -d '\r' <"$work/$vmm.qmp" | sed 's/^/    /' | head -n 12
	grep -q 'user' "$work/$vmm.qmp" && grep -q 'e1000' "$work/$vmm.qmp" &&
		pass "$vmm: info network lists the NIC and the user network" || fail "$vmm: info network"
	grep -q '@@CARRIER-DOWN@@' <<<"$con" && pass "$vmm: set_link off takes the guest's carrier down" ||
		fail "$vmm: set_link off did not reach the guest"
	big[$vmm]=$(sed -n 's/^BIG32 secs=//p' <<<"$con")
	if [[ $vmm == pmvm ]]; then
		grep -q 'NIC model e1000 is given to the guest as virtio-net' "$L2_STDERR" &&
			pass "pmvm: says the e1000 is given as virtio-net" || fail "pmvm: no notice for the e1000 model"
	fi
done
echo "INFO: 32 MiB guest fetch through the user network: pmvm ${big[pmvm]:-?}s, qemu ${big[qemu]:-?}s"

# An occupied host port: refused with the rule and the port named, before the guest starts.
busybox nc -l -p 2222 >/dev/null 2>&1 &
holder=$!
sleep 0.5
out=$(timeout 30 "$(vmm_bin pmvm)" -m 128M -net nic -net user,hostfwd=tcp::2222-:22 \
	-kernel "$HIB_OPT/l2/vmlinux" -nographic -no-reboot 2>&1 </dev/null)
rc=$?
kill $holder 2>/dev/null
echo "    $out" | tail -n 2
[[ $rc -ne 0 ]] && grep -q "hostfwd\|forwarding rule 'tcp::2222-:22'" <<<"$out" && grep -q ':2222' <<<"$out" &&
	pass "pmvm: an occupied host port 2222 is refused, naming it" || fail "pmvm: occupied port (rc $rc)"
summary
