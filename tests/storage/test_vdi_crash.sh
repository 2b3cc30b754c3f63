#!/bin/bash
# Crash safety of the VDI driver: `minivmm block-stress write` does seeded random writes with a
# logged flush every 8 writes and is killed with SIGKILL after a seeded delay; then `qemu-img check`
# must be clean and every write before the last logged flush must read back (`block-stress verify`).
# The kill comes a seeded delay after the first logged flush (polled for, bounded), so a loaded
# machine changes where, not whether, it lands.
set -u
cd "$(dirname "$0")/../.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

crash_round() { # $1 name, $2 image-maker command, $3 seed, $4 checker (default qemu-img check)
	local img="$dir/$1.vdi" log="$dir/$1.log" pid delay out
	rm -f "$img" "$log"
	eval "$2" >/dev/null || { echo "FAIL: $1 (create)"; return; }
	./minivmm block-stress write "$img" "$log" "$3" 2>"$dir/err" &
	pid=$!
	delay=$(awk -v s="$3" 'BEGIN { srand(s); printf "%.2f", 0.15 + rand() * 0.6 }')
	# Wait (at most 60 s) for the first logged flush, or for the writer to die on its own.
	for _ in $(seq 600); do
		[ -s "$log" ] || ! kill -0 "$pid" 2>/dev/null && break
		sleep 0.1
	done
	sleep "$delay"
	if ! kill -9 "$pid" 2>/dev/null; then
		wait "$pid"
		echo "FAIL: $1 (writer ended before the kill: $(cat "$dir/err"))"
		return
	fi
	wait "$pid" 2>/dev/null
	if ! [ -s "$log" ]; then
		echo "FAIL: $1 (no flush logged within 60s: $(cat "$dir/err"))"
		return
	fi
	if ! out=$(${4:-qemu-img check -f vdi} "$img" 2>&1); then
		echo "FAIL: $1 (${4:-qemu-img check}: $out)"
		return
	fi
	if ! out=$(./minivmm block-stress verify "$img" "$log" "$3" 2>&1); then
		echo "FAIL: $1 ($out)"
		return
	fi
	echo "PASS: $1 (killed ${delay}s after the first flush; $out)"
}

for seed in 11 23 37 41; do
	crash_round "qemu-dynamic-$seed" "qemu-img create -f vdi '$dir/qemu-dynamic-$seed.vdi' 400M" "$seed"
done
for seed in 5 17; do
	crash_round "qemu-static-$seed" "qemu-img create -f vdi -o static=on '$dir/qemu-static-$seed.vdi' 32M" "$seed"
done

for seed in 3 29; do
	crash_round "minivmm-dynamic-$seed" "./minivmm img create -f vdi '$dir/minivmm-dynamic-$seed.vdi' 400M" "$seed"
done
# A differencing image over an empty base: every new block is filled from the parent first.
# QEMU cannot open differencing VDIs, so minivmm's own check judges it.
crash_round "minivmm-diff-29" "./minivmm img create -f vdi '$dir/base.vdi' 400M && ./minivmm img create -f vdi -b base.vdi -F vdi '$dir/minivmm-diff-29.vdi'" 29 "./minivmm img check"

# The checker must be able to fail: a write it expects is missing.
img="$dir/neg.vdi"
qemu-img create -q -f vdi "$img" 8M
echo 8 >"$dir/neg.log"
if ./minivmm block-stress verify "$img" "$dir/neg.log" 3 >/dev/null 2>&1; then
	echo "FAIL: verify-detects-lost-writes"
else
	echo "PASS: verify-detects-lost-writes"
fi
