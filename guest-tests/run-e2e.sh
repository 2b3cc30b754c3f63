#!/bin/bash
# Runs every guest-tests/e2e/test_*.sh (or the ones named) and prints their PASS:/FAIL: lines.
# With a usable /dev/kvm the tests run here, one after the other.  Otherwise each test runs in a
# level 1 of its own (QEMU TCG with nested KVM, lib/level1.sh), $GT_L1_JOBS at a time, longest
# first: a level 1 that freezes or crashes is stopped within seconds by level1.sh's watchdog and
# takes only that test with it.  A test that fails, for any reason, runs once more in a new level 1;
# its first attempt is shown as comment lines ("#   "), and one that passes only then is listed at
# the end as flaky (and counts as passed).  A test that hangs is killed after $GT_TEST_TIMEOUT s
# (900) and counted as a failure; so is one that exits non-zero without saying why.
cd "$(dirname "$0")/.." || exit 1
. guest-tests/lib/level1.sh

# The bound on test $1: $GT_TEST_TIMEOUT (900 s), or more where the test asks for it in a line
# "# gt-timeout: SECONDS" (a slow guest, e.g. a full Debian system booting through firmware).
test_timeout() {
	local own limit=${GT_TEST_TIMEOUT:-900}
	own=$(sed -n 's/^# gt-timeout: \([0-9][0-9]*\)$/\1/p' "$1" | head -1)
	[ -n "$own" ] && [ "$own" -gt "$limit" ] && limit=$own
	echo "$limit"
}

run_here() {
	local t name start rc log state
	if [ "${GT_LEVEL:-}" = 1 ]; then
		echo "# level 1 ready after $(cut -d' ' -f1 /proc/uptime) s of its uptime"
	fi
	[ "${GT_VMM:-minivmm}" != minivmm ] || [ -x ./minivmm ] || { echo "FAIL: e2e (./minivmm is not built)"; return 1; }
	log=$(mktemp)
	for t in ${tests[@]+"${tests[@]}"}; do
		name=$(basename "$t" .sh)
		start=$(date +%s)
		# Each test keeps its VM state (minivmm's default state directories) in a fresh place of
		# its own: level 1's root is read-only, and a host user's ~/.local/share stays untouched.
		state=$(mktemp -d /tmp/gt-state.XXXXXX)
		# Streamed, not printed at the end: if level 1 dies, the host still sees how far it got.
		XDG_DATA_HOME=$state timeout -k 10 "$(test_timeout "$t")" "$t" 2>&1 | tee "$log"
		rc=${PIPESTATUS[0]}
		rm -rf "$state"
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
			echo "FAIL: $name (killed after $(test_timeout "$t") s)"
		elif [ "$rc" -ne 0 ] && ! grep -q '^FAIL: ' "$log"; then
			echo "FAIL: $name (exit code $rc)"
		fi
		echo "# $name: $(($(date +%s) - start)) s"
	done
	rm -f "$log"
}

# The order: longest first, so that the last level 1 to start is a short one.  Durations of the
# last run here (build/e2e-durations), else the ones measured when the tests were written
# (guest-tests/e2e/durations); a test in neither goes first.
order_tests() {
	local t name d
	for t in "$@"; do
		name=$(basename "$t" .sh)
		d=$(cat build/e2e-durations guest-tests/e2e/durations 2>/dev/null |
			awk -v n="$name" '$1 == n { print $2; exit }')
		echo "${d:-100000} $t"
	done | sort -k1,1nr -k2 | cut -d' ' -f2-
}

# One test, in a level 1 of its own, rerun once in a new one if it fails.  Writes
# $results/NAME.out (the lines to print), NAME.time and, for a pass on the rerun, NAME.flaky.
run_in_level1() { # $1 test
	local t=$1 name out err attempt rc reason first_reason="" start stopped
	name=$(basename "$t" .sh)
	local l1_timeout=$GT_L1_TIMEOUT
	[ $(($(test_timeout "$t") + 300)) -le "$l1_timeout" ] || l1_timeout=$(($(test_timeout "$t") + 300))
	trap 'level1_kill; exit 143' TERM INT
	for attempt in 1 2; do
		out=$results/$name.$attempt
		err=$results/$name.$attempt.err
		start=$SECONDS
		GT_ATTEMPT=$attempt level1_run -t "$l1_timeout" ./guest-tests/run-e2e.sh "$t" >"$out" 2>"$err"
		rc=$?
		stopped=$(date +%s)
		echo $((SECONDS - start)) >"$results/$name.time"
		echo "${GT_L1_CPU_S:-?}" >"$results/$name.cpu"
		echo "${GT_L1_BOOT_CPU_S:-?}" >"$results/$name.boot"
		reason=""
		if ! grep -q "^# $name: [0-9]* s$" "$out"; then
			reason="level 1 ${GT_L1_VERDICT:-ended with code $rc}"
		elif grep -q '^FAIL: ' "$out"; then
			reason=$(grep -m 1 '^FAIL: ' "$out")
		fi
		if [ -n "$reason" ] || [ "$attempt" = 2 ]; then
			# Kept for a post-mortem: level 1's console (kernel messages) of a failed attempt.
			[ -z "$reason" ] || cp "$GT_SHARE/console.log" "$logs/$name.attempt$attempt.console.log" 2>/dev/null
		fi
		level1_cleanup
		if [ "$attempt" = 1 ]; then
			if [ -z "$reason" ]; then
				cat "$out" >"$results/$name.out"
				sed 's/^/# /' "$err" >>"$results/$name.out"
				return 0
			fi
			first_reason=$reason
			{
				echo "# $name: attempt 1 failed ($reason), level 1 stopped at $stopped; its output:"
				sed 's/^/#   /' "$out" "$err"
				[ ! -s "$logs/$name.attempt1.console.log" ] ||
					echo "#   (level 1's console: $logs/$name.attempt1.console.log)"
				echo "# $name: rerun in a new level 1"
			} >"$results/$name.out"
			continue
		fi
		{
			cat "$out"
			sed 's/^/# /' "$err"
			if [ -z "$reason" ]; then
				echo "$first_reason" >"$results/$name.flaky"
			elif ! grep -q '^FAIL: ' "$out"; then
				echo "FAIL: $name ($reason; first attempt: $first_reason)"
			fi
			[ -z "$reason" ] || [ ! -s "$logs/$name.attempt2.console.log" ] ||
				echo "# (level 1's console: $logs/$name.attempt2.console.log)"
		} >>"$results/$name.out"
	done
}

# Several level 1s at once: each gets GT_L1_SMP CPUs and GT_L1_MEMORY MiB.
default_jobs() {
	local cpus mem_mib j
	cpus=$(nproc)
	mem_mib=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
	j=$((cpus / ${GT_L1_SMP:-1}))
	[ $((mem_mib / (${GT_L1_MEMORY:-4096} + 512))) -ge "$j" ] || j=$((mem_mib / (${GT_L1_MEMORY:-4096} + 512)))
	[ "$j" -ge 1 ] || j=1
	echo "$j"
}

if [ $# -gt 0 ]; then
	tests=("$@")
else
	tests=(guest-tests/e2e/test_*.sh)
	[ -e "${tests[0]}" ] || tests=()
fi

# Host-side preparation a test needs before it runs (guest-tests/e2e/prepare/NAME.sh: e.g. a disk
# image built with the Debian mirror, which level 1 cannot reach, in build/, which it sees read-only).
# A failure is the test's to report (it finds its input missing).
if [ "${GT_LEVEL:-}" != 1 ]; then
	for t in ${tests[@]+"${tests[@]}"}; do
		p=guest-tests/e2e/prepare/$(basename "$t")
		[ -x "$p" ] || continue
		echo "# $(basename "$t" .sh): preparing on the host ($p)"
		"$p" 2>&1 | sed 's/^/#   /'
	done
fi

if [ "${GT_LEVEL:-}" = 1 ] || gt_host_kvm_usable; then
	run_here
	exit 0
fi
jobs=${GT_L1_JOBS:-$(default_jobs)}
echo "# no usable /dev/kvm here: each test runs in a level 1 of its own (QEMU TCG, nested KVM), $jobs at a time"
# Chosen (and fetched, on a fresh clone) once, before the level 1s start.
level1_qemu_select
echo "# $L1_QEMU_NOTE"
# A backstop only: the watchdog stops a frozen level 1 long before.
export GT_L1_TIMEOUT=${GT_L1_TIMEOUT:-$((${GT_TEST_TIMEOUT:-900} + 300))}
start=$SECONDS
results=$(mktemp -d /tmp/gt-e2e-results.XXXXXX)
logs=build/e2e-logs
mkdir -p "$logs"
declare -A running=()
stop_all() {
	local p
	for p in "${!running[@]}"; do kill -TERM "$p" 2>/dev/null; done
	wait
	rm -rf "$results"
	exit 130
}
trap stop_all INT TERM
finish_one() { # $1 pid of a finished job
	local name=${running[$1]}
	wait "$1"
	unset "running[$1]"
	cat "$results/$name.out" 2>/dev/null || echo "FAIL: $name (the harness lost its result)"
	echo "# $name: level 1 $(cat "$results/$name.time" 2>/dev/null) s wall, $(cat "$results/$name.cpu" 2>/dev/null) s CPU, of which $(cat "$results/$name.boot" 2>/dev/null) s booting (last attempt)"
}
mapfile -t ordered < <(order_tests ${tests[@]+"${tests[@]}"})
for t in ${ordered[@]+"${ordered[@]}"}; do
	while [ ${#running[@]} -ge "$jobs" ]; do
		wait -n
		for p in "${!running[@]}"; do
			kill -0 "$p" 2>/dev/null || finish_one "$p"
		done
	done
	run_in_level1 "$t" &
	running[$!]=$(basename "$t" .sh)
done
while [ ${#running[@]} -gt 0 ]; do
	wait -n
	for p in "${!running[@]}"; do
		kill -0 "$p" 2>/dev/null || finish_one "$p"
	done
done
reruns=0
for f in "$results"/*.2; do [ -e "$f" ] && reruns=$((reruns + 1)); done
# This run's durations replace those of the same tests from earlier runs.
for t in ${ordered[@]+"${ordered[@]}"}; do
	name=$(basename "$t" .sh)
	[ -f "$results/$name.time" ] && echo "$name $(cat "$results/$name.time")"
done >"$results/durations"
touch build/e2e-durations
awk 'NR == FNR { seen[$1] = 1; print; next } !($1 in seen)' "$results/durations" \
	build/e2e-durations 2>/dev/null >build/e2e-durations.new
mv build/e2e-durations.new build/e2e-durations
for f in "$results"/*.flaky; do
	[ -e "$f" ] && echo "# flaky: $(basename "$f" .flaky) passed on rerun after: $(cat "$f")"
done
echo "# e2e: ${#ordered[@]} tests in level 1s, $reruns rerun; $((SECONDS - start)) s wall"
rm -rf "$results"
