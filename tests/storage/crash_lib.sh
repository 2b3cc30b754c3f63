# The kill -9 harness of tests/storage/test_*_crash.sh (sourced; not a test itself). Run from the
# repository root. Sourcing makes CRASH_DIR, a temporary directory removed on exit.
#
# `minivmm block-stress write` does seeded random writes with a logged flush every 8 writes; it is
# killed with SIGKILL a seeded delay after the first logged flush (polled for, at most 60 s), so a
# loaded machine changes where, not whether, the kill lands. Then the test's checker must accept
# the image and every write before the last logged flush must read back (`block-stress verify`).

CRASH_DIR=$(mktemp -d)
trap 'rm -rf "$CRASH_DIR"' EXIT

# crash_round NAME IMG MAKER SEED CHECK MIN SPAN: MAKER (a shell command) creates IMG; CHECK IMG
# (a command or function, word-split) prints why and fails when the image is not clean; the kill
# comes MIN + rand * SPAN seconds after the first flush. Prints one PASS or FAIL line.
crash_round() {
	local name=$1 img=$2 maker=$3 seed=$4 check=$5 min=$6 span=$7
	local log="$CRASH_DIR/$name.log" err="$CRASH_DIR/$name.err" pid delay out
	rm -f "$CRASH_DIR/$name"*
	eval "$maker" >/dev/null || { echo "FAIL: $name (create)"; return; }
	./minivmm block-stress write "$img" "$log" "$seed" 2>"$err" &
	pid=$!
	delay=$(awk -v s="$seed" -v m="$min" -v r="$span" 'BEGIN { srand(s); printf "%.2f", m + rand() * r }')
	for _ in $(seq 600); do
		[ -s "$log" ] || ! kill -0 "$pid" 2>/dev/null && break
		sleep 0.1
	done
	sleep "$delay"
	if ! kill -9 "$pid" 2>/dev/null; then
		wait "$pid"
		echo "FAIL: $name (writer ended before the kill: $(cat "$err"))"
		return
	fi
	wait "$pid" 2>/dev/null
	if ! [ -s "$log" ]; then
		echo "FAIL: $name (no flush logged within 60s: $(cat "$err"))"
		return
	fi
	if ! out=$($check "$img" 2>&1); then
		echo "FAIL: $name ($check: $out)"
		return
	fi
	if ! out=$(./minivmm block-stress verify "$img" "$log" "$seed" 2>&1); then
		echo "FAIL: $name ($out)"
		return
	fi
	echo "PASS: $name (killed ${delay}s after the first flush; $out)"
}

# crash_verify_must_fail FORMAT...: the checker must be able to fail. A fresh image of each format
# holds no stress writes, so a log claiming 8 flushed writes must be refused.
crash_verify_must_fail() {
	local f img
	for f in "$@"; do
		img="$CRASH_DIR/neg.$f"
		rm -f "$img"
		if ! ./minivmm img create -f "$f" "$img" 8M >/dev/null; then
			echo "FAIL: verify-detects-lost-writes-$f (create)"
			continue
		fi
		echo 8 >"$CRASH_DIR/neg.log"
		if ./minivmm block-stress verify "$img" "$CRASH_DIR/neg.log" 3 >/dev/null 2>&1; then
			echo "FAIL: verify-detects-lost-writes-$f"
		else
			echo "PASS: verify-detects-lost-writes-$f"
		fi
	done
}
