#!/bin/bash
# hib: HIB_NVDIMMS=1G,1G HIB_TIMEOUT=600
# E2E test of pmctl's host side (runs inside the harness's L1, which has two emulated 1 GiB
# NVDIMMs): namespaces in all four modes, `pmctl host nvdimms --json` compared field by field
# with `ndctl list -NRD -v`, `pmctl probe` on device DAX / DAX file / page cache / tmpfs, and
# `pmctl size` arguments that QEMU accepts on the device. Results: PASS/FAIL lines, SUMMARY.
set -uo pipefail
. "${E2E_LIB:-${HIB_OPT:-/opt}/e2e/lib.sh}"

PMCTL=${PMCTL:-${HIB_OPT:-/opt}/bin/pmctl}
OUT=${HIB_OUT:-$(mktemp -d)}
work=$(mktemp -d)

if [[ ! -x $PMCTL ]]; then
	fail "pmctl binary missing at $PMCTL (tests/e2e/run.sh stages target/release/pmctl as bin/pmctl)"
	summary
	exit
fi

# json_flatten < JSON: one "path=value" line per scalar (paths like regions.0.namespaces.1.dev).
# Small on purpose: L1 has no jq or python; this is independent of pmctl's own JSON code.
json_flatten() {
	awk 'BEGIN { RS = "\001" } { s = s $0 } END {
		n = length(s); i = 1; d = 0
		while (i <= n) {
			c = substr(s, i, 1)
			if (c == "{" || c == "[") { d++; t[d] = c; key[d] = (c == "[" ? 0 : ""); i++; continue }
			if (c == "}" || c == "]") { d--; i++; continue }
			if (c == ",") { if (t[d] == "[") key[d]++; i++; continue }
			if (c == "\"") {
				j = i + 1; v = ""
				while (j <= n) {
					ch = substr(s, j, 1)
					if (ch == "\\") { v = v substr(s, j + 1, 1); j += 2; continue }
					if (ch == "\"") break
					v = v ch; j++
				}
				i = j + 1; k = i
				while (k <= n && index(" \t\r\n", substr(s, k, 1))) k++
				if (t[d] == "{" && substr(s, k, 1) == ":") { key[d] = v; i = k + 1; continue }
				print path() "=" v; continue
			}
			if (index("-0123456789tfn", c)) {
				j = i
				while (j <= n && !index(",}] \t\r\n", substr(s, j, 1))) j++
				print path() "=" substr(s, i, j - i); i = j; continue
			}
			i++
		}
	}
	function path(   k, r) { r = ""; for (k = 1; k <= d; k++) r = r (k > 1 ? "." : "") key[k]; return r }'
}

# Normalised "namespaceX.Y field=value" lines from the flattened ndctl / pmctl JSON.
ndctl_norm() {
	awk -F= '
	{ v = substr($0, length($1) + 2); n = split($1, p, ".") }
	n == 3 && p[1] == "regions" { reg[p[2], p[3]] = v }
	n >= 5 && p[1] == "regions" && p[3] == "namespaces" {
		k = p[2] SUBSEP p[4]; f = substr($1, length(p[1] p[2] p[3] p[4]) + 5)
		ns[k, f] = v; keys[k] = 1
	}
	END {
		for (k in keys) {
			split(k, b, SUBSEP); dev = ns[k, "dev"]
			node = ns[k, "blockdev"]
			if (node == "") node = ns[k, "chardev"]
			if (node == "") node = ns[k, "daxregion.devices.0.chardev"]
			print dev, "mode=" ns[k, "mode"]
			print dev, "size=" ns[k, "size"]
			print dev, "align=" ((k, "align") in ns ? ns[k, "align"] : "null")
			print dev, "map=" ((k, "map") in ns ? ns[k, "map"] : "null")
			print dev, "uuid=" ns[k, "uuid"]
			print dev, "numa_node=" ((k, "numa_node") in ns ? ns[k, "numa_node"] : "unknown")
			print dev, "device=/dev/" node
			print dev, "region=" reg[b[1], "dev"]
			print dev, "region.size=" reg[b[1], "size"]
			print dev, "region.align=" ((b[1], "align") in reg ? reg[b[1], "align"] : "null")
			print dev, "region.persistence_domain=" reg[b[1], "persistence_domain"]
			print dev, "region.iset_id=" reg[b[1], "iset_id"]
		}
	}' | sort
}

pmctl_norm() {
	awk -F= '
	{ v = substr($0, length($1) + 2); n = split($1, p, ".") }
	p[1] == "namespaces" && n >= 3 {
		k = p[2]; f = substr($1, length(p[1] p[2]) + 3); ns[k, f] = v; keys[k] = 1
	}
	END {
		split("mode size align map uuid numa_node device", fs, " ")
		for (k in keys) {
			dev = ns[k, "dev"]
			for (i = 1; i <= 7; i++) print dev, fs[i] "=" ns[k, fs[i]]
			print dev, "region=" ns[k, "region.dev"]
			print dev, "region.size=" ns[k, "region.size"]
			print dev, "region.align=" ns[k, "region.align"]
			print dev, "region.persistence_domain=" ns[k, "region.persistence_domain"]
			print dev, "region.iset_id=" ns[k, "region.iset_id"]
		}
	}' | sort
}

echo "=== namespaces in all four modes"
# quiet CMD...: run CMD, show its output only when it fails.
quiet() { "$@" >"$work/quiet.out" 2>&1 || { sed 's/^/    /' "$work/quiet.out" | tail -n 8; return 1; }; }
check "init labels" quiet sh -c 'ndctl disable-region all && ndctl init-labels -f all && ndctl enable-region all'
check "create devdax 512M align 2M on region0" quiet ndctl create-namespace -r region0 -m devdax -a 2M -s 512M
check "create raw on region0" quiet ndctl create-namespace -r region0 -m raw
check "create fsdax 512M on region1" quiet ndctl create-namespace -r region1 -m fsdax -s 512M
check "create sector on region1" quiet ndctl create-namespace -r region1 -m sector

echo "=== pmctl host nvdimms vs ndctl list -NRD -v"
ndctl list -NRD -v >"$work/ndctl.json" 2>"$work/ndctl.err"
cp "$work/ndctl.json" "$OUT/ndctl-list-NRD-v.json"
run_saved host-nvdimms-json "$PMCTL" host nvdimms --json
expect_rc host-nvdimms-json 0
run_saved host-nvdimms "$PMCTL" host nvdimms
expect_rc host-nvdimms 0
sed 's/^/    /' "$work/host-nvdimms.out"
json_flatten <"$work/ndctl.json" | ndctl_norm >"$work/ndctl.norm"
json_flatten <"$work/host-nvdimms-json.out" | pmctl_norm >"$work/pmctl.norm"
cp "$work/ndctl.norm" "$work/pmctl.norm" "$OUT/"
nd_ns=$(cut -d' ' -f1 "$work/ndctl.norm" | sort -u | wc -l)
pm_ns=$(cut -d' ' -f1 "$work/pmctl.norm" | sort -u | wc -l)
if [[ $nd_ns -eq 4 && $pm_ns -eq $nd_ns ]]; then pass "namespace count: ndctl $nd_ns, pmctl $pm_ns"; else
	fail "namespace count: ndctl $nd_ns, pmctl $pm_ns (want 4 each)"
fi
while read -r dev field; do
	name=${field%%=*}
	if grep -qxF "$dev $field" "$work/pmctl.norm"; then
		pass "$dev $field"
	else
		fail "$dev ndctl $field, pmctl $(grep "^$dev $name=" "$work/pmctl.norm" | cut -d' ' -f2-)"
	fi
done <"$work/ndctl.norm"

echo "=== in use by: a QEMU holding /dev/dax0.0, with the arguments pmctl size prints"
run_saved size-dax "$PMCTL" size /dev/dax0.0
expect_rc size-dax 0
sed 's/^/    /' "$work/size-dax.out"
run_saved size-dax-json "$PMCTL" size /dev/dax0.0 --json --id nv0
expect_rc size-dax-json 0
json_flatten <"$work/size-dax-json.out" >"$work/size.flat"
val() { sed -n "s/^$1=//p" "$work/size.flat"; }
dsize=$(val device.size) bsize=$(val backend_size) psize=$(val pmem_size) loff=$(val label_offset)
if [[ -n $dsize && -n $bsize && $bsize -le $dsize && $bsize -gt 0 ]]; then
	pass "size: backend $bsize fits the device ($dsize)"
else fail "size: backend '$bsize' vs device '$dsize'"; fi
if [[ -n $psize && $psize -gt 0 && $((psize % (128 << 20))) -eq 0 && $((loff + (128 << 10))) -eq $bsize ]]; then
	pass "size: pmem $psize is whole 128 MiB blocks, label at $loff = end - 128K"
else fail "size: pmem '$psize' label_offset '$loff' backend '$bsize'"; fi
obj=$(grep -- '-object ' "$work/size-dax.out" | sed 's/^ *-object //')
dev=$(grep -- '-device ' "$work/size-dax.out" | sed 's/^ *-device //')
osize=$(echo "$obj" | grep -o 'size=[^,]*' | head -n 1)
if [[ $obj == *mem-path=/dev/dax0.0* && $obj == *align=2M* && $(size_to_bytes "${osize#size=}") -le $dsize ]]; then
	pass "size: -object has mem-path=/dev/dax0.0, align=2M, $osize <= device"
else fail "size: -object '$obj'"; fi
qlog=$work/qemu.log
# KVM (L1 has it; the staged QEMU has no TCG module), paused (-S): the backend and NVDIMM are
# realised at start-up, so a size that does not fit the device fails here.
qemu-system-x86_64 -L "${HIB_OPT:-/opt}/share/qemu" -machine pc,nvdimm=on -accel kvm -cpu host \
	-m 128M,slots=2,maxmem=1G -nodefaults -display none -monitor none -serial none -S \
	-object "$obj" -device "$dev" </dev/null >"$qlog" 2>&1 &
qpid=$!
sleep 3
if kill -0 "$qpid" 2>/dev/null; then
	pass "QEMU accepts pmctl's arguments on /dev/dax0.0 (running, pid $qpid)"
	run_saved host-nvdimms-inuse "$PMCTL" host nvdimms --json
	json_flatten <"$work/host-nvdimms-inuse.out" >"$work/inuse.flat"
	idx=$(sed -n 's/^namespaces\.\([0-9]*\)\.dev=namespace0\.0$/\1/p' "$work/inuse.flat")
	users=$(sed -n "s/^namespaces\.$idx\.in_use_by\.0\.pid=//p" "$work/inuse.flat")
	if [[ $users == "$qpid" ]]; then pass "host nvdimms: namespace0.0 in use by pid $qpid"; else
		fail "host nvdimms: namespace0.0 in_use_by pid '$users' (want $qpid)"
	fi
	others=$(grep -c '\.in_use_by\.0\.pid=' "$work/inuse.flat")
	[[ $others -eq 1 ]] && pass "host nvdimms: no other namespace in use" || fail "host nvdimms: $others namespaces in use (want 1)"
	"$PMCTL" host nvdimms | grep -E '^(NAMESPACE|namespace0.0)' | sed 's/^/    /'
	kill "$qpid"
	wait "$qpid" 2>/dev/null
else
	wait "$qpid"
	fail "QEMU exited ($?) with pmctl's arguments: $(tail -n 3 "$qlog")"
fi

echo "=== the guest sees the pmem size pmctl predicted (L2 boot with pmctl's arguments)"
# QEMU counts; pmvm is informational unless PMCTL_E2E_PMVM=1 (its NVDIMM support is not pmctl's).
cat >"$work/l2.sh" <<'L2EOF'
i=0
while [ ! -r /sys/bus/nd/devices/region0/size ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
echo "PMEM region_size=$(cat /sys/bus/nd/devices/region0/size 2>/dev/null || echo none)"
L2EOF
if mk-l2-initrd "$work/l2.sh" "$work/l2-initrd.img" >/dev/null 2>&1; then
	for vmm in qemu pmvm; do
		counted=1
		[[ $vmm == pmvm && ${PMCTL_E2E_PMVM:-0} != 1 ]] && counted=0
		if [[ $vmm == pmvm && ! -x $(vmm_bin pmvm) ]]; then echo "INFO: pmvm not staged, skipped"; continue; fi
		boot_l2 "$vmm" -machine pc,accel=kvm,nvdimm=on -cpu host -m 256M,slots=2,maxmem=1G -smp 1 \
			-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/l2-initrd.img" \
			-append "console=ttyS0 quiet loglevel=3 panic=-1" -nographic -no-reboot \
			-object "$obj" -device "$dev" >/dev/null
		got=$(l2_value region_size)
		msg="$vmm: guest region0 size ${got:-none} (pmctl predicted pmem_size $psize; vmm rc $L2_RC)"
		if [[ $got == "$psize" ]]; then pass "$msg"
		elif [[ $counted -eq 1 ]]; then
			fail "$msg"
			tail -n 5 "$L2_STDERR" 2>/dev/null | sed 's/^/    /'
		else echo "INFO: $msg"; fi
	done
else
	fail "mk-l2-initrd"
fi

echo "=== probe"
run_saved probe-dax "$PMCTL" probe /dev/dax0.0
expect_rc probe-dax 0
sed 's/^/    /' "$work/probe-dax.out"
grep -q 'device-dax' "$work/probe-dax.out" && pass "probe /dev/dax0.0: device-dax" || fail "probe /dev/dax0.0: not device-dax"

mkdir -p /mnt/fsdax /mnt/raw /mnt/tmpfs
if mkfs.ext4 -q -F -b 4096 /dev/pmem1 >/dev/null 2>&1 && mount -o dax /dev/pmem1 /mnt/fsdax; then
	truncate -s 400M /mnt/fsdax/backend.img  # 3 blocks: backend (3-1)*128M + 2M
	run_saved probe-daxfile "$PMCTL" probe --json /mnt/fsdax/backend.img
	expect_rc probe-daxfile 0
	json_flatten <"$work/probe-daxfile.out" >"$work/pdf.flat"
	k=$(sed -n 's/^kind=//p' "$work/pdf.flat") ns=$(sed -n 's/^namespace=//p' "$work/pdf.flat")
	[[ $k == dax-file && $ns == namespace1.0 ]] && pass "probe DAX file: kind $k on $ns" ||
		fail "probe DAX file: kind '$k' namespace '$ns' (want dax-file on namespace1.0)"
	run_saved size-daxfile "$PMCTL" size /mnt/fsdax/backend.img
	expect_rc size-daxfile 0
	sed 's/^/    /' "$work/size-daxfile.out"
	grep -q 'size=258M,align=2M,pmem=on' "$work/size-daxfile.out" && pass "size DAX file: size=258M,align=2M,pmem=on" ||
		fail "size DAX file: arguments differ from size=258M,align=2M,pmem=on"
else
	fail "mkfs.ext4 + mount -o dax on /dev/pmem1"
fi

if mkfs.ext4 -q -F -b 4096 /dev/pmem0.1 >/dev/null 2>&1 && mount /dev/pmem0.1 /mnt/raw; then
	truncate -s 300M /mnt/raw/backend.img
	run_saved probe-pagecache "$PMCTL" probe /mnt/raw/backend.img
	expect_rc probe-pagecache 1
	sed 's/^/    /' "$work/probe-pagecache.out"
	grep -q 'page-cache' "$work/probe-pagecache.out" && pass "probe ext4 without dax: page-cache" ||
		fail "probe ext4 without dax: not page-cache"
else
	fail "mkfs.ext4 + mount on /dev/pmem0.1 (raw)"
fi

mount -t tmpfs -o size=400M tmpfs /mnt/tmpfs
truncate -s 300M /mnt/tmpfs/backend.img
run_saved probe-tmpfs "$PMCTL" probe /mnt/tmpfs/backend.img
expect_rc probe-tmpfs 1
sed 's/^/    /' "$work/probe-tmpfs.out"
grep -q 'volatile' "$work/probe-tmpfs.out" && pass "probe tmpfs: volatile" || fail "probe tmpfs: not volatile"
run_saved probe-null "$PMCTL" probe /dev/null
expect_rc probe-null 2

echo "=== size errors"
truncate -s 64M /mnt/tmpfs/small.img
run_saved size-small "$PMCTL" size /mnt/tmpfs/small.img
expect_rc size-small 2
sed 's/^/    /' "$work/size-small.err"
grep -q 'too small' "$work/size-small.err" && pass "size: small device says 'too small'" || fail "size: no 'too small' message"
run_saved size-sector "$PMCTL" size /dev/pmem1.1s
expect_rc size-sector 0
grep -q 'align=128M' "$work/size-sector.out" && pass "size /dev/pmem1.1s: no namespace align, 128M default" ||
	fail "size /dev/pmem1.1s: $(grep -- -object "$work/size-sector.out")"

umount /mnt/fsdax /mnt/raw /mnt/tmpfs 2>/dev/null
summary
