# shellcheck shell=bash
# hib run: one script inside L1 (or directly on a KVM-capable host). Sourced by harness/hib.

to_bytes() { # 1G / 512M / 128K / 4096 -> bytes
	local v=${1^^} n
	n=${v%[KMGT]}
	[[ $n =~ ^[0-9]+$ ]] || return 1
	case "$v" in
	*K) echo $((n << 10)) ;; *M) echo $((n << 20)) ;; *G) echo $((n << 30)) ;; *T) echo $((n << 40)) ;;
	*) echo "$n" ;;
	esac
}

secs_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

# direct_capable: the host's own KVM can boot ordinary guests (not the software kvm_pvm).
direct_capable() {
	[[ -c /dev/kvm ]] || return 1
	grep -qwE 'vmx|svm' /proc/cpuinfo || return 1
	[[ ! -d /sys/module/kvm_pvm ]] || return 1
}

# Stage the run's extra archive: HIB_EXTRA_DIR under /opt (+ libraries), /hib/{script,cmd,env}.
stage_extra() { # ROOT SCRIPT
	local x=$1 script=$2 f v
	mkdir -p "$x/opt" "$x/hib"
	if [[ -n ${HIB_EXTRA_DIR:-} ]]; then
		[[ -d $HIB_EXTRA_DIR ]] || { hlog "error: HIB_EXTRA_DIR=$HIB_EXTRA_DIR is not a directory"; return 1; }
		cp -a "$HIB_EXTRA_DIR/." "$x/opt/"
		while IFS= read -r -d '' f; do
			is_elf "$f" && copy_libs "$x" "$f"
		done < <(find "$x/opt" -type f -print0)
	fi
	cp "$script" "$x/hib/script"
	chmod 0755 "$x/hib/script"
	cat >"$x/hib/cmd" <<'EOF'
#!/bin/bash
[ -f /hib/env ] && . /hib/env
cd /tmp || exit 1
/hib/script 2>&1 | tee /hib/out/output.log
exit "${PIPESTATUS[0]}"
EOF
	chmod 0755 "$x/hib/cmd"
	{
		echo "export HIB_OPT=/opt HIB_OUT=/hib/out HIB_MODE=l1"
		for v in ${HIB_PASS_ENV:-}; do
			[[ -v $v ]] && printf 'export %s=%q\n' "$v" "${!v}"
		done
	} >"$x/hib/env"
}

# Read the serial console (fd $1) until EOF; stamps lines, watches markers, enforces the
# boot deadline. Sets globals SEEN_INIT SEEN_READY SEEN_END BOOT_HANG CHANNEL T_* .
watch_console() {
	local fd=$1 t0=$2 qpid=$3 line buf="" now rc last=$EPOCHREALTIME
	local boot_deadline=${HIB_BOOT_TIMEOUT:-180} freeze=${HIB_FREEZE_TIMEOUT:-60}
	SEEN_INIT=0 SEEN_READY=0 SEEN_END=0 BOOT_HANG=0 FROZEN=0 CHANNEL=none
	T_L1_INIT="" T_L1_READY="" T_SCRIPT_END="" L1_UPTIME_AT_INIT=""
	while :; do
		IFS= read -r -t 2 -u "$fd" line
		rc=$?
		if [[ $rc -gt 128 ]]; then # read timed out; keep partial data
			buf+=$line
			if [[ $SEEN_READY -eq 0 && $BOOT_HANG -eq 0 ]] &&
				awk -v a="$t0" -v b="$EPOCHREALTIME" -v d="$boot_deadline" 'BEGIN { exit !(b - a > d) }'; then
				hlog "HANG: L1 not ready after ${boot_deadline}s; killing QEMU"
				BOOT_HANG=1
				kill "$qpid" 2>/dev/null
			fi
			# L1 prints a heartbeat every 5 s once ready: silence means it froze.
			if [[ $SEEN_READY -eq 1 && $SEEN_END -eq 0 && $BOOT_HANG -eq 0 ]] &&
				awk -v a="$last" -v b="$EPOCHREALTIME" -v d="$freeze" 'BEGIN { exit !(b - a > d) }'; then
				hlog "HANG: L1 froze (no console output, heartbeat included, for ${freeze}s); killing QEMU"
				freeze_diag
				BOOT_HANG=1 FROZEN=1
				kill "$qpid" 2>/dev/null
			fi
			continue
		fi
		last=$EPOCHREALTIME
		if [[ $rc -ne 0 && -z $line && -z $buf ]]; then break; fi
		line=$buf$line
		buf=""
		line=${line%$'\r'}
		[[ $line == *@@HIB-HB@@* ]] && { line=${line//@@HIB-HB@@/}; [[ -z $line ]] && continue; }
		now=$(secs_since "$t0")
		printf '%s\n' "$line" >>"$RUN/console.log"
		printf '%s %s\n' "$now" "$line" >>"$RUN/console.ts"
		[[ ${HIB_VERBOSE:-0} == 1 ]] && printf '[%s] %s\n' "$now" "$line" >&2
		case "$line" in
		*@@HIB-L1-INIT*)
			SEEN_INIT=1 T_L1_INIT=$now
			L1_UPTIME_AT_INIT=${line#*uptime=}
			L1_UPTIME_AT_INIT=${L1_UPTIME_AT_INIT%%@@*}
			;;
		*@@HIB-L1-READY*)
			SEEN_READY=1 T_L1_READY=$now
			CHANNEL=${line#*channel=}
			CHANNEL=${CHANNEL%%@@*}
			[[ ${HIB_QUIET:-0} == 1 ]] || hlog "L1 ready after ${now}s (channel $CHANNEL)"
			;;
		*@@HIB-SCRIPT-END*) SEEN_END=1 T_SCRIPT_END=$now ;;
		esac
		[[ $rc -ne 0 ]] && break
	done
}

# A frozen L1: where its vCPUs are, from QEMU's monitor, into the run dir and the log.
freeze_diag() {
	[[ -S $RUN/monitor.sock ]] || return 0
	python3 - "$RUN/monitor.sock" >"$RUN/freeze-registers.txt" 2>&1 <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
def drain():
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    return out.decode(errors="replace")
drain()
for cmd in ("info cpus", "info registers -a"):
    s.sendall(cmd.encode() + b"\n")
    time.sleep(1)
    print(drain())
PY
	hlog "frozen L1 vCPUs (full registers in $RUN/freeze-registers.txt):"
	grep -aE 'CPU #|RIP=' "$RUN/freeze-registers.txt" | head -n 8 | sed 's/^/  | /' >&2
	return 0
}

# From console.log: the script output between the markers, the rc, and the files block.
parse_console_fallback() {
	local log=$RUN/console.log
	awk '/@@HIB-SCRIPT-BEGIN@@/ { on = 1; next }
	     on && /@@HIB-SCRIPT-END/ { sub(/@@HIB-SCRIPT-END.*/, ""); if (length($0)) printf "%s", $0; exit }
	     on { print }' "$log" >"$RUN/out/output.log"
	sed -n 's/.*@@HIB-RC=\([0-9]*\)@@.*/\1/p' "$log" | tail -n 1 >"$RUN/out/rc"
	[[ -s $RUN/out/rc ]] || rm -f "$RUN/out/rc"
	if grep -q '@@HIB-FILES-END@@' "$log"; then
		awk '/@@HIB-FILES-BEGIN@@/ { on = 1; next } /@@HIB-FILES-END@@/ { exit } on' "$log" |
			base64 -d 2>/dev/null | tar xzf - -C "$RUN/out" --exclude=./output.log --exclude=./rc 2>/dev/null
	fi
}

print_panic() {
	hlog "L1 ended without a result. Last console lines:"
	if grep -q 'Kernel panic' "$RUN/console.log" 2>/dev/null; then
		grep -B 30 -A 5 'Kernel panic' "$RUN/console.log" | tail -n 60 >&2
	else
		tail -n 40 "$RUN/console.log" >&2 2>/dev/null
	fi
	qemu_stderr_tail
}

# The end of L1 QEMU's stderr, without TCG's "feature not supported" warnings.
qemu_stderr_tail() {
	[[ -s $RUN/qemu.stderr ]] || return 0
	hlog "qemu stderr (tail):"
	grep -v "does not support\|not supported by TCG\|TCG doesn't support" "$RUN/qemu.stderr" | tail -n 10 | sed 's/^/  | /' >&2
}

# A hang: say where the script was (its output also goes to the L1 console) and what L1's
# watchdog found, so a CI log shows the stuck step without the run directory.
print_hang() {
	hlog "HANG on attempt $1: last L1 console lines ($RUN/console.log):"
	tail -n 30 "$RUN/console.log" 2>/dev/null | sed 's/^/  | /' >&2
	qemu_stderr_tail
	return 0
}

# One L1 attempt. Sets ATTEMPT_RC and HUNG (1 if it hung: boot deadline or hard timeout).
run_l1_once() {
	local script=$1 t total inner chan mem memb nv i sz lsz cmd=() mach
	total=${HIB_TIMEOUT:-600}
	if ((total <= 180)); then inner=$((total * 2 / 3)); else inner=$((total - 60)); fi
	chan=${HIB_CHANNEL:-9p}
	mem=${HIB_MEM:-3G}
	memb=$(to_bytes "$mem") || { hlog "error: HIB_MEM=$mem is not a size like 3G"; ATTEMPT_RC=126; return; }
	lsz=$(to_bytes "${HIB_LABEL_SIZE:-128K}") || { hlog "error: bad HIB_LABEL_SIZE"; ATTEMPT_RC=126; return; }

	mkdir -p "$RUN/out" "$RUN/xroot"
	rm -f "$RUN/out/rc" "$RUN/out/output.log"
	: >"$RUN/console.log"
	: >"$RUN/console.ts"
	stage_extra "$RUN/xroot" "$script" || { ATTEMPT_RC=126; return; }
	mk_cpio_zst "$RUN/xroot" "$RUN/extra.cpio.zst"
	cat "$BUILD/l1-base.cpio.zst" "$BUILD/l1-opt.cpio.zst" "$RUN/extra.cpio.zst" >"$RUN/initrd.img"

	mach=pc,nvdimm=on
	[[ -n ${HIB_NVDIMM_PERSISTENCE:-} ]] && mach+=",nvdimm-persistence=$HIB_NVDIMM_PERSISTENCE"
	local accel="tcg,thread=multi" cpu=${HIB_CPU:-EPYC,+svm,+clwb}
	if [[ ${HIB_L1_ACCEL:-auto} == kvm ]] || { [[ ${HIB_L1_ACCEL:-auto} == auto ]] && direct_capable; }; then
		accel=kvm cpu=${HIB_CPU:-host}
	fi
	cmd=(qemu-system-x86_64 -machine "$mach" -accel "$accel" -cpu "$cpu" -smp "${HIB_SMP:-2}")
	local -a sizes=()
	[[ -n ${HIB_NVDIMMS:-} ]] && IFS=',' read -r -a sizes <<<"$HIB_NVDIMMS"
	if [[ ${#sizes[@]} -gt 0 ]]; then
		local sum=0
		for i in "${!sizes[@]}"; do
			sz=$(to_bytes "${sizes[$i]}") || { hlog "error: HIB_NVDIMMS entry '${sizes[$i]}' is not a size"; ATTEMPT_RC=126; return; }
			# backend = requested size + label area, so the guest-visible part stays aligned
			nv=$RUN/nvdimm$i.img
			rm -f "$nv"
			truncate -s $((sz + lsz)) "$nv"
			sum=$((sum + sz + lsz))
			cmd+=(-object "memory-backend-file,id=nvmem$i,share=on,mem-path=$nv,size=$((sz + lsz))"
				-device "nvdimm,id=nvdimm$i,memdev=nvmem$i,label-size=$lsz")
		done
		cmd+=(-m "$((memb >> 20))M,slots=${#sizes[@]},maxmem=$(((memb + sum + (1 << 30)) >> 20))M")
	else
		cmd+=(-m "$((memb >> 20))M")
	fi
	if [[ $chan == 9p ]]; then
		cmd+=(-fsdev "local,id=hibout,path=$RUN/out,security_model=none"
			-device virtio-9p-pci,fsdev=hibout,mount_tag=hibout)
	fi
	local kernel=$VMLINUX
	[[ ${HIB_KERNEL:-pvh} == bzimage ]] && kernel=$BZIMAGE
	cmd+=(-kernel "$kernel" -initrd "$RUN/initrd.img"
		-append "console=ttyS0 quiet loglevel=3 panic=-1 hib.timeout=$inner hib.channel=$chan"
		-display none -nodefaults -no-user-config -no-reboot -serial stdio
		-monitor "unix:$RUN/monitor.sock,server=on,wait=off")
	printf '%q ' timeout -k 10 "$total" "${cmd[@]}" >"$RUN/qemu.cmd"
	echo >>"$RUN/qemu.cmd"

	local fifo=$RUN/console.fifo fd qpid qrc t0
	rm -f "$fifo" && mkfifo "$fifo"
	t0=$EPOCHREALTIME
	timeout -k 10 "$total" "${cmd[@]}" <"/dev/null" >"$fifo" 2>"$RUN/qemu.stderr" &
	qpid=$!
	exec {fd}<"$fifo"
	watch_console "$fd" "$t0" "$qpid"
	exec {fd}<&-
	wait "$qpid"
	qrc=$?
	rm -f "$fifo"
	T_TOTAL=$(secs_since "$t0")

	HUNG=0
	if [[ $BOOT_HANG -eq 1 ]]; then
		HUNG=1
	elif [[ $qrc -eq 124 || $qrc -eq 137 ]] && [[ $SEEN_END -eq 0 ]]; then
		hlog "HANG: hard timeout (${total}s) hit with no script result; QEMU killed"
		HUNG=1
	fi
	[[ $CHANNEL == 9p && -s $RUN/out/rc ]] || parse_console_fallback
	if [[ -s $RUN/out/rc ]]; then
		ATTEMPT_RC=$(tr -dc 0-9 <"$RUN/out/rc")
		[[ -n $ATTEMPT_RC ]] || ATTEMPT_RC=125
	elif [[ $HUNG -eq 1 ]]; then
		ATTEMPT_RC=124
	else
		ATTEMPT_RC=125
	fi
	[[ $CHANNEL == 9p && ! -s $RUN/out/rc ]] && CHANNEL=console
	{
		echo "RC=$ATTEMPT_RC"
		echo "CHANNEL=$CHANNEL"
		echo "QEMU_RC=$qrc"
		echo "HUNG=$HUNG"
		echo "T_L1_INIT=$T_L1_INIT"
		echo "T_L1_READY=$T_L1_READY"
		echo "T_SCRIPT_END=$T_SCRIPT_END"
		echo "T_TOTAL=$T_TOTAL"
		echo "L1_UPTIME_AT_INIT=$L1_UPTIME_AT_INIT"
	} >"$RUN/result.env"
}

# Direct mode: the host's own KVM is usable; run the script here with the same layout.
run_direct() {
	local script=$1 total=${HIB_TIMEOUT:-600} t0 x=$RUN/xroot
	mkdir -p "$RUN/out"
	hlog "direct mode: running the script on this host (HIB_OPT=$x/opt)"
	[[ -z ${HIB_NVDIMMS:-} ]] || hlog "warning: HIB_NVDIMMS needs L1 (set HIB_MODE=l1)"
	mkdir -p "$x"
	cp -al "$BUILD/optroot/opt" "$x/opt" 2>/dev/null || cp -a "$BUILD/optroot/opt" "$x/opt"
	[[ -n ${HIB_EXTRA_DIR:-} ]] && cp -a "$HIB_EXTRA_DIR/." "$x/opt/"
	cp "$script" "$RUN/script" && chmod 0755 "$RUN/script"
	t0=$EPOCHREALTIME
	(
		export HIB_OPT=$x/opt HIB_OUT=$RUN/out HIB_MODE=direct PATH=$x/opt/bin:$PATH
		cd /tmp || exit 1
		setsid timeout -k 10 "$total" bash -c '"$0" 2>&1; echo $? >"$HIB_OUT/rc"' "$RUN/script" |
			tee "$RUN/out/output.log" >/dev/null
	)
	ATTEMPT_RC=$(cat "$RUN/out/rc" 2>/dev/null || echo 124)
	HUNG=0
	printf 'RC=%s\nCHANNEL=direct\nT_TOTAL=%s\n' "$ATTEMPT_RC" "$(secs_since "$t0")" >"$RUN/result.env"
}

hib_run() {
	local script=$1 mode=${HIB_MODE:-auto} attempt rc
	if [[ $mode == auto ]]; then
		if [[ -z ${HIB_NVDIMMS:-} ]] && direct_capable; then mode=direct; else mode=l1; fi
	fi
	mkdir -p "$CACHE/runs"
	# A run that fails because the emulated host failed (hang, freeze, L1 kernel panic) is run
	# again in a fresh L1: up to HIB_ATTEMPTS runs in all (default 3), never on a test failure.
	local max=${HIB_ATTEMPTS:-3} why
	[[ ${HIB_RETRY:-1} == 0 ]] && max=1
	for ((attempt = 1; ; attempt++)); do
		RUN=$CACHE/runs/$(date +%Y%m%d-%H%M%S)-$$-$attempt
		mkdir -p "$RUN"
		[[ ${HIB_QUIET:-0} == 1 ]] || hlog "run dir $RUN"
		FROZEN=0
		if [[ $mode == direct ]]; then run_direct "$script"; else run_l1_once "$script"; fi
		rc=$ATTEMPT_RC
		if [[ $rc -eq 125 ]]; then print_panic; fi
		if [[ $HUNG -eq 1 || $rc -eq 124 ]]; then print_hang "$attempt"; fi
		why=""
		if [[ $FROZEN -eq 1 ]]; then why="L1 FROZE"
		elif [[ $HUNG -eq 1 ]]; then why="HANG"
		# seen under TCG: "stack-protector: Kernel stack is corrupted" in L1's idle task
		elif [[ $rc -eq 125 ]] && grep -q 'Kernel panic' "$RUN/console.log" 2>/dev/null; then why="L1 KERNEL PANIC"
		fi
		[[ -n $why && $attempt -lt $max ]] || break
		# a plain hard timeout is expensive: retry it only once
		[[ $why == HANG && $attempt -ge 2 ]] && break
		hlog "$why on attempt $attempt (see $RUN/console.log); running the script again in a fresh L1"
	done
	[[ -f $RUN/out/output.log ]] && cat "$RUN/out/output.log"
	[[ $HUNG -eq 1 ]] && hlog "HANG: no result after $attempt attempts"
	[[ ${HIB_QUIET:-0} == 1 ]] || hlog "rc=$rc total=$(sed -n 's/^T_TOTAL=//p' "$RUN/result.env")s"
	if [[ $rc -eq 0 && ${HIB_KEEP:-0} != 1 ]]; then
		rm -f "$RUN"/initrd.img "$RUN"/extra.cpio.zst "$RUN"/nvdimm*.img
		rm -rf "$RUN/xroot"
	fi
	ls -1dt "$CACHE"/runs/*/ 2>/dev/null | tail -n +$((${HIB_KEEP_RUNS:-20} + 1)) | xargs -r rm -rf
	return "$rc"
}
