#!/bin/bash
# qcow2 files grow ahead of cluster allocation (storage/formats/qcow2/qcow2_grow.c): the sparse tail must never
# make an image inconsistent, and a clean close gives it back.
#  - after allocating writes and a clean close the file ends at its last used cluster
#    (qemu-img check's "Image end offset") and checks clean;
#  - a file that was already longer at open is never cut below that length;
#  - a writer killed with SIGKILL (tail still there) leaves an image qemu-img check accepts
#    (leaked clusters allowed: exit 3) with every flushed write readable (crash_lib.sh).
set -u
cd "$(dirname "$0")/../.."
. tests/storage/crash_lib.sh
M=./minivmm
dir=$CRASH_DIR
fails=0
pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1 ${2:-}"; fails=$((fails + 1)); }
end_offset() { qemu-img check "$1" 2>/dev/null | sed -n 's/^Image end offset: //p'; }

for maker in qemu-img "$M img"; do
	tag=${maker##*/}; tag=${tag%% *}
	img="$dir/trim-$tag.qcow2"
	$maker create -f qcow2 "$img" 1G >/dev/null
	$M img bench -w -d 16 -s 64k -c 2048 -f qcow2 "$img" >/dev/null || fail "$tag: bench"
	size=$(stat -c %s "$img")
	if qemu-img check -q "$img" && [ "$size" = "$(end_offset "$img")" ]; then
		pass "$tag: 128 MiB allocated, file trimmed to its end offset ($size bytes)"
	else
		fail "$tag: trim" "size $size, end offset $(end_offset "$img")"
	fi
	# A second session appends after the first, and trims again.
	$M img bench -w -d 4 -s 64k -c 64 -o 512M -f qcow2 "$img" >/dev/null || fail "$tag: bench 2"
	size=$(stat -c %s "$img")
	if qemu-img check -q "$img" && [ "$size" = "$(end_offset "$img")" ]; then
		pass "$tag: second session trimmed too"
	else
		fail "$tag: second trim" "size $size, end offset $(end_offset "$img")"
	fi
done

# A longer file at open (here: 16 MiB of tail from elsewhere) keeps at least its length.
img="$dir/long.qcow2"
qemu-img create -q -f qcow2 "$img" 1G
truncate -s 16M "$img"
$M img bench -w -d 4 -s 64k -c 512 -f qcow2 "$img" >/dev/null || fail "long: bench"
size=$(stat -c %s "$img")
if qemu-img check -q "$img" && [ "$size" -ge $((16 << 20)) ]; then
	pass "a file longer at open is not cut below its length ($size bytes)"
else
	fail "long file" "size $size"
fi

# Killed writers: the grown tail is there, and must not matter.
qcheck_leaks_ok() {
	local out rc
	out=$(qemu-img check "$1" 2>&1)
	rc=$?
	[ $rc = 0 ] || [ $rc = 3 ] || { echo "$out"; return 1; }
}
for seed in 5 23; do
	out=$(crash_round "qemu-$seed" "$dir/qemu-$seed.qcow2" "qemu-img create -q -f qcow2 '$dir/qemu-$seed.qcow2' 256M" \
		"$seed" qcheck_leaks_ok 0.15 0.6)
	echo "$out"
	[[ $out == PASS* ]] || fails=$((fails + 1))
done
out=$(crash_round "minivmm-11" "$dir/minivmm-11.qcow2" "$M img create -f qcow2 '$dir/minivmm-11.qcow2' 256M" \
	11 qcheck_leaks_ok 0.15 0.6)
echo "$out"
[[ $out == PASS* ]] || fails=$((fails + 1))
[ $fails = 0 ]
