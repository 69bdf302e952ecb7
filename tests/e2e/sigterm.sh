#!/bin/bash
# E2E: SIGTERM ends a VM cleanly and leaves nothing at risk (runs inside the harness's L1).
# For pmvm and QEMU alike: the L2 guest writes a 48 MiB pattern (conv=fsync) to its label-less
# NVDIMM, whose backend is a share=on file on ext4 (page cache; a loop device in L1), says so
# and idles; L1 sends SIGTERM. Checks, both VMMs: exit status 0, "terminating on signal 15" on
# stderr, the pattern is in the file. Then how much of the file is still dirty in L1's page
# cache right after the VMM exited (/proc/meminfo Dirty): pmvm writes its backends back
# before it exits (Backend::write_back), so a host crash from then on loses nothing: checked
# (< 8 MiB left). QEMU leaves it to the kernel's writeback (~30 s later): reported only.
set -uo pipefail
. "${E2E_LIB:-${HIB_OPT:-/opt}/e2e/lib.sh}"

PAT_B=$((48 << 20))
work=$(mktemp -d)
mnt=$work/ext4
mkdir -p "$mnt"
truncate -s 600M "$work/disk.img"
mke2fs -q -t ext4 -F "$work/disk.img" || { fail "mke2fs"; summary; exit 1; }
mount -o loop "$work/disk.img" "$mnt" || { fail "mount -o loop (ext4)"; summary; exit 1; }
trap 'umount "$mnt" 2>/dev/null' EXIT
command -v yes >/dev/null || { fail "no 'yes' in L1"; summary; exit 1; }
yes PMVM-SIGTERM-PATTERN | head -c "$PAT_B" >"$work/pattern"

cat >"$work/l2.sh" <<L2_END
yes PMVM-SIGTERM-PATTERN | head -c $PAT_B >/tmp/p
dd if=/tmp/p of=/dev/pmem0 bs=1M conv=fsync 2>/dev/null && echo "@@WROTE@@" || echo "@@WRITE-FAILED@@"
sleep 600
L2_END
mk-l2-initrd "$work/l2.sh" "$work/initrd.img" || { fail "mk-l2-initrd"; summary; exit 1; }

dirty_kib() { awk '/^Dirty:/ { print $2 }' /proc/meminfo; }
# Keep the kernel's own writeback out of the measurement (this L1 is thrown away afterwards):
# no periodic flusher, no age limit, no background threshold below a few hundred MiB.
sysctl -qw vm.dirty_writeback_centisecs=0 vm.dirty_expire_centisecs=360000 \
	vm.dirty_background_bytes=$((512 << 20)) vm.dirty_bytes=$((768 << 20)) 2>/dev/null ||
	for kv in dirty_writeback_centisecs=0 dirty_expire_centisecs=360000 \
		dirty_background_bytes=$((512 << 20)) dirty_bytes=$((768 << 20)); do
		echo "${kv#*=}" >"/proc/sys/vm/${kv%%=*}"
	done

for vmm in pmvm qemu; do
	bin=$(vmm_bin "$vmm")
	[[ -x $bin ]] || { fail "$vmm: no binary at $bin"; continue; }
	img=$mnt/$vmm-nv.img
	rm -f "$img"
	con=$work/$vmm.console err=$work/$vmm.stderr
	extra=(-display none)
	[[ $vmm == qemu ]] && extra+=(-nodefaults -L "$HIB_OPT/share/qemu")
	"$bin" -machine pc,accel=kvm,nvdimm=on -cpu host -m 512M,slots=2,maxmem=2G -smp 1 \
		-object "memory-backend-file,id=m0,share=on,mem-path=$img,size=256M" \
		-device nvdimm,id=nv0,memdev=m0 \
		-kernel "$HIB_OPT/l2/vmlinux" -initrd "$work/initrd.img" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1" -serial "file:$con" "${extra[@]}" \
		</dev/null >/dev/null 2>"$err" &
	pid=$!
	for ((i = 0; i < 1800; i++)); do
		grep -qa '@@WROTE@@\|@@WRITE-FAILED@@' "$con" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -qa '@@WROTE@@' "$con" 2>/dev/null; then
		fail "$vmm: the guest did not write its pattern"
		tail -n 5 "$con" "$err" 2>/dev/null | sed 's/^/    /'
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		continue
	fi
	before=$(dirty_kib)
	kill -TERM "$pid"
	wait "$pid"
	rc=$?
	after=$(dirty_kib)
	echo "INFO: $vmm: Dirty before SIGTERM ${before} KiB, right after exit ${after} KiB"
	[[ $rc -eq 0 ]] && pass "$vmm: exit 0 after SIGTERM" || { fail "$vmm: exit $rc after SIGTERM"; tail -n 5 "$err" | sed 's/^/    /'; }
	grep -q 'terminating on signal 15' "$err" && pass "$vmm: says 'terminating on signal 15'" ||
		{ fail "$vmm: no 'terminating on signal 15' on stderr"; tail -n 5 "$err" | sed 's/^/    /'; }
	head -c "$PAT_B" "$img" | cmp -s - "$work/pattern" && pass "$vmm: the guest's 48 MiB are in the backend file" ||
		fail "$vmm: the backend file does not hold the guest's pattern"
	if [[ $vmm == pmvm ]]; then
		# The guest wrote 48 MiB into the mapping, so before SIGTERM they are dirty in L1.
		[[ $before -ge $((40 << 10)) ]] && pass "pmvm: ${before} KiB dirty before SIGTERM (the test can see it)" ||
			fail "pmvm: only ${before} KiB dirty before SIGTERM: the check below would prove nothing"
		[[ $after -lt $((8 << 10)) ]] && pass "pmvm: ${after} KiB dirty after exit: the backend was written back" ||
			fail "pmvm: ${after} KiB still dirty after exit: the backend was not written back"
	else
		echo "INFO: qemu leaves $((after >> 10)) MiB of guest data only in the page cache at exit"
	fi
done
summary
