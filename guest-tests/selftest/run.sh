#!/bin/bash
# The harness's own test (`make harness-selftest`): breaks three level 1s on purpose (a kernel crash,
# a freeze with every CPU taken, a soft-lockup report on the console) and checks that run-e2e.sh
# stops each within a minute of the break, reruns the test in a new level 1, counts it as passed
# and lists it as flaky with the right reason.  Prints PASS:/FAIL: lines.  ~3 min on 2 cores.
cd "$(dirname "$0")/../.." || exit 1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# The kernel's own lockup and stall reports are off, so that the freeze is seen by the heartbeat
# alone (the crash and the lockup report exercise the console watch).
GT_MODE=nested GT_L1_APPEND="rcupdate.rcu_cpu_stall_suppress=1 nosoftlockup" guest-tests/run-e2e.sh guest-tests/selftest/l1_crash.sh guest-tests/selftest/l1_freeze.sh \
	guest-tests/selftest/l1_lockup.sh >"$out" 2>&1
sed 's/^\(PASS\|FAIL\): /#   e2e &/' "$out"
check() { # NAME, expected reason (grep -E)
	local name=$1 reason=$2 broke stopped
	if ! grep -q "^PASS: $name (rerun)$" "$out"; then
		echo "FAIL: harness: $name passes on its rerun"
	elif ! grep -q -E "^# flaky: $name passed on rerun after: $reason" "$out"; then
		echo "FAIL: harness: $name listed as flaky after \"$reason\""
	else
		echo "PASS: harness: $name rerun and listed as flaky after \"$reason\""
	fi
	broke=$(awk -v n="$name" '$0 ~ "^# " n ": attempt 1 failed" { on = 1 } on && /^#   # sabotage at / { print $NF; exit }' "$out")
	stopped=$(sed -n "s/^# $name: attempt 1 failed .*, level 1 stopped at \([0-9]*\).*/\1/p" "$out")
	if [ -n "$broke" ] && [ -n "$stopped" ] && [ $((stopped - broke)) -le 60 ]; then
		echo "PASS: harness: $name stopped $((stopped - broke)) s after the break"
	else
		echo "FAIL: harness: $name stopped within 60 s of the break (broke at ${broke:-?}, stopped at ${stopped:-?})"
	fi
}
check l1_crash 'level 1 crashed: .*Kernel panic'
check l1_freeze 'level 1 froze: no heartbeat'
check l1_lockup 'level 1 froze: watchdog: BUG: soft lockup'
if grep -q '^FAIL: ' "$out"; then
	echo "FAIL: harness: no test fails"
fi
