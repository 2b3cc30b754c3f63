#!/bin/bash
# Measures how often level 1 freezes or crashes in a configuration (the README's evidence table):
#   guest-tests/selftest/stress.sh RUNS TEST...
# boots RUNS level 1s one after the other (GT_L1_SMP, GT_L1_CPU, GT_L1_ACCEL, GT_L1_APPEND as in
# lib/level1.sh; the QEMU: GT_L1_QEMU as in lib/level1_qemu.sh), each running the e2e TESTs with no
# rerun, and prints one line per run (wall time, CPU seconds of level 1's QEMU, the host's load
# average at its end, each test's time inside level 1) and a total.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/level1.sh
runs=$1
shift
level1_qemu_select
conf="qemu=$("$L1_QEMU" --version | sed -n '1s/.*version \([^ ]*\).*/\1/p') smp=${GT_L1_SMP:-1} accel=${GT_L1_ACCEL:-tcg} cpu=${GT_L1_CPU:-max} append='${GT_L1_APPEND:-}'"
ok=0 bad=0 failed=0
for i in $(seq "$runs"); do
	out=$(mktemp)
	start=$SECONDS
	GT_MODE=nested level1_run -t 1800 ./guest-tests/run-e2e.sh "$@" >"$out" 2>/dev/null
	t=$((SECONDS - start))
	each=$(sed -n 's/^# \(test_[a-z0-9_]*\): \([0-9]*\) s$/\1=\2/p' "$out" | tr '\n' ' ')
	t="$t s wall, ${GT_L1_CPU_S:-?} s CPU, load $(cut -d' ' -f1 /proc/loadavg) [$each]"
	p=$(grep -c '^PASS: ' "$out")
	f=$(grep -c '^FAIL: ' "$out")
	if [ -n "$GT_L1_VERDICT" ]; then
		bad=$((bad + 1))
		echo "run $i: level 1 $GT_L1_VERDICT after $t ($p passed before)"
		mkdir -p build/e2e-logs
		cp "$GT_SHARE/console.log" "build/e2e-logs/stress-$i-$$.console.log"
	elif [ "$f" -gt 0 ]; then
		failed=$((failed + 1))
		echo "run $i: $f FAIL in $t: $(grep -m1 '^FAIL: ' "$out")"
	else
		ok=$((ok + 1))
		echo "run $i: $p passed in $t"
	fi
	rm -f "$out"
	level1_cleanup
done
echo "# $conf load=$(cut -d' ' -f1-3 /proc/loadavg): $runs runs, $ok clean, $failed with a FAIL, $bad level 1 froze/crashed"
