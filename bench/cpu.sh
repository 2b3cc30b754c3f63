#!/bin/bash
# vCPU hot-plug latency (minivmm against QEMU) and the execution cap's accuracy (minivmm only: QEMU
# has no cap).
#   plug_s    wall time from the request (`minivmm control NAME plugcpu 1`, QEMU's QMP device_add of
#             a host-x86_64-cpu) to the guest showing CPU 1 online: the guest (bench/cpu-init)
#             onlines new CPUs as the udev rule would, polling every ~10 ms; the host polls its
#             console every 10 ms.  Median of BENCH_CPU_ROUNDS (3) plugs, each followed by an
#             unplug (minivmm unplugcpu, QEMU device_del) timed the same way to "online=0" (unplug_s).
#   capN_pct  a CPU-bound shell loop's progress under `control cpucap N` as a percentage of its
#             uncapped progress, timed by the guest's clock (the loop sized for ~3 s uncapped).
# Both VMMs boot the same kernel and initramfs, 256 MiB, one vCPU present of two possible.
cd "$(dirname "$0")/.." || exit 1
. guest-tests/lib/level1.sh
. guest-tests/lib/guest.sh

ROUNDS=${BENCH_CPU_ROUNDS:-3}
case $ROUNDS in *[!0-9]* | "" | 0) echo "bench/cpu.sh: BENCH_CPU_ROUNDS must be a positive number" >&2; exit 2 ;; esac
if [ "${GT_LEVEL:-}" != 1 ]; then
	[ -x ./minivmm ] || { echo "bench: ./minivmm is not built (run make)" >&2; exit 1; }
	if ! gt_host_kvm_usable; then
		echo "# bench/cpu.sh: no usable /dev/kvm here: measuring inside level 1 (QEMU TCG, nested KVM)"
		level1_run ./bench/cpu.sh
		rc=$?
		level1_cleanup
		exit $rc
	fi
fi

now() { date +%s.%N; }
count() { tr -d '\r' <"$GT_WORK/$1.console" | grep -a -c -x "BENCH: online=$2"; }
# Wait (bounded: 120 s) until the console shows "online=$2" more than $3 times; prints the time.
wait_online() { # name set than
	local i=0
	while [ "$(count "$1" "$2")" -le "$3" ] && [ $i -lt 12000 ]; do
		sleep 0.01
		i=$((i + 1))
	done
	[ $i -lt 12000 ] && now
}
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "NA" }'; }
qmp() { # socket command-json: send after the capabilities handshake, print the reply
	/usr/bin/python3 - "$1" "$2" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()
for cmd in ('{"execute":"qmp_capabilities"}', sys.argv[2]):
    f.write(cmd + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            break
print(json.dumps(r))
PY
}
qemu_start() { # name
	local name=$1 fifo=$GT_WORK/$1.in fd
	mkfifo "$fifo" || return 1
	exec {fd}<>"$fifo"
	qemu-system-x86_64 -accel kvm -M q35 -cpu host -smp 1,maxcpus=2 -m 256 -nodefaults -display none \
		-no-reboot -serial stdio -qmp "unix:$GT_WORK/qmp.sock,server=on,wait=off" \
		-kernel "$(gt_kernel)" -initrd "$GT_WORK/cpu.cpio" -append "console=ttyS0 quiet panic=-1" \
		<"$fifo" >"$GT_WORK/$name.console" 2>"$GT_WORK/$name.stderr" &
	_gt_pid[$name]=$!
	_gt_fd[$name]=$fd
	_gt_last=$name
}
plug_rounds() { # vmm name -> plug_s unplug_s
	local vmm=$1 name=$2 i t0 t1 p="" u="" n
	for i in $(seq 1 "$ROUNDS"); do
		n=$(count "$name" 0-1)
		t0=$(now)
		if [ "$vmm" = minivmm ]; then
			"$GT_MINIVMM" control "$name" plugcpu 1 >/dev/null 2>&1 &
		else
			qmp "$GT_WORK/qmp.sock" '{"execute":"device_add","arguments":{"driver":"host-x86_64-cpu","id":"c1","socket-id":1,"core-id":0,"thread-id":0}}' >/dev/null &
		fi
		t1=$(wait_online "$name" 0-1 "$n") || { echo "# $vmm: CPU 1 never came online"; break; }
		wait
		p="$p $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
		n=$(count "$name" 0)
		t0=$(now)
		if [ "$vmm" = minivmm ]; then
			"$GT_MINIVMM" control "$name" unplugcpu 1 >/dev/null 2>&1 &
		else
			qmp "$GT_WORK/qmp.sock" '{"execute":"device_del","arguments":{"id":"c1"}}' >/dev/null &
		fi
		t1=$(wait_online "$name" 0 "$n") || { echo "# $vmm: CPU 1 never went away"; break; }
		wait
		u="$u $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
		# QEMU reports the removal (DEVICE_DELETED) after the guest's _EJ0: wait for it to settle.
		sleep 1
	done
	plug_s=$(echo $p | tr ' ' '\n' | median)
	unplug_s=$(echo $u | tr ' ' '\n' | median)
	echo "# $vmm: plug $p s; unplug $u s"
}

gt_setup
initramfs_build "$GT_WORK/cpu.cpio" bench/cpu-init || exit 1
echo "# bench/cpu.sh: kernel $(gt_kernel), 1 of 2 vCPUs, 256 MiB$([ "${GT_LEVEL:-}" = 1 ] && echo ', inside level 1')"

GT_VMM=minivmm
GT_RUN_ARGS=(--cpuhotplug)
m=bench-cpu-m-$$
guest_start "$m" 2 256 "$GT_WORK/cpu.cpio"
guest_wait "$m" '^BENCH: ready' || { echo "# minivmm guest did not boot"; exit 1; }
plug_rounds minivmm "$m"
mp=$plug_s mu=$unplug_s

# Cap accuracy on the same guest (CPU 1 unplugged again: one vCPU spins).
seqf=$GT_WORK/seq
echo 0 >"$seqf"
work() { # iterations -> guest seconds
	local s
	s=$(($(cat "$seqf") + 1))
	echo $s >"$seqf"
	guest_send "$m" "a=\$(cut -d' ' -f1 /proc/uptime); i=0; while [ \$i -lt $1 ]; do i=\$((i+1)); done; b=\$(cut -d' ' -f1 /proc/uptime); echo \"BENCH: w$s=\$a:\$b\""
	guest_wait "$m" "^BENCH: w$s=" 900 >/dev/null
	grep -a -o "BENCH: w$s=[0-9.:]*" "$GT_WORK/$m.console" | tail -1 | cut -d= -f2 | awk -F: '{ printf "%.2f\n", $2 - $1 }'
}
t=$(work 20000)
n=$(awk -v t="$t" 'BEGIN { n = int(20000 * 3 / (t > 0.05 ? t : 0.05)); print n < 20000 ? 20000 : n }')
t100=$(work "$n")
declare -A cap=()
for p in 10 30 50 80; do
	"$GT_MINIVMM" control "$m" cpucap $p >/dev/null
	tp=$(work "$n")
	cap[$p]=$(awk -v u="$t100" -v c="$tp" 'BEGIN { if (c > 0) printf "%.1f", 100 * u / c; else print "NA" }')
done
"$GT_MINIVMM" control "$m" cpucap 100 >/dev/null
guest_send "$m" 'poweroff -f'
guest_wait_exit "$m" 120

q=bench-cpu-q-$$
GT_VMM=qemu
qemu_start "$q"
guest_wait "$q" '^BENCH: ready' || { echo "# QEMU guest did not boot"; exit 1; }
plug_rounds qemu "$q"
qp=$plug_s qu=$unplug_s
guest_send "$q" 'poweroff -f'
guest_wait_exit "$q" 120

printf '%-12s %12s %12s %8s\n' figure minivmm qemu ratio
row() { # label a b
	printf '%-12s %12s %12s %8s\n' "$1" "$2" "$3" \
		"$(awk -v a="$2" -v b="$3" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "NA" }')"
}
row plug_s "$mp" "$qp"
row unplug_s "$mu" "$qu"
for p in 10 30 50 80; do
	row "cap${p}_pct" "${cap[$p]}" -
done
case "$mp $qp $mu $qu ${cap[*]}" in *NA*) exit 1 ;; esac
exit 0
