#!/bin/bash
# What a level 1 costs around the test it runs (the README's boot-cost table):
#   guest-tests/selftest/boot_cost.sh RUNS [CMD...]
# boots RUNS level 1s one after the other (configured as in lib/level1.sh: GT_L1_CPU, GT_L1_APPEND,
# GT_L1_ACCEL, GT_L1_QEMU...), each running CMD (default `true`), and prints per run the CPU seconds of level 1's
# QEMU until its init was ready (first heartbeat), in all, and the wall time; then their means.
# CPU seconds, not wall: on a shared host the wall time follows the load.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/level1.sh
runs=${1:-3}
shift
[ $# -gt 0 ] || set -- true
level1_qemu_select
conf="qemu=$("$L1_QEMU" --version | sed -n '1s/.*version \([^ ]*\).*/\1/p') cpu=${GT_L1_CPU:-max} accel=${GT_L1_ACCEL:-tcg} append='${GT_L1_APPEND:-}' args='${GT_L1_QEMU_ARGS:-}' 9p-cache=${GT_L1_9P_CACHE:-none} cmd='$*'"
all=""
for i in $(seq "$runs"); do
	start=$SECONDS
	GT_MODE=nested level1_run -t 600 "$@" >/dev/null 2>&1
	rc=$?
	line="boot ${GT_L1_BOOT_CPU_S:-?} s CPU, all $(awk -v t="${_L1_TICKS:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz }') s CPU, after the command ${GT_L1_DOWN_CPU_S:-?} s CPU, $((SECONDS - start)) s wall, load $(cut -d' ' -f1 /proc/loadavg)"
	[ "$rc" = 0 ] || line="$line, FAILED (exit $rc${GT_L1_VERDICT:+: $GT_L1_VERDICT})"
	echo "run $i: $line"
	[ "$rc" != 0 ] || all="$all ${GT_L1_BOOT_CPU_S:-0}:$_L1_TICKS"
	level1_cleanup
done
echo "$all" | awk -v conf="$conf" -v hz="$(getconf CLK_TCK)" '{
	for (i = 1; i <= NF; i++) { split($i, p, ":"); b += p[1]; t += p[2] / hz; n++ }
	printf "# %s: %d clean runs, mean boot %.1f s CPU, mean all %.1f s CPU\n", conf, n, n ? b / n : 0, n ? t / n : 0 }'
