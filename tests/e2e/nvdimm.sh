#!/bin/bash
# hib: HIB_TIMEOUT=1200
# E2E NVDIMM test (runs inside the harness's L1): the seed's example (two vNVDIMMs, bare
# `share`, label-size=2M, -m RAM,slots=4,maxmem=...) scaled to fit L1, booted under QEMU and
# under pmvm with the same command line. In each guest: `ndctl list -DR` shows two DIMMs and
# two regions of the expected size; init-labels; create-namespace in fsdax, devdax (align 2M),
# sector and raw modes; mkfs.ext4 -b 4096 + mount -o dax on the fsdax namespace, a file
# written there reads back after a remount. Then the ndctl JSON of both VMMs is compared
# (regions: size align type iset_id persistence_domain mappings; namespaces: mode size
# sector_size align): it must be equal.
# Settings: NV_VMMS (default "qemu pmvm"), NV_SIZE (backend size, default 1026M: pmem 1 GiB
# + the 2 MiB label area, so both regions stay 16 MiB aligned: host-in-a-box gotcha 6).
set -uo pipefail
. "${E2E_LIB:-${HIB_OPT:-/opt}/e2e/lib.sh}"

VMMS=${NV_VMMS:-qemu pmvm}
SIZE=${NV_SIZE:-1026M}
LABEL=2M
size_b=$(size_to_bytes "$SIZE")
label_b=$(size_to_bytes "$LABEL")
# memory-backend-file on tmpfs: backend alignment = page size (4 KiB).
align_b=4096
expect_pmem=$(((size_b - label_b) / align_b * align_b))
echo "backend size=$size_b label=$label_b align=$align_b -> expected region size $expect_pmem"

work=$(mktemp -d)
mkdir -p "$work/nv"
mount -t tmpfs -o size=2500M tmpfs "$work/nv" || { fail "mount tmpfs for the backends"; summary; exit; }

cat >"$work/l2.sh" <<'EOF'
# L2 (busybox sh): every step prints its output indented and "@@STEP name rc=N@@".
st() { n=$1; shift; "$@" >/tmp/o 2>&1; rc=$?; sed 's/^/    /' /tmp/o; echo "@@STEP $n rc=$rc@@"; return $rc; }
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",]*\).*/\1/p" /tmp/o | head -n 1; }
echo "@@DR-BEGIN@@"; ndctl list -DR; echo "@@DR-END@@"
st disable-region ndctl disable-region all
st init-labels ndctl init-labels -f all
st enable-region ndctl enable-region all
# The region backed by each DIMM (region numbers differ between QEMU and pmvm, DIMMs do not).
region_of() { for r in /sys/bus/nd/devices/region*; do grep -q "^$1," "$r/mapping0" && basename "$r"; done; }
r0=$(region_of nmem0); r1=$(region_of nmem1)
echo "REGIONS nmem0=$r0 nmem1=$r1"
st ns-fsdax ndctl create-namespace -r "$r0" -m fsdax -s 512M
pm=$(field blockdev)
st ns-devdax ndctl create-namespace -r "$r0" -m devdax -a 2M
echo "DEVDAX chardev=$(field chardev) align=$(field align)"
st ns-sector ndctl create-namespace -r "$r1" -m sector -s 512M
st ns-raw ndctl create-namespace -r "$r1" -m raw
echo "FSDAX blockdev=$pm"
st mkfs mkfs.ext4 -q -F -b 4096 "/dev/$pm"
st mount-dax mount -o dax "/dev/$pm" /mnt
echo "MOUNT $(grep " /mnt " /proc/mounts)"
grep " /mnt " /proc/mounts | grep -q dax; echo "@@STEP mount-has-dax rc=$?@@"
echo "pmvm-e2e-dax-payload-$$" >/mnt/hello; want="pmvm-e2e-dax-payload-$$"
st write-sync sync
st umount umount /mnt
st remount mount -o dax "/dev/$pm" /mnt
got=$(cat /mnt/hello); echo "READBACK got=$got"
[ "$got" = "$want" ]; echo "@@STEP readback rc=$?@@"
umount /mnt
echo "@@RN-BEGIN@@"; ndctl list -DRN; echo "@@RN-END@@"
EOF
mk-l2-initrd "$work/l2.sh" "$work/initrd.img" || { fail "mk-l2-initrd"; summary; exit; }

# Fields compared between QEMU and pmvm.
REGION_KEYS='size|align|type|iset_id|persistence_domain|mappings\[[^]]*\]\.(dimm|offset|length|position)'
NS_KEYS='mode|size|sector_size|align'
# Regions are keyed by the DIMM that backs them, not by their number: QEMU lists NVDIMMs in the
# NFIT in QOM hash order (slot 1 before slot 0 for two devices), pmvm in slot order, so
# "region0" is a different DIMM under each (docs/acpi-nvdimm.md). Namespace names carry the
# region number for the same reason and are normalised to their index.
cmp_fields() {
	awk -F= 'NR == FNR {
			if ($1 ~ /^\[region[0-9]+\]\.mappings\[[^]]*\]\.dimm$/) { split($1, p, "]"); m[substr(p[1], 2)] = $2 }
			next
		}
		{
			line = $0
			if (match(line, /^\[region[0-9]+\]/)) {
				r = substr(line, 2, RLENGTH - 2)
				if (r in m) line = "[" m[r] "]" substr(line, RLENGTH + 1)
			}
			gsub(/namespaces\[namespace[0-9]+\./, "namespaces[ns.", line)
			print line
		}' "$1" "$1" | grep -E "^\[[^]]*\]\.($REGION_KEYS|namespaces\[[^]]*\]\.($NS_KEYS))=" | sort
}
# dimm_view FILE: which DIMM backs which region, and each DIMM's interleave-set cookie, keyed by
# the DIMM (handle) instead of the region number. Diagnostic: tells an ordering difference
# (region N backed by another DIMM) from a content difference.
dimm_view() {
	awk -F= '/^\[region[0-9]+\]\.mappings\[[^]]*\]\.dimm=/ { split($1, p, "]"); r[substr(p[1], 2)] = $2 }
		/^\[region[0-9]+\]\.iset_id=/ { split($1, p, "]"); i[substr(p[1], 2)] = $2 }
		END { for (k in r) print "dimm " r[k] " iset_id=" i[k] " region=" k }' "$1" | sort
}

declare -A OK
for vmm in $VMMS; do
	echo "=== $vmm"
	if [[ $vmm == pmvm && ! -x $(vmm_bin pmvm) ]]; then
		fail "$vmm: pmvm binary missing at $(vmm_bin pmvm)"
		continue
	fi
	d=$work/nv/$vmm
	mkdir -p "$d"
	boot_l2 "$vmm" -machine pc,accel=kvm,nvdimm=on -cpu host -m 512M,slots=4,maxmem=4G -smp 2 \
		-object "memory-backend-file,id=mem1,share,mem-path=$d/nv0.img,size=$SIZE" \
		-device "nvdimm,memdev=mem1,id=nv1,label-size=$LABEL" \
		-object "memory-backend-file,id=mem2,share,mem-path=$d/nv1.img,size=$SIZE" \
		-device "nvdimm,memdev=mem2,id=nv2,label-size=$LABEL" \
		-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/initrd.img" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1" -nographic -no-reboot
	rc=$?
	echo "--- $vmm console:"
	tr -d '\r' <"$L2_CONSOLE" | grep -v -E '^@@(DR|RN)-' | sed 's/^/  /' | tail -n 80
	if [[ $vmm == pmvm ]]; then
		echo "--- pmvm stderr:"
		sed 's/^/  /' "$L2_STDERR"
		for id in nv1 nv2; do
			grep -q "nvdimm $id:" "$L2_STDERR" && pass "pmvm: start-up line for $id" ||
				fail "pmvm: no start-up line 'nvdimm $id:' on stderr"
		done
	fi
	if [[ $L2_HUNG -eq 1 ]]; then fail "$vmm: HANG (no exit within ${L2_TIMEOUT:-180}s, twice)"; continue; fi
	[[ $rc -eq 0 ]] && pass "$vmm: exit status 0" || fail "$vmm: exit status $rc (want 0)"
	console_has '@@L2-RC=' || { fail "$vmm: guest script did not finish"; continue; }

	# "[regionN]..." paths whether ndctl printed {"regions":[...]} or a bare array
	l2_block DR | json_flat | sed 's/^\.regions\[/[/' >"$work/$vmm.dr"
	l2_block RN | json_flat | sed 's/^\.regions\[/[/' >"$work/$vmm.rn"
	ndimm=$(grep -c '^\.dimms\[[^]]*\]\.dev=' "$work/$vmm.dr")
	nreg=$(grep -c '^\[region[0-9]*\]\.dev=' "$work/$vmm.dr")
	[[ $ndimm -eq 2 ]] && pass "$vmm: ndctl list -DR: 2 DIMMs" || fail "$vmm: ndctl list -DR: $ndimm DIMMs (want 2)"
	[[ $nreg -eq 2 ]] && pass "$vmm: ndctl list -DR: 2 regions" || fail "$vmm: ndctl list -DR: $nreg regions (want 2)"
	for r in region0 region1; do
		s=$(sed -n "s/^\[$r\]\.size=//p" "$work/$vmm.dr")
		[[ $s == "$expect_pmem" ]] && pass "$vmm: $r size $s = align_down($size_b - $label_b, $align_b)" ||
			fail "$vmm: $r size '${s}' (want $expect_pmem)"
	done
	all=1
	for s in disable-region init-labels enable-region ns-fsdax ns-devdax ns-sector ns-raw mkfs mount-dax \
		mount-has-dax umount remount readback; do
		v=$(l2_step "$s")
		if [[ $v == 0 ]]; then pass "$vmm: guest step $s"; else fail "$vmm: guest step $s rc=${v:-not reached}"; all=0; fi
	done
	# the namespaces must exist in the final listing with the requested modes
	for m in fsdax devdax sector raw; do
		grep -qE "^\[region[0-9]+\]\.namespaces\[[^]]*\]\.mode=$m\$" "$work/$vmm.rn" &&
			pass "$vmm: ndctl list -DRN has a $m namespace" || { fail "$vmm: ndctl list -DRN has no $m namespace"; all=0; }
	done
	dalign=$(awk -F= '{ k = $1; sub(/\.[a-z_]+$/, "", k) }
		$1 ~ /\]\.mode$/ && $2 == "devdax" { dev[k] = 1 } $1 ~ /\]\.align$/ { al[k] = $2 }
		END { for (k in dev) print al[k] }' "$work/$vmm.rn")
	[[ $dalign == 2097152 ]] && pass "$vmm: devdax namespace align 2097152" || fail "$vmm: devdax align '$dalign' (want 2097152)"
	OK[$vmm]=$all
	cp "$work/$vmm.dr" "$work/$vmm.rn" "$HIB_OUT/" 2>/dev/null
done

# pmvm must give the guest what QEMU gives it.
if [[ -n ${OK[qemu]:-} && -n ${OK[pmvm]:-} ]]; then
	for f in dr rn; do
		[[ $f == rn ]] || continue
		dimm_view "$work/qemu.$f" >"$work/qd"
		dimm_view "$work/pmvm.$f" >"$work/pd"
		echo "    QEMU:  $(tr '\n' ';' <"$work/qd")"
		echo "    pmvm:  $(tr '\n' ';' <"$work/pd")"
		cut -d' ' -f1-3 "$work/qd" >"$work/qd3"
		cut -d' ' -f1-3 "$work/pd" >"$work/pd3"
		if [[ -s $work/qd3 ]] && diff "$work/qd3" "$work/pd3" >/dev/null; then
			pass "each DIMM (by handle order) has the same interleave-set cookie under QEMU and pmvm"
		else
			fail "the DIMMs' interleave-set cookies differ between QEMU and pmvm"
		fi
	done
	for f in dr rn; do
		what="ndctl list -DR (before labels)"
		[[ $f == rn ]] && what="ndctl list -DRN (after the namespaces)"
		cmp_fields "$work/qemu.$f" >"$work/q.$f"
		cmp_fields "$work/pmvm.$f" >"$work/p.$f"
		n=$(wc -l <"$work/q.$f")
		if [[ $n -gt 0 ]] && diff -u "$work/q.$f" "$work/p.$f" >"$work/diff.$f"; then
			pass "$what: fields equal under QEMU and pmvm ($n values)"
			sed 's/^/    /' "$work/q.$f"
		else
			fail "$what: fields differ between QEMU (-) and pmvm (+) ($n QEMU values):"
			sed 's/^/    /' "$work/diff.$f"
		fi
	done
elif [[ " $VMMS " == *" pmvm "* && " $VMMS " == *" qemu "* ]]; then
	fail "cannot compare pmvm with QEMU (a boot failed above)"
fi
umount "$work/nv"
rm -rf "$work"
summary
