#!/bin/bash
# Crash safety of the VHDX and Parallels drivers: `minivmm block-stress write` (the format-neutral
# writer) does seeded random writes with a logged flush every 8 writes and is
# killed with SIGKILL after a seeded delay. Then a read-write `minivmm img check -r all` replays
# the VHDX log / clears the Parallels in-use flag (what a crash leaves by design), `qemu-img check`
# must be clean, and every write before the last logged flush must read back.
set -u
cd "$(dirname "$0")/../.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

crash_round() { # $1 name, $2 format, $3 image-maker command, $4 seed
	local img="$dir/$1.img" log="$dir/$1.log" pid delay out
	rm -f "$img" "$log"
	eval "$3" >/dev/null || { echo "FAIL: $1 (create)"; return; }
	./minivmm block-stress write "$img" "$log" "$4" 2>"$dir/err" &
	pid=$!
	delay=$(awk -v s="$4" 'BEGIN { srand(s); printf "%.2f", 0.3 + rand() * 0.8 }')
	sleep "$delay"
	if ! kill -9 "$pid" 2>/dev/null; then
		wait "$pid"
		echo "FAIL: $1 (writer ended before the kill: $(cat "$dir/err"))"
		return
	fi
	wait "$pid" 2>/dev/null
	if ! [ -s "$log" ]; then
		echo "FAIL: $1 (no flush logged in ${delay}s)"
		return
	fi
	if ! out=$(./minivmm img check -f "$2" -r all "$img" 2>&1); then
		echo "FAIL: $1 (minivmm img check -r all: $out)"
		return
	fi
	if ! out=$(qemu-img check -f "$2" "$img" 2>&1); then
		echo "FAIL: $1 (qemu-img check: $out)"
		return
	fi
	if ! out=$(./minivmm block-stress verify "$img" "$log" "$4" 2>&1); then
		echo "FAIL: $1 ($out)"
		return
	fi
	echo "PASS: $1 (killed after ${delay}s; $out)"
}

# Small blocks so that the writer allocates (and logs BAT updates) all the time.
for seed in 11 23 37; do
	crash_round "vhdx-qemu-$seed" vhdx "qemu-img create -f vhdx -o block_size=1M '$dir/vhdx-qemu-$seed.img' 400M" "$seed"
done
for seed in 5 29; do
	crash_round "vhdx-minivmm-$seed" vhdx "./minivmm img create -f vhdx -o block_size=1M '$dir/vhdx-minivmm-$seed.img' 400M" "$seed"
done
crash_round "vhdx-fixed-17" vhdx "./minivmm img create -f vhdx -o subformat=fixed,block_size=1M '$dir/vhdx-fixed-17.img' 64M" 17
for seed in 3 41; do
	crash_round "parallels-qemu-$seed" parallels "qemu-img create -f parallels -o cluster_size=64K '$dir/parallels-qemu-$seed.img' 400M" "$seed"
done
crash_round "parallels-minivmm-13" parallels "./minivmm img create -f parallels -o cluster_size=4K '$dir/parallels-minivmm-13.img' 400M" 13
