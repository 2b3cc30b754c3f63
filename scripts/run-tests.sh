#!/bin/bash
# Runs minivmm's tests and prints one closing line "N passed, N failed".
#   scripts/run-tests.sh unit   cmocka programs (build/san/tests/*/test_*) and shell tests (tests/*/test_*.sh)
#   scripts/run-tests.sh e2e    guests booted under minivmm (guest-tests/run-e2e.sh) and the nested
#                               harness's self-test (guest-tests/selftest/run.sh)
#   scripts/run-tests.sh fuzz   a short run of every libFuzzer target (scripts/run-fuzz.sh; `make fuzz`)
#   scripts/run-tests.sh all    all three
# Shell tests report each case on a line "PASS: name" or "FAIL: name"; a script that exits non-zero
# without a FAIL line counts as one failure.  cmocka programs are counted by their own summary lines.
# Unit, device and storage programs run $TEST_JOBS at a time (default: the host's CPUs; each test
# works in a directory of its own), their results printed in name order with each one's seconds
# (wall, and CPU of the test and its children); the slowest are listed after them.
set -u
cd "$(dirname "$0")/.."
what=${1:-all}
passed=0
failed=0
failures=()
log_dir=build/test-logs
mkdir -p "$log_dir"

count_cmocka() { # $1 name, $2 log, $3 exit code
	local p f
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$2" | awk '{s+=$1} END {print s+0}')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$2" | awk '{s+=$1} END {print s+0}')
	if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	passed=$((passed + p))
	failed=$((failed + f))
	[ "$f" -eq 0 ] || failures+=("$1 (log: $2)")
}

count_lines() { # $1 name, $2 log, $3 exit code
	local p f
	p=$(grep -c '^PASS: ' "$2")
	f=$(grep -c '^FAIL: ' "$2")
	if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	passed=$((passed + p))
	failed=$((failed + f))
	[ "$f" -eq 0 ] || failures+=("$1 (log: $2)")
}

log_of() { echo "$log_dir/$(echo "${1#./}" | tr '/' '_').log"; }

# Runs $1 with its output in LOG; "WALL CPU" seconds (CPU: the test's and its children's) go to
# LOG.time, then its exit code to LOG.rc (last: a job's LOG.rc means it is done).
# With $2 = stream, the output is also shown as it comes (the e2e and fuzz runs, one at a time: a
# run that CI's time limit cuts short still shows how far it got).
run_logged() {
	local log TIMEFORMAT='%R %U %S'
	log=$(log_of "$1")
	if [ "${2:-}" = stream ]; then
		{ time { "$1" 2>&1 | tee "$log" | grep --line-buffered -v '^PASS: '; echo "${PIPESTATUS[0]}" >"$log.code"; }; } 2>"$log.times"
	else
		{ time { "$1" >"$log" 2>&1; echo $? >"$log.code"; }; } 2>"$log.times"
	fi
	awk '{ printf "%.1f %.1f\n", $1, $2 + $3 }' "$log.times" >"$log.time"
	rm -f "$log.times"
	mv "$log.code" "$log.rc"
}

report_one() { # $1 kind, $2 command, $3 "streamed" when its lines were shown already
	local name log
	name=${2#./}
	log=$(log_of "$2")
	echo "== $name ($(awk '{ print $1 " s, CPU " $2 " s" }' "$log.time"))"
	[ "${3:-}" = streamed ] || grep -E '^(FAIL: |\[  FAILED  \]|\[  ERROR   \])' "$log" | head -20
	"count_$1" "$name" "$log" "$(cat "$log.rc")"
}

run_one() { # $1 kind, $2 command
	run_logged "$2" stream
	report_one "$1" "$2" streamed
}

# Arguments "KIND COMMAND": $TEST_JOBS at a time, each reported, in the order given, once it ends.
run_pool() {
	local jobs=${TEST_JOBS:-$(nproc 2>/dev/null || echo 2)} items=("$@") next=0 i n ended
	local -A pool=() # pids of the runs going on (the e2e preparation is not one of them)
	n=${#items[@]}
	for ((i = 0; i < n; i++)); do
		rm -f "$(log_of "${items[$i]#* }").rc"
	done
	for ((i = 0; i < n; i++)); do
		until [ -e "$(log_of "${items[$i]#* }").rc" ]; do
			while [ $next -lt $n ] && [ ${#pool[@]} -lt "$jobs" ]; do
				run_logged "${items[$next]#* }" &
				pool[$!]=1
				next=$((next + 1))
			done
			[ -e "$(log_of "${items[$i]#* }").rc" ] && break
			ended=""
			wait -n -p ended
			[ -n "$ended" ] && unset "pool[$ended]"
		done
		report_one ${items[$i]}
	done
	for i in "${!pool[@]}"; do wait "$i"; done
}

# With everything to run, the e2e tests' host-side preparation (guest-tests/e2e/prepare/: the
# Debian image, mostly a download) runs beside the unit tests, which need the CPUs, not the
# network; run-e2e.sh then finds its result cached.  It is waited for before the e2e tests start.
prep_pid=""
if [ "$what" = all ] && ls guest-tests/e2e/prepare/*.sh >/dev/null 2>&1; then
	for p in guest-tests/e2e/prepare/*.sh; do
		"$p" || echo "# $p failed: run-e2e.sh tries again"
	done >"$log_dir/e2e-prepare.log" 2>&1 &
	prep_pid=$!
fi

if [ "$what" = unit ] || [ "$what" = all ]; then
	unit_items=()
	for t in $(find build/san/tests -type f -name 'test_*' ! -name '*.d' ! -name '*.o' 2>/dev/null | sort); do
		unit_items+=("cmocka ./$t")
	done
	for t in $(ls tests/*/test_*.sh 2>/dev/null | sort); do
		unit_items+=("lines ./$t")
	done
	run_pool "${unit_items[@]}"
	echo "# slowest (wall s, CPU s):"
	for it in "${unit_items[@]}"; do
		echo "$(cat "$(log_of "${it#* }").time") ${it#* ./}"
	done | sort -k1,1nr | head -8 | sed 's/^/#   /'
fi

if [ "$what" = fuzz ] || [ "$what" = all ]; then
	run_one lines ./scripts/run-fuzz.sh
fi
if [ "$what" = e2e ] || [ "$what" = all ]; then
	[ -z "$prep_pid" ] || wait "$prep_pid"
	if [ -x guest-tests/run-e2e.sh ]; then
		run_one lines ./guest-tests/run-e2e.sh
	fi
	# The harness's own test: a crashed, a frozen and a locked-up level 1 are each stopped and
	# their test rerun (~1.5 min; boots level 1 under TCG even where /dev/kvm works).
	if [ -x guest-tests/selftest/run.sh ]; then
		run_one lines ./guest-tests/selftest/run.sh
	fi
fi

for f in "${failures[@]+"${failures[@]}"}"; do echo "failed: $f"; done
# Tests that passed only on their rerun (in a new level 1): counted as passed, but kept visible.
grep -h '^# flaky: ' "$log_dir/guest-tests_run-e2e.sh.log" 2>/dev/null | sed 's/^# //'
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
