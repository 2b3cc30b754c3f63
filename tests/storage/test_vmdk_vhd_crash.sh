#!/bin/bash
# Crash safety of the writable sparse VMDK (monolithic, split, stream-optimized) and VHD formats: `minivmm block-stress write` (the generic
# block-layer writer) does seeded random writes with a logged flush every 8 writes
# and is killed with SIGKILL after a seeded delay. Afterwards qemu-img must accept the image
# (`qemu-img check` for VMDK; qemu-img has no check for vpc, so it must read the whole image) and
# every write before the last logged flush must read back (`block-stress verify`). The kill comes a
# seeded delay after the first logged flush, so a slow machine changes where, not whether, it lands.
set -u
cd "$(dirname "$0")/../.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

crash_round() { # $1 name, $2 format, $3 image-maker command, $4 seed
	local img="$dir/$1.img" log="$dir/$1.log" pid delay out
	rm -f "$dir/$1"*
	eval "$3" >/dev/null || { echo "FAIL: $1 (create)"; return; }
	./minivmm block-stress write "$img" "$log" "$4" 2>"$dir/err" &
	pid=$!
	delay=$(awk -v s="$4" 'BEGIN { srand(s); printf "%.2f", 0.2 + rand() * 0.6 }')
	# The kill comes a seeded delay after the first logged flush, however loaded the machine.
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
		echo "FAIL: $1 (no flush logged in ${delay}s)"
		return
	fi
	if [ "$2" = vmdk ]; then
		out=$(qemu-img check -f vmdk "$img" 2>&1) || { echo "FAIL: $1 (qemu-img check: $out)"; return; }
	else
		out=$(qemu-img convert -f vpc -O raw "$img" "$dir/$1.raw" 2>&1) ||
			{ echo "FAIL: $1 (qemu-img cannot read it: $out)"; return; }
	fi
	if ! out=$(./minivmm block-stress verify "$img" "$log" "$4" 2>&1); then
		echo "FAIL: $1 ($out)"
		return
	fi
	echo "PASS: $1 (killed ${delay}s after the first flush; $out)"
}

for seed in 11 23 37; do
	crash_round "vmdk-sparse-$seed" vmdk "./minivmm img create -f vmdk '$dir/vmdk-sparse-$seed.img' 256M" "$seed"
done
crash_round "vmdk-split-19" vmdk "./minivmm img create -f vmdk -o subformat=twoGbMaxExtentSparse '$dir/vmdk-split-19.img' 256M" 19
crash_round "vmdk-qemu-zeroed-5" vmdk "qemu-img create -f vmdk -o zeroed_grain=on '$dir/vmdk-qemu-zeroed-5.img' 256M" 5
crash_round "vmdk-stream-7" vmdk "./minivmm img create -f vmdk -o subformat=streamOptimized '$dir/vmdk-stream-7.img' 64M" 7
for seed in 13 29 31; do
	crash_round "vpc-dynamic-$seed" vpc "./minivmm img create -f vpc '$dir/vpc-dynamic-$seed.img' 256M" "$seed"
done
crash_round "vpc-qemu-dynamic-3" vpc "qemu-img create -f vpc '$dir/vpc-qemu-dynamic-3.img' 256M" 3

# The checker must be able to fail: a write it expects is missing.
for f in vmdk vpc; do
	img="$dir/neg.$f"
	rm -f "$img"
	./minivmm img create -f "$f" "$img" 8M >/dev/null
	echo 8 >"$dir/neg.log"
	if ./minivmm block-stress verify "$img" "$dir/neg.log" 3 >/dev/null 2>&1; then
		echo "FAIL: verify-detects-lost-writes-$f"
	else
		echo "PASS: verify-detects-lost-writes-$f"
	fi
done
