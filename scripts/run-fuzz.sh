#!/bin/bash
# Runs every libFuzzer target (build/fuzz/fuzz_*, `make fuzz`) for FUZZ_SECONDS (10) each and
# prints one line per run: "PASS: fuzz_X: N runs in S s (R/s)" or "FAIL: ..." with the crash file.
# fuzz_image runs once per image format, seeded with images qemu-img makes now (Debian's qemu-img
# is the oracle for what a valid image is; libFuzzer mutates from there).  Crash inputs are kept
# in build/fuzz-crashes/, the corpus in build/fuzz-corpus/, each run's log in build/fuzz-logs/.  The targets' own stderr (device
# warnings about the hostile input) is closed; sanitizer reports still reach the log.  Long runs:
#   FUZZ_SECONDS=3600 scripts/run-fuzz.sh [TARGET[/FORMAT]...]
# FUZZ_JOBS=N runs N targets at a time (default: the host's CPUs).
# FUZZ_RUNS=N stops a target after N executions (the issue's budget is 10^7), FUZZ_SECONDS still
# bounding it; the line then gives the executions reached and the time taken.
# FUZZ_SEED=N (default 1) fixes libFuzzer's seed, so that `make check` explores the same inputs
# every run and passes or fails the same way; FUZZ_SEED=0 lets libFuzzer pick one (long runs).
set -u
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-10}
runs_max=${FUZZ_RUNS:+-runs=$FUZZ_RUNS}
seed=${FUZZ_SEED:-1}
work=$(mktemp -d "${TMPDIR:-/tmp}/minivmm-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p build/fuzz-crashes build/fuzz-logs
formats="qcow2 vdi vmdk vpc vhdx parallels raw"

# Seeds: a 4 MiB disk with data in a few places, converted to each format (plus qcow2 with a
# backing file and compressed clusters, vmdk streamOptimized, vdi static).
seed_images() {
	local d=$work/seed-src
	mkdir -p "$d"
	truncate -s 4M "$d/src.raw"
	printf 'minivmm-fuzz-seed' | dd of="$d/src.raw" bs=1 seek=$((1 << 20)) conv=notrunc status=none
	head -c 70000 /dev/zero | tr '\0' 'x' | dd of="$d/src.raw" bs=1 seek=$((3 << 20)) conv=notrunc status=none
	for f in $formats; do
		mkdir -p "$work/seeds-$f"
		qemu-img convert -O "$f" "$d/src.raw" "$work/seeds-$f/plain" 2>/dev/null
		qemu-img create -q -f "$f" "$work/seeds-$f/empty" 1M 2>/dev/null
	done
	qemu-img convert -c -O qcow2 "$d/src.raw" "$work/seeds-qcow2/compressed" 2>/dev/null
	qemu-img create -q -f qcow2 -o cluster_size=4096 "$work/seeds-qcow2/small-clusters" 1M
	qemu-img convert -O vmdk -o subformat=streamOptimized "$d/src.raw" "$work/seeds-vmdk/stream" 2>/dev/null
	qemu-img convert -O vdi -o static=on "$d/src.raw" "$work/seeds-vdi/static" 2>/dev/null
	qemu-img convert -O vpc -o subformat=fixed "$d/src.raw" "$work/seeds-vpc/fixed" 2>/dev/null
	# Seeds larger than libFuzzer's -max_len are cut; the headers and first tables stay.
}

run() { # $1 binary, $2 label, $3 seed dir (or ""), then env assignments
	local bin=$1 label=$2 seeds=$3 corpus log rc runs rate t0 took
	shift 3
	corpus=build/fuzz-corpus/${label//\//-} # kept: later runs start from what earlier ones found
	mkdir -p "$corpus"
	log=build/fuzz-logs/${label//\//-}.log # kept: a long run's progress and final stats
	t0=$(date +%s)
	env "$@" "$bin" -max_total_time="$secs" $runs_max -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 -seed="$seed" \
		-max_len=65536 -close_fd_mask=2 -artifact_prefix="build/fuzz-crashes/${label//\//-}-" \
		"$corpus" ${seeds:+"$seeds"} >"$log" 2>&1
	rc=$?
	took=$(($(date +%s) - t0))
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	if [ "$rc" -eq 0 ]; then
		echo "PASS: $label: ${runs:-?} runs in $took s (${rate:-?}/s), no crash, hang or sanitizer report"
	else
		echo "FAIL: $label: exit $rc after ${runs:-?} runs: $(grep -m1 -E 'ERROR|SUMMARY|Test unit written' "$log")"
		grep -E 'SUMMARY|Test unit written|#[0-9]+ 0x' "$log" | head -8 | sed 's/^/#   /'
	fi
}

want() { # is $1 (target or target/format) selected on the command line (none: all)?
	local w=$1 a
	[ ${#sel[@]} -eq 0 ] && return 0
	for a in "${sel[@]}"; do [ "$a" = "$w" ] || [ "$a" = "${w%%/*}" ] && return 0; done
	return 1
}

# Runs are FUZZ_JOBS at a time (default: the host's CPUs), each still FUZZ_SECONDS long; their lines
# are printed in the order the runs started.
fuzz_jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
n=0
start() { # as run(), in the background, its line kept for the end
	while [ "$(jobs -rp | wc -l)" -ge "$fuzz_jobs" ]; do wait -n; done
	n=$((n + 1))
	run "$@" >"$work/line.$(printf %03d $n)" &
}

sel=("$@")
ls build/fuzz/fuzz_* >/dev/null 2>&1 || { echo "FAIL: fuzz (targets not built: make fuzz)"; exit 1; }
for bin in build/fuzz/fuzz_*; do
	case $bin in *.d) continue ;; esac
	t=$(basename "$bin")
	if [ "$t" = fuzz_image ]; then
		[ -d "$work/seed-src" ] || seed_images
		for f in $formats; do
			want "$t/$f" && start "$bin" "$t/$f" "$work/seeds-$f" FUZZ_FORMAT="$f"
		done
	else
		want "$t" && start "$bin" "$t" ""
	fi
done
wait
cat "$work"/line.* 2>/dev/null
