#!/bin/bash
# A "test" for the harness self-test (run.sh): on its first attempt it breaks level 1 in the way its
# name says, on the rerun it passes.  GT_ATTEMPT comes from run-e2e.sh.
#   l1_crash:  the kernel crashes (sysrq c: a panic, QEMU ends)
#   l1_freeze: every level-1 CPU is taken by a SCHED_FIFO spinner with RT throttling off, so
#              nothing else runs again (the init's heartbeat stops)
#   l1_lockup: the kernel's soft-lockup report, as printed on level 1's console
name=$(basename "$0" .sh)
if [ "${GT_ATTEMPT:-1}" != 1 ]; then
	echo "PASS: $name (rerun)"
	exit 0
fi
[ "${GT_LEVEL:-}" = 1 ] || { echo "FAIL: $name (not in level 1)"; exit 1; }
echo "# sabotage at $(date +%s)"
sleep 1 # the line above reaches the host before level 1 stops
case $name in
l1_crash) echo c >/proc/sysrq-trigger ;;
l1_freeze)
	echo -1 >/proc/sys/kernel/sched_rt_runtime_us
	for _ in $(seq "$(nproc)"); do
		chrt -f 99 sh -c 'while :; do :; done' &
	done
	;;
l1_lockup) echo "<2>watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [selftest:1]" >/dev/kmsg ;;
esac
sleep 600
echo "FAIL: $name (level 1 survived its sabotage)"
exit 1
