#!/bin/bash
# qcow2 allocating writes through io_uring (qcow2_aio_alloc), killed with SIGKILL: `minivmm img
# bench` writes whole 4 KiB clusters of a 4 KiB-cluster image (every write allocates, in the ring)
# with a flush every 64 writes while others are still in flight (--no-drain), and is killed a
# seeded delay after the file first grows.  The image must pass qemu-img check (leaked clusters
# allowed: refcounts may be too high, never too low), and every cluster it maps must hold the
# written pattern: an L2 entry never reaches the file before the data of its cluster.
set -u
cd "$(dirname "$0")/../.."
M=./minivmm
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0

# mapped_hold_pattern IMG BYTE: every extent qemu-img map calls data holds BYTE in the file.
mapped_hold_pattern() {
	qemu-img map --output=json "$1" | python3 -c '
import json, sys
img, byte = sys.argv[1], int(sys.argv[2])
extents = [e for e in json.load(sys.stdin) if e.get("data")]
bad = 0
with open(img, "rb") as f:
    for e in extents:
        f.seek(e["offset"])
        left = e["length"]
        while left:
            chunk = f.read(min(left, 1 << 20))
            if not chunk:
                bad += 1
                break
            if chunk.count(byte) != len(chunk):
                bad += 1
                break
            left -= len(chunk)
if bad:
    print("%d of %d mapped extents do not hold the pattern" % (bad, len(extents)))
    sys.exit(1)
print("%d mapped extents hold the pattern" % len(extents))
' "$1" "$2"
}

for seed in 3 17 29; do
	img="$dir/crash-$seed.qcow2"
	qemu-img create -q -f qcow2 -o cluster_size=4096 "$img" 2G
	start=$(stat -c %s "$img")
	$M img bench -f qcow2 -w -d 32 -s 4k -c 400000 --pattern=171 --flush-interval=64 --no-drain \
		"$img" >"$dir/bench.log" 2>&1 &
	pid=$!
	# Wait (bounded) for the first allocation, then kill a seeded delay later.
	for _ in $(seq 600); do
		[ "$(stat -c %s "$img")" != "$start" ] || ! kill -0 $pid 2>/dev/null && break
		sleep 0.1
	done
	sleep "$(awk -v s=$seed 'BEGIN { srand(s); printf "%.2f", rand() * 0.5 }')"
	if kill -9 $pid 2>/dev/null; then
		how="killed"
	else
		how="ended before the kill"
	fi
	wait $pid 2>/dev/null
	# The kernel tears a dead process's io_uring down in a worker: the image's lock goes a
	# moment after the process (bounded wait).
	for _ in $(seq 100); do
		out=$(qemu-img check "$img" 2>&1)
		rc=$?
		[[ $out == *"Failed to lock"* ]] || break
		sleep 0.1
	done
	if [ $rc != 0 ] && [ $rc != 3 ]; then
		echo "FAIL: seed $seed ($how): qemu-img check exit $rc: $out"
		fails=$((fails + 1))
		continue
	fi
	if ! res=$(mapped_hold_pattern "$img" 171); then
		echo "FAIL: seed $seed ($how): $res"
		fails=$((fails + 1))
		continue
	fi
	echo "PASS: seed $seed ($how): qemu-img check exit $rc; $res"
done
[ $fails = 0 ]
