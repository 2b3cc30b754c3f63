#!/bin/bash
# VHDX and Parallels drivers against qemu-img: images made by either tool read and written by the
# other (several block/cluster sizes, fixed and dynamic VHDX), a dirty VHDX log (replayed by a
# read-write open as qemu-img replays it, refused read-only), the Parallels in-use flag, and
# malformed images (one clear error naming the file, the file left unchanged).
set -u
cd "$(dirname "$0")/../.."
. tests/storage/img_test_lib.sh
CRAFT="python3 tests/storage/vhdx_craft.py"

img_make_pattern "$T/pat.raw"
# a second pattern to write over images that already hold the first
python3 -c 'import sys,random; r=random.Random(7); sys.stdout.buffer.write(bytes(r.getrandbits(8) for _ in range(3 << 20)))' >"$T/p2"
truncate -s 8M "$T/pat2.raw"
dd if="$T/p2" of="$T/pat2.raw" bs=1M seek=2 conv=notrunc status=none

interop() { # FMT OPTS CLUSTER: both directions, then minivmm writing into qemu's image
	local f=$1 o=$2 cl=$3 n="$1 $2"
	rm -f "$T"/q.img "$T"/m.img
	check "$n: qemu-img creates" qemu-img convert -f raw -O "$f" -o "$o" "$T/pat.raw" "$T/q.img"
	check "$n: minivmm reads qemu's" $M img compare -f raw -F "$f" "$T/pat.raw" "$T/q.img"
	check "$n: minivmm creates" $M img convert -f raw -O "$f" -o "$o" "$T/pat.raw" "$T/m.img"
	check "$n: qemu-img check minivmm's" qemu-img check -f "$f" "$T/m.img"
	check "$n: qemu-img reads minivmm's" qemu-img compare -f raw -F "$f" "$T/pat.raw" "$T/m.img"
	if [ -n "$cl" ]; then # qemu-img reports no cluster size for parallels
		[ "$(qemu-img info --output=json "$T/m.img" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("cluster-size"))')" = "$cl" ] &&
			pass "$n: qemu-img sees cluster size $cl" || fail "$n: qemu-img sees cluster size $cl"
	fi
	# minivmm overwrites part of qemu's image (existing and new blocks), qemu-img checks it
	check "$n: minivmm writes into qemu's" $M img convert -n -f raw -O "$f" "$T/pat2.raw" "$T/q.img"
	check "$n: ... qemu-img check" qemu-img check -f "$f" "$T/q.img"
	check "$n: ... qemu-img reads it" qemu-img compare -f raw -F "$f" "$T/pat2.raw" "$T/q.img"
	# and qemu-img writes into minivmm's
	check "$n: qemu-img writes into minivmm's" qemu-img convert -n -f raw -O "$f" "$T/pat2.raw" "$T/m.img"
	check "$n: ... minivmm reads it" $M img compare -f raw -F "$f" "$T/pat2.raw" "$T/m.img"
	check "$n: ... minivmm check" $M img check -f "$f" "$T/m.img"
}

interop vhdx subformat=dynamic,block_size=1M 1048576
interop vhdx subformat=dynamic,block_size=32M 33554432
interop vhdx subformat=fixed,block_size=1M 1048576
interop vhdx subformat=dynamic,block_size=256M,log_size=4M 268435456
interop parallels cluster_size=4K ""
interop parallels cluster_size=64K ""
interop parallels cluster_size=1M ""

# options: bad values refused with a message naming the option
for o in block_size=3M block_size=512M log_size=1536K subformat=diff; do
	rm -f "$T/bad.vhdx"
	if $M img create -f vhdx -o "$o" "$T/bad.vhdx" 8M 2>"$T/err"; then
		fail "vhdx -o $o refused"
	else
		grep -q "${o%%=*}" "$T/err" && [ ! -e "$T/bad.vhdx" ] && pass "vhdx -o $o refused" ||
			fail "vhdx -o $o refused" "$(cat "$T/err")"
	fi
done
if $M img create -f parallels -o cluster_size=3000 "$T/bad.prl" 8M 2>"$T/err"; then
	fail "parallels -o cluster_size=3000 refused"
else
	grep -q cluster_size "$T/err" && pass "parallels -o cluster_size=3000 refused" ||
		fail "parallels -o cluster_size=3000 refused" "$(cat "$T/err")"
fi

# A dirty VHDX log: read-only opens refuse it and change nothing; a read-write open replays it
# and gives what qemu-img's replay gives.
qemu-img create -q -f vhdx -o block_size=1M "$T/d.vhdx" 8M
$CRAFT dirty-log "$T/d.vhdx"
cp "$T/d.vhdx" "$T/dq.vhdx"
sum=$(md5sum <"$T/d.vhdx")
if $M img info "$T/d.vhdx" >/dev/null 2>"$T/err"; then
	fail "dirty log: read-only open refused"
else
	grep -q "d.vhdx: the VHDX log must be replayed" "$T/err" && pass "dirty log: read-only open refused" ||
		fail "dirty log: read-only open refused" "$(cat "$T/err")"
fi
[ "$(md5sum <"$T/d.vhdx")" = "$sum" ] && pass "dirty log: file unchanged" || fail "dirty log: file unchanged"
check "dirty log: minivmm replays (check -r all)" $M img check -r all "$T/d.vhdx"
check "dirty log: qemu-img replays its copy" qemu-img check -r all "$T/dq.vhdx"
check "dirty log: qemu-img check after minivmm's replay" qemu-img check "$T/d.vhdx"
check "dirty log: minivmm and qemu replays agree" qemu-img compare "$T/d.vhdx" "$T/dq.vhdx"
$M img convert -O raw "$T/d.vhdx" "$T/d.raw" && [ "$(head -c 8 "$T/d.raw")" = "LOGGED!" ] &&
	pass "dirty log: the logged block is there" || fail "dirty log: the logged block is there"

# A log entry zeroing 1 GiB at 16 MiB (issue 10): replayed without allocating the zeroes (the
# file grows sparsely); one reaching 128 TiB is refused whole, the file unchanged.
qemu-img create -q -f vhdx -o block_size=1M "$T/z.vhdx" 16M
$CRAFT zero-log "$T/z.vhdx" $((16 << 20)) $((1 << 30))
check "zero log: check -r all replays it" $M img check -r all "$T/z.vhdx"
[ "$(stat -c %s "$T/z.vhdx")" -ge $((1040 << 20)) ] && [ $(($(stat -c %b "$T/z.vhdx") * 512)) -lt $((32 << 20)) ] &&
	pass "zero log: the file grew sparsely" || fail "zero log: the file grew sparsely" "$(stat -c '%s bytes, %b blocks' "$T/z.vhdx")"
check "zero log: qemu-img check after the replay" qemu-img check "$T/z.vhdx"
qemu-img create -q -f vhdx -o block_size=1M "$T/z.vhdx" 16M
$CRAFT zero-log "$T/z.vhdx" $((1 << 47)) $((1 << 20))
sum=$(md5sum <"$T/z.vhdx")
$M img check -r all "$T/z.vhdx" >/dev/null 2>"$T/err"
rc=$?
[ $rc != 0 ] && [ $rc -lt 128 ] && [ "$(wc -l <"$T/err")" = 1 ] && grep -q "z.vhdx: VHDX log entry .* beyond the .* bytes this image can occupy; refusing to replay it" "$T/err" &&
	[ "$(md5sum <"$T/z.vhdx")" = "$sum" ] && pass "zero log: an absurd entry refused, file unchanged" ||
	fail "zero log: an absurd entry refused, file unchanged" "exit $rc: $(cat "$T/err")"
rm -f "$T/z.vhdx"

# Parallels in-use flag (left by a crash): read-write opens refused, check reports and repairs it
qemu-img convert -f raw -O parallels "$T/pat.raw" "$T/u.prl"
printf 'Ynot' | dd of="$T/u.prl" bs=1 seek=44 conv=notrunc status=none
if $M img convert -n -f raw -O parallels "$T/pat2.raw" "$T/u.prl" 2>"$T/err"; then
	fail "in-use: read-write open refused"
else
	grep -q "u.prl: Parallels image was not closed cleanly" "$T/err" && pass "in-use: read-write open refused" ||
		fail "in-use: read-write open refused" "$(cat "$T/err")"
fi
check "in-use: read-only open works" $M img compare -f raw "$T/pat.raw" "$T/u.prl"
$M img check "$T/u.prl" >/dev/null 2>&1
[ $? = 2 ] && pass "in-use: check reports a corruption (exit 2)" || fail "in-use: check reports a corruption"
check "in-use: check -r all repairs" $M img check -r all "$T/u.prl"
check "in-use: qemu-img check clean after" qemu-img check "$T/u.prl"
check "in-use: minivmm writes after repair" $M img convert -n -f raw -O parallels "$T/pat2.raw" "$T/u.prl"
check "in-use: ... qemu-img reads it" qemu-img compare -f raw "$T/pat2.raw" "$T/u.prl"
[ "$(od -An -tx4 -j44 -N4 "$T/u.prl" | tr -d ' ')" = 00000000 ] && pass "in-use: flag cleared on close" ||
	fail "in-use: flag cleared on close"

# Parallels resize: grows while the BAT fits before the data, refuses otherwise
qemu-img convert -f raw -O parallels "$T/pat.raw" "$T/g.prl"
check "parallels grow to 20G" $M img resize "$T/g.prl" 20G
[ "$(img_vsize "$T/g.prl")" = $((20 << 30)) ] && pass "parallels grow: qemu-img sees 20G" || fail "parallels grow: qemu-img sees 20G"
check "parallels grow: qemu-img check" qemu-img check "$T/g.prl"
qemu-img create -q -f raw "$T/g.raw" 20G && dd if="$T/pat.raw" of="$T/g.raw" conv=notrunc status=none
check "parallels grow: data kept, new part zero" qemu-img compare -f raw "$T/g.raw" "$T/g.prl"
check "parallels grow: qemu-img writes the new part" qemu-io -c 'write -P 7 19G 64k' "$T/g.prl"
$M img convert -O raw "$T/g.prl" "$T/g2.raw" &&
	[ "$(dd if="$T/g2.raw" bs=64k skip=$((19 << 14)) count=1 status=none | od -An -tx1 -v | tr -s ' \n' '\n' | sort -u | tr -d '\n')" = 07 ] &&
	pass "parallels grow: minivmm reads it" || fail "parallels grow: minivmm reads it"
rm -f "$T/g.raw" "$T/g2.raw"
$M img resize "$T/g.prl" 10T 2>"$T/err" && fail "parallels grow without BAT room refused" ||
	{ grep -q 'g.prl: no room for a BAT' "$T/err" && pass "parallels grow without BAT room refused" || fail "parallels grow without BAT room refused" "$(cat "$T/err")"; }
$M img resize --shrink "$T/g.prl" 1G 2>"$T/err" && fail "parallels shrink refused" ||
	{ grep -q 'g.prl: shrinking' "$T/err" && pass "parallels shrink refused" || fail "parallels shrink refused" "$(cat "$T/err")"; }
check "parallels: qemu-img check after refusals" qemu-img check "$T/g.prl"

# VHDX resize: grows within the BAT region (new part reads zero, even in a present last block
# whose tail holds stale bytes), refuses past it
python3 -c 'import sys,random; r=random.Random(5); sys.stdout.buffer.write(bytes(r.getrandbits(8) for _ in range(8912896)))' >"$T/v.raw" # 8.5 MiB: the last 1 MiB block is half used
qemu-img convert -f raw -O vhdx -o block_size=1M "$T/v.raw" "$T/v.vhdx"
python3 - "$T/v.vhdx" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
f.seek(192 << 10); r = f.read(64 << 10)
for i in range(struct.unpack_from("<I", r, 8)[0]):
    e = r[16 + 32 * i:48 + 32 * i]
    if e[:4] == bytes.fromhex("6677c22d"):
        bat = struct.unpack_from("<Q", e, 16)[0]
f.seek(bat + 8 * 8); e = struct.unpack("<Q", f.read(8))[0]
assert e & 7 == 6, e
f.seek((e & ~0xfffff) + (512 << 10)); f.write(b"STALE" * 1000)
PY
check "vhdx grow to 1G" $M img resize "$T/v.vhdx" 1G
[ "$(img_vsize "$T/v.vhdx")" = $((1 << 30)) ] && pass "vhdx grow: qemu-img sees 1G" || fail "vhdx grow: qemu-img sees 1G"
check "vhdx grow: qemu-img check" qemu-img check "$T/v.vhdx"
truncate -s 1G "$T/v.raw"
check "vhdx grow: data kept, new part zero (also the stale tail)" qemu-img compare -f raw "$T/v.raw" "$T/v.vhdx"
check "vhdx grow: qemu-img writes the new part" qemu-io -c 'write -P 9 1000M 64k' "$T/v.vhdx"
check "vhdx grow: qemu-img check after its write" qemu-img check "$T/v.vhdx"
$M img convert -O raw "$T/v.vhdx" "$T/v2.raw" &&
	[ "$(dd if="$T/v2.raw" bs=64k skip=16000 count=1 status=none | od -An -tx1 -v | tr -s ' \n' '\n' | sort -u | tr -d '\n')" = 09 ] &&
	pass "vhdx grow: minivmm reads it" || fail "vhdx grow: minivmm reads it"
rm -f "$T/v.raw" "$T/v2.raw"
$M img resize "$T/v.vhdx" 200G 2>"$T/err" && fail "vhdx grow past the BAT region refused" ||
	{ grep -q 'v.vhdx: the BAT region .* has no room' "$T/err" && pass "vhdx grow past the BAT region refused" || fail "vhdx grow past the BAT region refused" "$(cat "$T/err")"; }
$M img resize --shrink "$T/v.vhdx" 8M 2>"$T/err" && fail "vhdx shrink refused" ||
	{ grep -q 'v.vhdx: shrinking' "$T/err" && pass "vhdx shrink refused" || fail "vhdx shrink refused" "$(cat "$T/err")"; }
check "vhdx: qemu-img check after refusals" qemu-img check "$T/v.vhdx"

# Malformed images: one error line naming the file and the problem; nothing written (read-only
# and read-write opens).
qemu-img convert -f raw -O vhdx -o block_size=1M "$T/pat.raw" "$T/base.vhdx"
qemu-img convert -f raw -O parallels -o cluster_size=64K "$T/pat.raw" "$T/base.prl"
malformed() { # EXT WHAT EXPECTED-MESSAGE
	local img="$T/bad.$1" sum fmt=vhdx
	[ "$1" = prl ] && fmt=parallels
	cp "$T/base.$1" "$img"
	$CRAFT corrupt "$img" "$2"
	sum=$(md5sum <"$img")
	for mode in ro rw; do
		if [ $mode = ro ]; then $M img info -f $fmt "$img" >/dev/null 2>"$T/err"; else $M img check -f $fmt -r all "$img" >/dev/null 2>"$T/err"; fi
		rc=$?
		if [ $rc = 0 ] || [ $rc -ge 128 ]; then
			fail "malformed $2 ($mode): refused" "exit $rc"
		elif ! grep -q "bad.$1: .*$3" "$T/err" || [ "$(wc -l <"$T/err")" != 1 ]; then
			fail "malformed $2 ($mode): message" "$(cat "$T/err")"
		elif [ "$(md5sum <"$img")" != "$sum" ]; then
			fail "malformed $2 ($mode): file unchanged"
		else
			pass "malformed $2 ($mode)"
		fi
	done
}
malformed vhdx both-headers "no valid VHDX header"
malformed vhdx region-crc "no valid VHDX region table (checksum mismatch)"
malformed vhdx bat-beyond-eof "beyond the end of the file"
malformed vhdx bat-overlap "overlaps the VHDX metadata"
malformed vhdx bat-state "bad state 5"
malformed vhdx block-size "invalid VHDX block size"
malformed vhdx disk-size "invalid VHDX virtual disk size"
malformed vhdx log-huge "VHDX log .* misplaced or outside the file"
malformed prl prl-bat-beyond-eof "beyond the end of the file"
malformed prl prl-overlap "overlap"
malformed prl prl-cluster "invalid cluster size"
malformed prl prl-bat-entries "absurd"
malformed prl prl-magic "bad magic"
# one damaged header: the other (older, valid) one is used
cp "$T/base.vhdx" "$T/h.vhdx"
$CRAFT corrupt "$T/h.vhdx" header-crc
check "one bad header: the other is used" $M img compare -f raw "$T/pat.raw" "$T/h.vhdx"
# truncated files
for n in 100 70000 1048576 2500000; do
	head -c $n "$T/base.vhdx" >"$T/t.vhdx"
	$M img info -f vhdx "$T/t.vhdx" >/dev/null 2>"$T/err"
	rc=$?
	[ $rc != 0 ] && [ $rc -lt 128 ] && grep -q 't.vhdx: ' "$T/err" && pass "vhdx truncated to $n" ||
		fail "vhdx truncated to $n" "exit $rc $(cat "$T/err")"
done
for n in 10 64 100; do
	head -c $n "$T/base.prl" >"$T/t.prl"
	$M img info -f parallels "$T/t.prl" >/dev/null 2>"$T/err"
	rc=$?
	[ $rc != 0 ] && [ $rc -lt 128 ] && grep -q 't.prl: ' "$T/err" && pass "parallels truncated to $n" ||
		fail "parallels truncated to $n" "exit $rc $(cat "$T/err")"
done
img_done
