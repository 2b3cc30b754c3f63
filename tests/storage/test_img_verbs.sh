#!/bin/bash
# `minivmm img` verbs beyond create/convert: compare exit codes and offsets (against qemu-img),
# rebase safe and unsafe, backing chains in info/map, snapshots, convert -c, the VirtualBox
# spellings clonemedium/convertfromraw, progress output, bench.
set -u
cd "$(dirname "$0")/../.."
. tests/storage/img_test_lib.sh

formats=$(img_formats)
has() { echo "$formats" | grep -qx "$1"; }
img_make_pattern "$T/src.pat"

# ---- compare: exit codes and the mismatch offset agree with qemu-img ----
cp "$T/src.pat" "$T/a.raw"
cp "$T/src.pat" "$T/b.raw"
$M img compare "$T/a.raw" "$T/b.raw" >"$T/out"; rc=$?
[ $rc = 0 ] && grep -qx 'Images are identical.' "$T/out" && pass "compare: identical is 0" || fail "compare: identical is 0" "rc $rc"
for off in 0 511 512 4097 3000005 8388607; do
	cp "$T/src.pat" "$T/b.raw"
	printf '\x5a\xa5' | dd of="$T/b.raw" bs=1 seek=$off count=1 conv=notrunc status=none
	$M img compare -f raw -F raw "$T/a.raw" "$T/b.raw" >"$T/m.out"; rc=$?
	qemu-img compare -f raw -F raw "$T/a.raw" "$T/b.raw" >"$T/q.out"; qrc=$?
	[ $rc = 1 ] && [ $qrc = 1 ] && cmp -s "$T/m.out" "$T/q.out" && pass "compare: change at $off: $(cat "$T/m.out")" ||
		fail "compare: change at $off" "minivmm $rc '$(cat "$T/m.out")', qemu-img $qrc '$(cat "$T/q.out")'"
done
# a change inside a hole of the other image (data against zero: byte offsets)
truncate -s 8M "$T/z.raw"
cp "$T/z.raw" "$T/z2.raw"
printf 'x' | dd of="$T/z2.raw" bs=1 seek=5000003 conv=notrunc status=none
$M img compare "$T/z.raw" "$T/z2.raw" >"$T/m.out"; rc=$?
qemu-img compare "$T/z.raw" "$T/z2.raw" >"$T/q.out"
[ $rc = 1 ] && cmp -s "$T/m.out" "$T/q.out" && pass "compare: data against a hole" ||
	fail "compare: data against a hole" "$(cat "$T/m.out") vs $(cat "$T/q.out")"
# different sizes: the extra part compares against zeroes
cp "$T/src.pat" "$T/big.raw"
truncate -s 9M "$T/big.raw"
$M img compare "$T/a.raw" "$T/big.raw" >"$T/out"; rc=$?
[ $rc = 0 ] && pass "compare: bigger with zero tail is identical" || fail "compare: bigger with zero tail is identical" "rc $rc"
$M img compare -s "$T/a.raw" "$T/big.raw" >"$T/out"; rc=$?
[ $rc = 1 ] && grep -q 'Image size mismatch' "$T/out" && pass "compare -s: size mismatch is 1" || fail "compare -s: size mismatch is 1" "rc $rc"
printf 'y' | dd of="$T/big.raw" bs=1 seek=$((9 * 1048576 - 10)) conv=notrunc status=none
$M img compare "$T/a.raw" "$T/big.raw" >"$T/m.out"; rc=$?
qemu-img compare "$T/a.raw" "$T/big.raw" >"$T/q.out"
[ $rc = 1 ] && cmp -s "$T/m.out" "$T/q.out" && pass "compare: data in the extra part" ||
	fail "compare: data in the extra part" "$(cat "$T/m.out" | tr '\n' ' ') vs $(cat "$T/q.out" | tr '\n' ' ')"

# ---- backing chains, rebase ----
if has qcow2; then
	cp "$T/src.pat" "$T/base1.raw"
	check "chain: create overlay without size" $M img create -f qcow2 -b base1.raw -F raw "$T/top.qcow2"
	[ "$(img_vsize "$T/top.qcow2")" = 8388608 ] && pass "chain: overlay takes the backing size" || fail "chain: overlay takes the backing size"
	check "chain: qemu-img check overlay" qemu-img check "$T/top.qcow2"
	check "chain: qemu-io writes into the overlay" qemu-io -c 'write -P 0x77 1M 64k' -c 'write -z 2M 64k' "$T/top.qcow2"
	$M img map --output=json "$T/top.qcow2" >"$T/mm.json" && qemu-img map --output=json "$T/top.qcow2" >"$T/qm.json"
	cmp -s "$T/mm.json" "$T/qm.json" && pass "chain: map --output=json identical to qemu-img" ||
		fail "chain: map --output=json identical to qemu-img" "$(diff "$T/mm.json" "$T/qm.json" | head -4 | tr '\n' ' ')"
	$M img info --output=json --backing-chain "$T/top.qcow2" >"$T/chain.json"
	python3 - "$T/chain.json" <<'PY' && pass "chain: info --backing-chain json" || fail "chain: info --backing-chain json"
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d) == 2 and d[0]["backing-filename"] == "base1.raw" and d[0]["backing-filename-format"] == "raw", d
assert d[0]["full-backing-filename"].endswith("/base1.raw") and d[1]["format"] == "raw", d
PY
	qemu-img convert -O raw "$T/top.qcow2" "$T/view.raw"
	check "chain: convert flattens the chain" $M img convert -O raw "$T/top.qcow2" "$T/flat.raw"
	check "chain: ... as qemu-img does" cmp "$T/view.raw" "$T/flat.raw"

	# safe rebase onto a different base keeps the guest's view
	python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * 7) & 255 for i in range(8 << 20)))' >"$T/base2.raw"
	check "rebase: safe" $M img rebase -b base2.raw -F raw "$T/top.qcow2"
	check "rebase: qemu-img check" qemu-img check "$T/top.qcow2"
	qemu-img info --output=json "$T/top.qcow2" | grep -q '"backing-filename": "base2.raw"' &&
		pass "rebase: header names the new base" || fail "rebase: header names the new base"
	check "rebase: guest view unchanged" qemu-img compare "$T/view.raw" "$T/top.qcow2"
	# unsafe rebase only rewrites the header
	cp "$T/base2.raw" "$T/base3.raw"
	check "rebase -u" $M img rebase -u -b base3.raw -F raw "$T/top.qcow2"
	qemu-img info --output=json "$T/top.qcow2" | grep -q '"backing-filename": "base3.raw"' &&
		pass "rebase -u: header names base3" || fail "rebase -u: header names base3"
	check "rebase -u: same content (identical bases)" qemu-img compare "$T/view.raw" "$T/top.qcow2"
	# removing the backing file copies everything in
	check "rebase -b '': standalone" $M img rebase -b '' "$T/top.qcow2"
	qemu-img info "$T/top.qcow2" | grep -q 'backing file' && fail "rebase -b '': no backing left" || pass "rebase -b '': no backing left"
	check "rebase -b '': content kept" qemu-img compare "$T/view.raw" "$T/top.qcow2"

	# ---- convert -B: only the top image's allocations, over a new backing file ----
	cp "$T/base2.raw" "$T/base2copy.raw"
	qemu-img create -f qcow2 -b base2.raw -F raw "$T/top2.qcow2" >/dev/null
	check "convert -B: qemu-io writes" qemu-io -c 'write -P 0x33 64k 128k' -c 'write -z 1M 64k' "$T/top2.qcow2"
	check "convert -B" $M img convert -O qcow2 -B base2copy.raw -F raw "$T/top2.qcow2" "$T/new2.qcow2"
	check "convert -B: qemu-img check" qemu-img check "$T/new2.qcow2"
	check "convert -B: same guest view" qemu-img compare "$T/top2.qcow2" "$T/new2.qcow2"
	qemu-img info --output=json "$T/new2.qcow2" | grep -q '"backing-filename": "base2copy.raw"' &&
		pass "convert -B: backing recorded" || fail "convert -B: backing recorded"
	n=$(qemu-img map --output=json "$T/new2.qcow2" | grep -c '"depth": 0, "present": true')
	[ "$n" -ge 1 ] && [ "$n" -le 3 ] && pass "convert -B: only the top's ranges copied" || fail "convert -B: only the top's ranges" "$n"
	expect_b=$($M img convert -O qcow2 -B base2.raw "$T/top2.qcow2" "$T/nob.qcow2" 2>&1)
	[ $? = 1 ] && echo "$expect_b" | grep -q -- '-F' && pass "convert -B without -F refused" || fail "convert -B without -F refused" "$expect_b"

	# ---- commit: the overlay's data goes into its backing file (grown to the overlay's size) ----
	head -c 4M /dev/urandom >"$T/cbase.raw"
	qemu-img create -f qcow2 -b cbase.raw -F raw "$T/ctop.qcow2" 8M >/dev/null
	qemu-io -c 'write -P 0x33 64k 128k' -c 'write -z 1M 64k' -c 'write -P 0x44 6M 64k' "$T/ctop.qcow2" >/dev/null
	qemu-img convert -O raw "$T/ctop.qcow2" "$T/cview.raw"
	topsum=$(md5sum <"$T/ctop.qcow2")
	check "commit" $M img commit "$T/ctop.qcow2"
	check "commit: the base now holds the guest view" qemu-img compare -f raw -F raw "$T/cview.raw" "$T/cbase.raw"
	check "commit: the overlay still reads the same" qemu-img compare "$T/cview.raw" "$T/ctop.qcow2"
	[ "$(md5sum <"$T/ctop.qcow2")" = "$topsum" ] && pass "commit: overlay file untouched" || fail "commit: overlay file untouched"
	expect_c=$($M img commit "$T/cbase.raw" 2>&1)
	[ $? = 1 ] && echo "$expect_c" | grep -q 'no backing file' && pass "commit: no backing refused" || fail "commit: no backing refused" "$expect_c"

	# ---- snapshots: qemu-img's are listed; ours (when the driver can) are seen by qemu-img ----
	qemu-img create -f qcow2 "$T/s.qcow2" 1M >/dev/null
	qemu-img snapshot -c first "$T/s.qcow2"
	$M img snapshot -l "$T/s.qcow2" >"$T/m.out"
	qemu-img snapshot -l "$T/s.qcow2" >"$T/q.out"
	cmp -s "$T/m.out" "$T/q.out" && pass "snapshot -l: same table as qemu-img" ||
		fail "snapshot -l: same table as qemu-img" "$(diff "$T/m.out" "$T/q.out" | tr '\n' ' ')"
	if $M img snapshot -c second "$T/s.qcow2" 2>"$T/err"; then
		qemu-img snapshot -l "$T/s.qcow2" | grep -q ' second ' && pass "snapshot -c: seen by qemu-img" || fail "snapshot -c: seen by qemu-img"
		# -a brings back the content at the time of the snapshot
		qemu-io -c 'write -P 0x61 0 128k' "$T/s.qcow2" >/dev/null
		qemu-img convert -O raw "$T/s.qcow2" "$T/s_before.raw"
		check "snapshot -c third" $M img snapshot -c third "$T/s.qcow2"
		qemu-io -c 'write -P 0x62 64k 128k' "$T/s.qcow2" >/dev/null
		check "snapshot -a third" $M img snapshot -a third "$T/s.qcow2"
		check "snapshot -a: content restored" qemu-img compare -f raw "$T/s_before.raw" "$T/s.qcow2"
		check "snapshot -d" $M img snapshot -d second "$T/s.qcow2"
		qemu-img snapshot -l "$T/s.qcow2" | grep -q ' second ' && fail "snapshot -d: gone for qemu-img" || pass "snapshot -d: gone for qemu-img"
		check "snapshot: qemu-img check" qemu-img check "$T/s.qcow2"
		$M img snapshot -a nosuch "$T/s.qcow2" 2>"$T/err"; rc=$?
		[ $rc = 1 ] && [ "$(wc -l <"$T/err")" = 1 ] && pass "snapshot -a unknown: one-line error" || fail "snapshot -a unknown" "rc $rc $(cat "$T/err")"
	else
		grep -q 'does not support internal snapshots' "$T/err" && echo "note: qcow2 driver cannot create snapshots yet" ||
			fail "snapshot -c" "$(cat "$T/err")"
	fi
	$M img info "$T/s.qcow2" | grep -q '^Snapshot list:' && pass "info lists snapshots" || fail "info lists snapshots"
	# qcow2 info, human and JSON, says what qemu-img says (on an image qemu-img made, so that the
	# snapshot's icount, which block_snapshot does not carry, is qemu's 0)
	qemu-img create -f qcow2 "$T/i.qcow2" 3M >/dev/null
	qemu-io -c 'write -P 1 1M 64k' "$T/i.qcow2" >/dev/null
	qemu-img snapshot -c snap1 "$T/i.qcow2"
	(cd "$T" && $M img info i.qcow2 >m.info && qemu-img info i.qcow2 >q.info) &&
		cmp -s "$T/m.info" "$T/q.info" && pass "info: human text identical to qemu-img's" ||
		fail "info: human text identical to qemu-img's" "$(diff "$T/m.info" "$T/q.info" | head -6 | tr '\n' '|')"
	(cd "$T" && $M img info --output=json i.qcow2 >m.json && qemu-img info --output=json i.qcow2 >q.json)
	python3 - "$T/m.json" "$T/q.json" <<'PY' && pass "info: JSON equal to qemu-img's" || fail "info: JSON equal to qemu-img's"
import json, sys
m, q = (json.load(open(f)) for f in sys.argv[1:])
diff = [k for k in set(m) | set(q) if m.get(k) != q.get(k)]
if diff:
    print("differs:", diff, file=sys.stderr)
    sys.exit(1)
PY

	# ---- check exit codes on damaged images, as qemu-img's (0 clean, 2 corrupt, 3 leaks) ----
	# a 1 MiB qcow2 with one data cluster: clusters 0-5 in use, refcount block at 0x20000
	qemu-img create -f qcow2 "$T/l.qcow2" 1M >/dev/null
	qemu-io -c 'write -P 1 0 64k' "$T/l.qcow2" >/dev/null
	cp "$T/l.qcow2" "$T/leak.qcow2"
	truncate -s $((7 * 65536)) "$T/leak.qcow2"
	printf '\x00\x01' | dd of="$T/leak.qcow2" bs=1 seek=$((0x20000 + 12)) conv=notrunc status=none
	cp "$T/l.qcow2" "$T/cor.qcow2"
	printf '\x00\x00' | dd of="$T/cor.qcow2" bs=1 seek=$((0x20000 + 10)) conv=notrunc status=none
	for img in leak cor; do
		qemu-img check "$T/$img.qcow2" >/dev/null 2>&1; qrc=$?
		sum=$(md5sum <"$T/$img.qcow2")
		$M img check "$T/$img.qcow2" >"$T/out" 2>&1; rc=$?
		[ $rc = $qrc ] && [ $rc != 0 ] && pass "check: $img exit $rc as qemu-img" || fail "check: $img exit code" "minivmm $rc, qemu-img $qrc"
		[ "$(md5sum <"$T/$img.qcow2")" = "$sum" ] && pass "check: $img left unchanged without -r" || fail "check: $img left unchanged without -r"
	done
	grep -q 'errors were found on the image' "$T/out" && pass "check: corruption message" || fail "check: corruption message"
	$M img check --output=json "$T/leak.qcow2" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["leaks"] >= 1' &&
		pass "check --output=json: leaks" || fail "check --output=json: leaks"
	$M img check -r leaks "$T/leak.qcow2" >"$T/out" 2>&1; rc=$?
	[ $rc = 0 ] && grep -q 'repaired' "$T/out" && pass "check -r leaks: repaired, exit 0" || fail "check -r leaks" "rc $rc"
	check "check -r leaks: qemu-img check clean" qemu-img check "$T/leak.qcow2"
	$M img check -r all "$T/cor.qcow2" >/dev/null 2>&1; rc=$?
	[ $rc = 0 ] && pass "check -r all: exit 0" || fail "check -r all" "rc $rc"
	check "check -r all: qemu-img check clean" qemu-img check "$T/cor.qcow2"
	check "check -r all: data kept" qemu-img compare "$T/l.qcow2" "$T/cor.qcow2"

	# ---- convert -c ----
	if $M img convert -c -O qcow2 "$T/src.pat" "$T/c.qcow2" 2>"$T/err"; then
		check "convert -c: qemu-img check" qemu-img check "$T/c.qcow2"
		check "convert -c: content" qemu-img compare "$T/src.pat" "$T/c.qcow2"
		qemu-img check "$T/c.qcow2" | grep -q '[1-9][0-9.]*% compressed' && pass "convert -c: clusters compressed" ||
			fail "convert -c: clusters compressed"
		check "convert -c zstd 4k clusters" $M img convert -c -m 4 -O qcow2 -o compression_type=zstd,cluster_size=4k "$T/src.pat" "$T/cz.qcow2"
		check "convert -c zstd: qemu-img check" qemu-img check "$T/cz.qcow2"
		check "convert -c zstd: content" qemu-img compare "$T/src.pat" "$T/cz.qcow2"
		check "convert -c: minivmm reads it back" $M img convert -O raw "$T/cz.qcow2" "$T/cz.raw"
		check "convert -c: ... byte-identical" cmp "$T/src.pat" "$T/cz.raw"
	else
		grep -q 'compress' "$T/err" && echo "note: qcow2 driver has no compressed writes yet" ||
			fail "convert -c" "$(cat "$T/err")"
	fi
fi
expect_c=$($M img convert -c -O raw "$T/src.pat" "$T/craw.raw" 2>&1 >/dev/null)
[ $? = 1 ] && echo "$expect_c" | grep -q "does not support compression" && pass "convert -c: raw refused" || fail "convert -c: raw refused" "$expect_c"

# ---- convert -n: an existing output, whose old content must not show through ----
python3 -c 'import sys; sys.stdout.buffer.write(b"\xff" * (8 << 20))' >"$T/full.raw"
check "convert -n onto raw" $M img convert -n -O raw "$T/src.pat" "$T/full.raw"
check "convert -n: identical (zeroes written over old data)" cmp "$T/src.pat" "$T/full.raw"
if has qcow2; then
	qemu-img create -f qcow2 "$T/old.qcow2" 8M >/dev/null
	qemu-io -c 'write -P 0xee 0 8M' "$T/old.qcow2" >/dev/null
	check "convert -n onto qcow2" $M img convert -n -O qcow2 "$T/src.pat" "$T/old.qcow2"
	check "convert -n qcow2: identical" qemu-img compare -f raw "$T/src.pat" "$T/old.qcow2"
	check "convert -n qcow2: qemu-img check" qemu-img check "$T/old.qcow2"
fi
truncate -s 1M "$T/small.raw"
expect_n=$($M img convert -n -O raw "$T/src.pat" "$T/small.raw" 2>&1)
[ $? = 1 ] && echo "$expect_n" | grep -q 'smaller than the input' && pass "convert -n: smaller output refused" || fail "convert -n: smaller output refused" "$expect_n"
expect_n=$($M img convert -n -O raw "$T/full.raw" "$T/full.raw" 2>&1)
[ $? = 1 ] && echo "$expect_n" | grep -q 'is the input' && pass "convert -n: onto itself refused" || fail "convert -n: onto itself refused" "$expect_n"

# ---- VirtualBox spellings ----
check "convertfromraw --format RAW" $M img convertfromraw "$T/src.pat" "$T/vb.raw" --format RAW
check "convertfromraw: identical" cmp "$T/src.pat" "$T/vb.raw"
check "clonemedium --format raw" $M img clonemedium "$T/vb.raw" "$T/vb2.raw" --format raw
check "clonemedium: identical" cmp "$T/src.pat" "$T/vb2.raw"
for f in qcow2 vdi vmdk vpc; do
	has "$f" || continue
	upper=$(echo "$f" | tr a-z A-Z); [ "$f" = vpc ] && upper=VHD
	check "convertfromraw --format $upper" $M img convertfromraw "$T/src.pat" "$T/vb.$f" --format "$upper"
	check "convertfromraw $upper: content" qemu-img compare -f raw -F "$f" "$T/src.pat" "$T/vb.$f"
	check "clonemedium $upper" $M img clonemedium "$T/vb.$f" "$T/vb2.$f" --format "$upper"
	check "clonemedium $upper: content" qemu-img compare -F "$f" -f "$f" "$T/vb.$f" "$T/vb2.$f"
	if [ "$f" = vdi ]; then
		# the image UUID sits at 0x188 in the VDI header
		u1=$(od -A n -t x1 -j 392 -N 16 "$T/vb.vdi" | tr -d ' \n')
		u2=$(od -A n -t x1 -j 392 -N 16 "$T/vb2.vdi" | tr -d ' \n')
		[ -n "$u1" ] && [ "$u1" != "$u2" ] && [ "$u2" != 00000000000000000000000000000000 ] &&
			pass "clonemedium: the copy has its own UUID" || fail "clonemedium: new UUID" "'$u1' '$u2'"
	fi
done
if has vdi; then
	check "convertfromraw: VDI by default" $M img convertfromraw "$T/src.pat" "$T/def.img"
	qemu-img info "$T/def.img" | grep -q 'file format: vdi' && pass "convertfromraw: default format is VDI" || fail "convertfromraw: default format is VDI"
fi

# ---- -p prints nothing when stdout is not a terminal ----
$M img convert -p -O raw "$T/src.pat" "$T/p.raw" >"$T/out" 2>&1
[ $? = 0 ] && [ ! -s "$T/out" ] && pass "convert -p: silent without a terminal" || fail "convert -p: silent without a terminal"

# ---- bench: reads and writes land where they should ----
truncate -s 4M "$T/bench.raw"
$M img bench -w -c 64 -d 4 -s 4k --pattern=171 "$T/bench.raw" >"$T/out"; rc=$?
[ $rc = 0 ] && grep -q '^Sending 64 write requests, 4096 bytes each, 4 in parallel' "$T/out" && grep -q '^Run completed in' "$T/out" &&
	pass "bench -w: output as qemu-img bench" || fail "bench -w" "$(cat "$T/out")"
python3 - "$T/bench.raw" <<'PY' && pass "bench -w: wrote 64 x 4 KiB of 0xab then zeroes" || fail "bench -w: content"
import sys
d = open(sys.argv[1], "rb").read()
assert d[:256 << 10] == b"\xab" * (256 << 10) and d[256 << 10:] == bytes(len(d) - (256 << 10))
PY
check "bench: reads" $M img bench -c 1000 -d 8 -s 64k "$T/bench.raw"
check "bench: random reads" $M img bench --random -c 1000 -d 8 -s 4k "$T/bench.raw"
img_done
