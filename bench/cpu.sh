#!/bin/bash
# vCPU figures of issue 13, minivmm against QEMU (-accel kvm -M q35 -cpu host) booting the same
# kernel and initramfs (bench/cpu-init) in one run:
#   hotplug  request -> hot-added CPU online in the guest (bench/cpu-watch.c hears the uevent, writes
#            `online`, prints a line; the host times its request to that line), and unplug request
#            -> CPU removed: minivmm `control plugcpu 1`/`unplugcpu 1` (--cpus 4 --cpuhotplug)
#            against QMP device_add/device_del of a free slot of query-hotpluggable-cpus (-smp
#            1,maxcpus=4); BENCH_CPU_RUNS (5) of each, the median.
#   cap      a spinning vCPU's progress (bench/cpu-spin.c: iterations per second of the guest's
#            clock, over BENCH_CPU_SPIN_S (5) s after 1 s of warm-up) under `cpucap` 10/30/50/80
#            against its uncapped progress (the mean of one run before and one after).  QEMU has no
#            cap: its peer is QEMU in a cgroup v2 with cpu.max P% (the whole process), where this
#            host lets us make one (level 1: we mount cgroup2 ourselves), else NA.  Then what the
#            cap controls: the spinning vCPU thread's share of a CPU (its CPU time over wall
#            time, schedstat; level 1 accounts its own threads exactly whatever the host's load).
#   idle     four VMs of 4 vCPUs and 256 MiB each, idle at a shell: the CPU time (utime + stime of
#            the four VMM processes, /proc/PID/stat) over BENCH_CPU_IDLE_S (30) s, in % of one core;
#            comment lines show where it went (ticks by thread name) and KVM's exit counters per
#            second (debugfs, mounted if need be) to compare what wakes each VMM.
#   lockup   one 8-vCPU guest on this host's cores runs 8 spinning threads for BENCH_CPU_LOAD_S (30)
#            s and 8 fork loops to their end; counts soft-lockup and RCU-stall reports in its
#            console and dmesg (0 is the goal) and the load's wall time.
# BENCH_CPU_ROWS ("hotplug cap idle lockup") picks rows.  Ratios are minivmm / QEMU (for times,
# below 1: minivmm faster).  Without a usable /dev/kvm the run happens in one level 1 (QEMU TCG,
# one CPU, nested KVM): absolute figures there are slow and noisy, and level 1 accounts a level-2
# guest's CPU time poorly (see the README), which the cap and idle rows depend on.
cd "$(dirname "$0")/.." || exit 1
. guest-tests/lib/level1.sh
. guest-tests/lib/guest.sh
. guest-tests/lib/qmp.sh
. bench/guest-lib.sh
. guest-tests/e2e/cpu-lib.sh

ROWS=${BENCH_CPU_ROWS:-hotplug cap idle lockup}
RUNS=${BENCH_CPU_RUNS:-5}
SPIN_S=${BENCH_CPU_SPIN_S:-5}
IDLE_S=${BENCH_CPU_IDLE_S:-30}
LOAD_S=${BENCH_CPU_LOAD_S:-30}
case "$RUNS$SPIN_S$IDLE_S$LOAD_S" in
*[!0-9]* | "") echo "bench/cpu.sh: BENCH_CPU_RUNS, _SPIN_S, _IDLE_S and _LOAD_S must be numbers" >&2; exit 2 ;;
esac
for r in $ROWS; do
	case $r in hotplug | cap | idle | lockup) ;; *) echo "bench/cpu.sh: BENCH_CPU_ROWS: unknown row $r" >&2; exit 2 ;; esac
done

if [ "${GT_LEVEL:-}" != 1 ]; then
	mkdir -p build/bench
	for p in cpu-watch cpu-spin; do # level 1 sees the tree read-only: built here
		gcc -static -O2 -Wall -Wextra -Werror -pthread -o build/bench/$p bench/$p.c || exit 1
	done
	[ -x ./minivmm ] || { echo "bench/cpu.sh: ./minivmm is not built (run make)" >&2; exit 1; }
	if ! gt_host_kvm_usable; then
		echo "# cpu: no usable /dev/kvm here: measuring inside level 1 (QEMU TCG, nested KVM)"
		level1_run ./bench/cpu.sh
		rc=$?
		level1_cleanup
		exit $rc
	fi
fi
[ -x build/bench/cpu-watch ] && [ -x build/bench/cpu-spin ] || { echo "bench/cpu.sh: build/bench/cpu-watch or cpu-spin is missing" >&2; exit 1; }

gt_setup
W=$GT_WORK
BENCH_MV_ARGS=()
CG="" # the cgroup of the cap row's QEMU peer, removed at the end
cpu_teardown() {
	bench_kill_all
	[ -n "$CG" ] && { sleep 0.5; rmdir "$CG" 2>/dev/null; }
	rm -rf "$W"
}
trap cpu_teardown EXIT

cpu_ready() { # NAME: the guest's shell and its CPU watcher are up (QMP connected once)
	guest_wait "$1" '^CPU: ready' 900
	bench_ready "$1" '^WATCH: listening'
}

# Watch NAME's console for a line holding TEXT from now on: watch_open, then the request, then
# watch_wait sets WT to the host time ($EPOCHREALTIME) the line appeared at.  tail -F hears the
# write through inotify, so the host time is close to the guest's.
# (A FIFO, not <(...): level 1 has no /dev/fd for bash's process substitution.)
watch_open() { # NAME
	rm -f "$W/watch.fifo"
	mkfifo "$W/watch.fifo" || return 1
	timeout 300 tail -c +$(($(stat -c %s "$W/$1.console") + 1)) -s 0.01 -F "$W/$1.console" \
		>"$W/watch.fifo" 2>/dev/null &
	_wpid=$!
	exec {_wfd}<"$W/watch.fifo"
}
watch_wait() { # TEXT: sets WT (empty if the line never came)
	local line rc=1
	WT=""
	while IFS= read -r -u "$_wfd" line; do
		case $line in *"$1"*) WT=$EPOCHREALTIME; rc=0; break ;; esac
	done
	kill "$_wpid" 2>/dev/null
	exec {_wfd}<&-
	return $rc
}
ms_since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f\n", (b - a) * 1000 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "NA"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "NA" }'; }
declare -A R=()

# --- hotplug ------------------------------------------------------------------------------------
# One plug and one unplug of a CPU, timed from the request to the guest's line: appends ms to
# $W/VMM.plug and $W/VMM.unplug.
hotplug_once() { # VMM NAME
	local vmm=$1 name=$2 t0 slot
	watch_open "$name"
	t0=$EPOCHREALTIME
	case $vmm in
	minivmm) "$GT_MINIVMM" control "$name" plugcpu 1 >"$W/req.out" 2>&1 & ;;
	qemu)
		slot=$(qmp "$name" '{"execute": "query-hotpluggable-cpus"}' |
			jq -c '[.return[] | select(has("qom-path") | not)] | last | {execute: "device_add", arguments: ({driver: .type, id: "hp1"} + .props)}')
		qmp "$name" "$slot" >"$W/req.out" 2>&1 &
		;;
	esac
	watch_wait "WATCH: online cpu"
	wait $!
	[ -n "$WT" ] || { echo "# cpu: $vmm: no hot-added CPU came online: $(head -c 200 "$W/req.out")"; return 1; }
	ms_since "$t0" "$WT" >>"$W/$vmm.plug"
	watch_open "$name"
	t0=$EPOCHREALTIME
	case $vmm in
	minivmm) "$GT_MINIVMM" control "$name" unplugcpu 1 >"$W/req.out" 2>&1 & ;;
	qemu) qmp "$name" '{"execute": "device_del", "arguments": {"id": "hp1"}}' >"$W/req.out" 2>&1 & ;;
	esac
	watch_wait "WATCH: removed cpu"
	wait $!
	[ -n "$WT" ] || { echo "# cpu: $vmm: the CPU was not removed: $(head -c 200 "$W/req.out")"; return 1; }
	ms_since "$t0" "$WT" >>"$W/$vmm.unplug"
	# The VMM's side finished too (minivmm's reply waits for the guest's _OST; QEMU's frees the
	# slot once the guest ejected): wait until the slot is free before the next plug.
	case $vmm in
	minivmm) grep -q '^guest: released$' "$W/req.out" || { echo "# cpu: minivmm unplugcpu: $(head -c 200 "$W/req.out")"; return 1; } ;;
	qemu)
		for _ in $(seq 100); do
			qmp "$name" '{"execute": "query-hotpluggable-cpus"}' | jq -e '[.return[] | select(has("qom-path"))] | length == 1' >/dev/null && break
			sleep 0.2
		done
		;;
	esac
}
row_hotplug() {
	local vmm name i
	for vmm in minivmm qemu; do
		name=bc-hp-$vmm-$$
		BENCH_MV_ARGS=(--cpuhotplug)
		BENCH_QEMU_SMP=1,maxcpus=4 bench_start "$vmm" "$name" 4 256 "$W/cpu.cpio" || return 1
		cpu_ready "$name" || return 1
		: >"$W/$vmm.plug"
		: >"$W/$vmm.unplug"
		for i in $(seq "$RUNS"); do hotplug_once "$vmm" "$name" || break; done
		R[$vmm,plug_ms]=$(median <"$W/$vmm.plug")
		R[$vmm,unplug_ms]=$(median <"$W/$vmm.unplug")
		echo "# cpu: $vmm plug ms: $(tr '\n' ' ' <"$W/$vmm.plug"); unplug ms: $(tr '\n' ' ' <"$W/$vmm.unplug")"
		bench_stop "$name"
	done
	BENCH_MV_ARGS=()
	printf '%-26s %10s %10s %7s\n' figure minivmm qemu ratio
	for f in plug_ms unplug_ms; do
		printf '%-26s %10s %10s %7s\n' "hotplug_$f (median)" "${R[minivmm,$f]}" "${R[qemu,$f]}" "$(ratio "${R[minivmm,$f]}" "${R[qemu,$f]}")"
	done
	[ "$(wc -l <"$W/minivmm.plug")" = "$RUNS" ] && [ "$(wc -l <"$W/qemu.plug")" = "$RUNS" ]
}

# --- cap ----------------------------------------------------------------------------------------
spin_rate() { # NAME KEY: /cpu-spin after 1 s of warm-up; sets R[KEY]
	guest_send "$1" "/cpu-spin 1 >/dev/null; /cpu-spin $SPIN_S | sed 's/^SPIN: rate=/CPU: $2=/'"
	guest_wait "$1" "^CPU: $2=" $((SPIN_S * 20 + 120)) >/dev/null
	R[$2]=$(grep -a -o -E "^CPU: $2=[0-9]+" "$W/$1.console" | tail -1 | cut -d= -f2)
	R[$2]=${R[$2]:-NA}
}
# A cgroup v2 for the QEMU peer: mounted by us in level 1; elsewhere only a cgroup2 already there.
# The vCPU thread's share of this machine's CPU (cpu-lib.sh: its CPU time over wall time, which
# level 1 accounts exactly for its own threads whatever the host's load) while /cpu-spin runs:
# over BENCH_CPU_SPIN_S s from 1 s after the start.  Sets R[KEY].
spin_share() { # NAME KEY THREAD_COMM
	local a b pid
	pid=$(guest_pid "$1")
	guest_send "$1" "/cpu-spin $((SPIN_S + 2)) >/dev/null; echo CPU: $2=done"
	sleep 1
	a=$(thread_sample "$pid" "$3")
	sleep "$SPIN_S"
	b=$(thread_sample "$pid" "$3")
	guest_wait "$1" "^CPU: $2=done" $((SPIN_S * 20 + 120)) >/dev/null
	R[$2]=NA
	[ -n "$a" ] && [ -n "$b" ] && R[$2]=$(sample_share "$a" "$b")
}
cap_cgroup() {
	local root=/sys/fs/cgroup
	if [ ! -f $root/cgroup.controllers ] && [ "${GT_LEVEL:-}" = 1 ]; then
		mount -t cgroup2 none $root 2>/dev/null || return 1
	fi
	[ -f $root/cgroup.controllers ] && grep -qw cpu $root/cgroup.controllers || return 1
	grep -qw cpu $root/cgroup.subtree_control || echo +cpu >$root/cgroup.subtree_control 2>/dev/null || return 1
	CG=$root/minivmm-bench-$$
	mkdir "$CG" 2>/dev/null
}
cap_progress() { # VMM BEFORE P: the capped rate at P against the uncapped runs around it
	awk -v c="${R[$1-c$3]:-NA}" -v a="${R[$1-u$2]:-NA}" -v b="${R[$1-u$3]:-NA}" \
		'BEGIN { if (c == "NA" || a == "NA" || b == "NA" || a + b <= 0) print "NA"; else printf "%.1f", 200 * c / (a + b) }'
}
row_cap() {
	local vmm name p vcpu
	for vmm in minivmm qemu; do
		name=bc-cap-$vmm-$$
		vcpu=vcpu0
		[ $vmm = qemu ] && vcpu="CPU 0/KVM"
		bench_start "$vmm" "$name" 1 256 "$W/cpu.cpio" || return 1
		cpu_ready "$name" || return 1
		if [ $vmm = qemu ]; then
			if ! { cap_cgroup && guest_pid "$name" >"$CG/cgroup.procs"; }; then
				echo "# cpu: no cgroup v2 with the cpu controller here: QEMU has no cap peer"
				bench_stop "$name"
				break
			fi
		fi
		spin_rate "$name" "$vmm-u0"
		for p in 10 30 50 80; do
			if [ $vmm = minivmm ]; then
				"$GT_MINIVMM" control "$name" cpucap $p >/dev/null || echo "# cpu: minivmm cpucap $p refused"
			else
				echo "$((p * 1000)) 100000" >"$CG/cpu.max"
			fi
			spin_rate "$name" "$vmm-c$p"
			spin_share "$name" "$vmm-s$p" "$vcpu"
			if [ $vmm = minivmm ]; then "$GT_MINIVMM" control "$name" cpucap 100 >/dev/null; else echo "max 100000" >"$CG/cpu.max"; fi
			spin_rate "$name" "$vmm-u$p"
		done
		bench_stop "$name"
	done
	echo "# cpu: uncapped rates (iterations/s) around the capped runs: minivmm ${R[minivmm-u0]} ${R[minivmm-u10]} ${R[minivmm-u30]} ${R[minivmm-u50]} ${R[minivmm-u80]}; qemu ${R[qemu-u0]:-NA} ${R[qemu-u10]:-NA} ${R[qemu-u30]:-NA} ${R[qemu-u50]:-NA} ${R[qemu-u80]:-NA}"
	printf '%-26s %10s %10s\n' "cap: % of uncapped" minivmm "qemu+cgroup"
	local prev=0
	for p in 10 30 50 80; do
		printf '%-26s %10s %10s\n' "cap $p%" "$(cap_progress minivmm $prev $p)" "$(cap_progress qemu $prev $p)"
		prev=$p
	done
	echo "# progress = capped rate / the mean of the uncapped runs just before and after it (the host's load drifts)"
	printf '%-26s %10s %10s\n' "cap: vCPU thread's % CPU" minivmm "qemu+cgroup"
	for p in 10 30 50 80; do
		printf '%-26s %10s %10s\n' "cap $p%" "${R[minivmm-s$p]:-NA}" "${R[qemu-s$p]:-NA}"
	done
	echo "# the spinning vCPU thread's CPU time over wall time (schedstat), over $SPIN_S s from 1 s after the spin starts"
	[ "$(cap_progress minivmm 50 80)" != NA ]
}

# --- idle ---------------------------------------------------------------------------------------
cpu_ticks() { # PID...: utime + stime of the processes (all threads), in clock ticks
	local p
	for p; do sed 's/.*) //' "/proc/$p/stat" | cut -d' ' -f12,13; done | awk '{ t += $1 + $2 } END { print t + 0 }'
}
# What the idle time goes to: "NAME TICKS" per thread name (digits folded: vcpu0..3 are vcpu#).
thread_ticks() { # PID...
	local p t
	for p; do
		for t in /proc/"$p"/task/*; do
			printf '%s %s\n' "$(tr -d ' ' <"$t/comm" | tr '0-9' '#')" "$(sed 's/.*) //' "$t/stat" | cut -d' ' -f12,13 | tr ' ' +)"
		done
	done | awk '{ split($2, a, "+"); t[$1] += a[1] + a[2] } END { for (n in t) print n, t[n] }' | sort
}
# KVM's counters of the VMs of PID... (debugfs sums each VM's vCPUs): "NAME VALUE" lines.
kvm_counters() { # PID...
	local p d
	[ -d /sys/kernel/debug/kvm ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null
	for p; do
		for d in /sys/kernel/debug/kvm/"$p"-*; do
			[ -d "$d" ] || continue
			for f in exits io_exits mmio_exits halt_exits irq_exits request_irq_exits irq_window_exits \
				signal_exits halt_wakeup halt_successful_poll halt_attempted_poll halt_poll_success_ns \
				halt_poll_fail_ns halt_wait_ns insn_emulation irq_injections; do
				[ -r "$d/$f" ] && echo "$f $(cat "$d/$f")"
			done
		done
	done | awk '{ t[$1] += $2 } END { for (n in t) print n, t[n] }' | sort
}
# Per second over S seconds: the difference of two "NAME VALUE" files.
per_second() { # BEFORE AFTER S
	join "$1" "$2" | awk -v s="$3" '{ printf "%s=%.1f ", $1, ($3 - $2) / s } END { print "" }'
}
row_idle() {
	local vmm i names pids t0 t1 hz
	hz=$(getconf CLK_TCK)
	for vmm in minivmm qemu; do
		names=() pids=()
		for i in 1 2 3 4; do
			names+=("bc-idle$i-$vmm-$$")
			bench_start "$vmm" "${names[-1]}" 4 256 "$W/cpu.cpio" || return 1
		done
		for i in "${names[@]}"; do cpu_ready "$i" || return 1; pids+=("$(guest_pid "$i")"); done
		sleep 10 # the guests' last boot work (deferred probes, the console's echo) settles
		thread_ticks "${pids[@]}" >"$W/$vmm.thr0"
		kvm_counters "${pids[@]}" >"$W/$vmm.kvm0"
		t0=$(cpu_ticks "${pids[@]}")
		sleep "$IDLE_S"
		t1=$(cpu_ticks "${pids[@]}")
		thread_ticks "${pids[@]}" >"$W/$vmm.thr1"
		kvm_counters "${pids[@]}" >"$W/$vmm.kvm1"
		R[$vmm,idle]=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v s="$IDLE_S" 'BEGIN { printf "%.2f", 100 * d / hz / s }')
		echo "# cpu: $vmm idle, ticks by thread: $(join -a 2 -e 0 -o 0,1.2,2.2 "$W/$vmm.thr0" "$W/$vmm.thr1" | awk '$3 > $2 { printf "%s=%d ", $1, $3 - $2 }')"
		echo "# cpu: $vmm idle, KVM per second (4 VMs): $(per_second "$W/$vmm.kvm0" "$W/$vmm.kvm1" "$IDLE_S")"
		bench_stop "${names[@]}"
	done
	printf '%-26s %10s %10s %7s\n' figure minivmm qemu ratio
	printf '%-26s %10s %10s %7s\n' "idle 4x4 vCPUs (% core)" "${R[minivmm,idle]}" "${R[qemu,idle]}" "$(ratio "${R[minivmm,idle]}" "${R[qemu,idle]}")"
}

# --- lockup -------------------------------------------------------------------------------------
LOCKUP_RE='soft lockup|rcu: INFO|rcu_.*detected stall|hung_task|blocked for more than'
# The guest's grep spelt so that the typed command, echoed on the console (wrapped at 80 columns),
# never matches LOCKUP_RE itself.
LOCKUP_RE_TYPED='soft[ ]lockup|rcu:[ ]INFO|rcu_.*detected[ ]stall|hung[_]task|blocked[ ]for more than'
row_lockup() {
	local vmm name load ok=1
	# 8 spinning threads for LOAD_S s and 8 fork loops of 200 subshells each, all to their end.
	load="t0=\$(cut -d' ' -f1 /proc/uptime); /cpu-spin $LOAD_S 8 >/dev/null & for j in 1 2 3 4 5 6 7 8; do (i=0; while [ \$i -lt 200 ]; do i=\$((i+1)); x=\$(echo \$i); done) & done; wait; echo CPU: load_t0=\$t0 load_t1=\$(cut -d' ' -f1 /proc/uptime); echo CPU: reports=\$(dmesg | grep -c -E '$LOCKUP_RE_TYPED')"
	for vmm in minivmm qemu; do
		name=bc-8cpu-$vmm-$$
		bench_start "$vmm" "$name" 8 512 "$W/cpu.cpio" || return 1
		cpu_ready "$name" || return 1
		R[$vmm,online]=$(grep -a -o 'CPU: online=[^ ]*' "$W/$name.console" | head -1 | cut -d= -f2)
		guest_send "$name" "$load"
		if guest_wait "$name" '^CPU: reports=' $((LOAD_S * 20 + 900)); then
			R[$vmm,load_s]=$(tr -d '\r' <"$W/$name.console" | sed -n 's/^CPU: load_t0=\([0-9.]*\) load_t1=\([0-9.]*\)$/\1 \2/p' |
				tail -1 | awk '{ printf "%.1f", $2 - $1 }')
			R[$vmm,reports]=$(grep -a -o -E '^CPU: reports=[0-9]+' "$W/$name.console" | tail -1 | cut -d= -f2)
			# the console too (a report dmesg's buffer lost still counts)
			R[$vmm,console]=$(tr -d '\r' <"$W/$name.console" | grep -a -c -E "$LOCKUP_RE")
		else
			echo "# cpu: $vmm: the 8-vCPU load did not finish"
			tr -d '\r' <"$W/$name.console" | tail -8 | sed 's/^/#   /'
			ok=0
		fi
		bench_stop "$name"
	done
	printf '%-26s %10s %10s\n' figure minivmm qemu
	printf '%-26s %10s %10s\n' "8 vCPUs online" "${R[minivmm,online]:-NA}" "${R[qemu,online]:-NA}"
	printf '%-26s %10s %10s\n' "8-vCPU load wall (s)" "${R[minivmm,load_s]:-NA}" "${R[qemu,load_s]:-NA}"
	printf '%-26s %10s %10s\n' "lockup/stall (dmesg)" "${R[minivmm,reports]:-NA}" "${R[qemu,reports]:-NA}"
	printf '%-26s %10s %10s\n' "lockup/stall (console)" "${R[minivmm,console]:-NA}" "${R[qemu,console]:-NA}"
	[ $ok = 1 ] && [ "${R[minivmm,reports]:-1}" = 0 ] && [ "${R[minivmm,console]:-1}" = 0 ]
}

initramfs_build "$W/cpu.cpio" bench/cpu-init -f build/bench/cpu-watch:/cpu-watch \
	-f build/bench/cpu-spin:/cpu-spin || exit 1
echo "# cpu: kernel $(gt_kernel), host $(nproc) CPU(s)$([ "${GT_LEVEL:-}" = 1 ] && echo ', inside level 1'); rows: $ROWS"
rc=0
for r in $ROWS; do
	echo "# cpu: row $r"
	"row_$r" || { echo "# cpu: row $r did not complete"; rc=1; }
done
exit $rc
