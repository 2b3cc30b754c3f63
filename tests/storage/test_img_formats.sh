#!/bin/bash
# `minivmm img` against qemu-img for every format this build can create: create, convert both
# ways, compare, sparse output, map, info, resize, check.  A format is covered when
# `minivmm img create -f FMT` works; the covered formats are printed.
set -u
cd "$(dirname "$0")/../.."
. tests/storage/img_test_lib.sh

formats=$(img_formats)
echo "formats covered: $(echo $formats)"
[ -n "$formats" ] || fail "some format can be created"

img_make_pattern "$T/src.pat"

# VHD sizes follow the CHS geometry unless force_size=on (as with qemu-img): exact sizes here.
fopts() { [ "$1" = vpc ] && echo "-o force_size=on"; }
# qemu-img has no check for vpc (and raw).
has_qcheck() { [ "$1" != raw ] && [ "$1" != vpc ]; }

for f in $formats; do
	# create: qemu-img check clean (raw has no check) and qemu-img agrees on the size
	check "$f: create" $M img create -f "$f" $(fopts "$f") "$T/new.$f" 100M
	if has_qcheck "$f"; then
		check "$f: qemu-img check of a new image" qemu-img check -f "$f" "$T/new.$f"
	fi
	[ "$(img_vsize "$T/new.$f")" = 104857600 ] && pass "$f: virtual size" ||
		fail "$f: virtual size" "qemu-img says $(img_vsize "$T/new.$f")"

	# raw -> FMT by minivmm, FMT -> raw by minivmm and by qemu-img
	check "$f: convert raw->$f" $M img convert -f raw -O "$f" $(fopts "$f") "$T/src.pat" "$T/m.$f"
	if has_qcheck "$f"; then
		check "$f: qemu-img check after convert" qemu-img check -f "$f" "$T/m.$f"
	fi
	check "$f: qemu-img compare src m.$f" qemu-img compare -f raw -F "$f" "$T/src.pat" "$T/m.$f"
	check "$f: minivmm compare src m.$f" $M img compare -f raw -F "$f" "$T/src.pat" "$T/m.$f"
	check "$f: convert $f->raw" $M img convert -f "$f" -O raw "$T/m.$f" "$T/back.raw"
	check "$f: round trip is byte-identical" cmp "$T/src.pat" "$T/back.raw"
	check "$f: qemu-img reads minivmm's $f" qemu-img convert -f "$f" -O raw "$T/m.$f" "$T/q.raw"
	check "$f: ... byte-identical" cmp "$T/src.pat" "$T/q.raw"

	# qemu-img's FMT read by minivmm
	check "$f: qemu-img convert raw->$f" qemu-img convert -f raw -O "$f" $(fopts "$f") "$T/src.pat" "$T/q.$f"
	check "$f: minivmm reads qemu-img's $f" $M img convert -f "$f" -O raw "$T/q.$f" "$T/mq.raw"
	check "$f: ... byte-identical" cmp "$T/src.pat" "$T/mq.raw"
	check "$f: minivmm compare qemu's and minivmm's" $M img compare "$T/q.$f" "$T/m.$f"

	# map agrees with qemu-img on data vs zero
	$M img map --output=json -f "$f" "$T/m.$f" >"$T/mm.json" 2>"$T/err" &&
		qemu-img map --output=json -f "$f" "$T/m.$f" >"$T/qm.json" &&
		img_map_norm "$T/mm.json" >"$T/mm.txt" && img_map_norm "$T/qm.json" >"$T/qm.txt" &&
		cmp -s "$T/mm.txt" "$T/qm.txt" && pass "$f: map agrees with qemu-img" ||
		fail "$f: map agrees with qemu-img" "$(diff "$T/mm.txt" "$T/qm.txt" | head -5 | tr '\n' ' ')"

	# info --output=json parses and has the fields
	if $M img info --output=json "$T/m.$f" >"$T/info.json" &&
		python3 -m json.tool "$T/info.json" >/dev/null &&
		python3 - "$T/info.json" "$f" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("virtual-size", "filename", "format", "actual-size", "dirty-flag"):
    assert k in d, k
assert d["format"] == sys.argv[2] and d["virtual-size"] == 8 << 20, d
PY
	then pass "$f: info --output=json"; else fail "$f: info --output=json"; fi
	# human info names the virtual size as qemu-img does
	$M img info "$T/m.$f" | grep -qx 'virtual size: 8 MiB (8388608 bytes)' &&
		pass "$f: info human" || fail "$f: info human"

	# sparse output: the 8 MiB pattern holds well under 2 MiB of data
	used=$(du -k "$T/m.$f" | cut -f1)
	[ "$used" -lt 2048 ] && pass "$f: convert output is sparse (${used} KiB)" ||
		fail "$f: convert output is sparse" "${used} KiB"
	if [ "$f" = raw ]; then
		check "$f: convert -S 0 is fully allocated" $M img convert -S 0 -O raw "$T/src.pat" "$T/full.raw"
		used=$(du -k "$T/full.raw" | cut -f1)
		[ "$used" -ge 8192 ] && pass "$f: -S 0 allocates every block" ||
			fail "$f: -S 0 allocates every block" "${used} KiB"
		check "$f: -S 0 output identical" cmp "$T/src.pat" "$T/full.raw"
		# resize --preallocation allocates the new part (falloc, full) or not (off)
		for mode in off falloc full; do
			truncate -s 1M "$T/pre.raw"
			check "$f: resize --preallocation=$mode" $M img resize --preallocation=$mode "$T/pre.raw" +8M
			used=$(du -k "$T/pre.raw" | cut -f1)
			if [ $mode = off ]; then
				[ "$used" -lt 1024 ] && pass "$f: preallocation=off stays thin" || fail "$f: preallocation=off stays thin" "$used KiB"
			else
				[ "$used" -ge 8192 ] && pass "$f: preallocation=$mode allocates" || fail "$f: preallocation=$mode allocates" "$used KiB"
			fi
			[ "$(stat -c %s "$T/pre.raw")" = $((9 << 20)) ] && pass "$f: preallocation=$mode size" || fail "$f: preallocation=$mode size"
		done
		check "$f: --shrink with preallocation refused" sh -c "! $M img resize --shrink --preallocation=full '$T/pre.raw' 1M 2>/dev/null"
		# a zero-filled raw file with every block allocated converts to a sparse one
		head -c 4M /dev/zero >"$T/zeroes.raw"
		check "$f: convert of written zeroes" $M img convert -O raw "$T/zeroes.raw" "$T/sz.raw"
		used=$(du -k "$T/sz.raw" | cut -f1)
		[ "$used" -lt 64 ] && pass "$f: -S default skips written zeroes" ||
			fail "$f: -S default skips written zeroes" "${used} KiB"
	fi

	# odd sizes are rounded up to whole sectors, as qemu-img does (qemu would truncate them)
	check "$f: create odd size" $M img create -f "$f" "$T/odd.$f" 1000001
	[ "$(img_vsize "$T/odd.$f")" = 1000448 ] && pass "$f: odd size rounded up" ||
		fail "$f: odd size rounded up" "qemu-img says $(img_vsize "$T/odd.$f")"
	head -c 1000001 "$T/src.pat" >"$T/odd.in"
	check "$f: convert odd-sized raw" $M img convert -f raw -O "$f" "$T/odd.in" "$T/oddc.$f"
	check "$f: ... qemu-img compare" qemu-img compare -f raw -F "$f" "$T/odd.in" "$T/oddc.$f"

	# several requests in flight give the same image as one
	check "$f: convert -m 1" $M img convert -m 1 -O "$f" $(fopts "$f") "$T/src.pat" "$T/m1.$f"
	check "$f: convert -m 16" $M img convert -m 16 -O "$f" $(fopts "$f") "$T/src.pat" "$T/m16.$f"
	check "$f: -m 1 and -m 16 agree" qemu-img compare "$T/m1.$f" "$T/m16.$f"

	# resize then qemu-img info
	if $M img resize "$T/m.$f" +3M >/dev/null 2>"$T/err"; then
		[ "$(img_vsize "$T/m.$f")" = $(((8 + 3) << 20)) ] && pass "$f: resize +3M" ||
			fail "$f: resize +3M" "$(img_vsize "$T/m.$f")"
		check "$f: data kept after grow" qemu-img compare "$T/src.pat" "$T/m.$f"
		if has_qcheck "$f"; then
			check "$f: qemu-img check after resize" qemu-img check "$T/m.$f"
		fi
	elif grep -q 'does not support resizing' "$T/err"; then
		echo "note: $f has no resize"
	else
		fail "$f: resize +3M" "$(cat "$T/err")"
	fi

	# check on a clean image: 0, or 63 when the format has no check (as qemu-img)
	$M img check "$T/m.$f" >"$T/out" 2>&1
	rc=$?
	qemu-img check "$T/m.$f" >/dev/null 2>&1
	qrc=$?
	[ $rc = $qrc ] && pass "$f: check exit code $rc as qemu-img" ||
		fail "$f: check exit code" "minivmm $rc, qemu-img $qrc"
	if [ $rc = 0 ]; then
		grep -qx 'No errors were found on the image.' "$T/out" && pass "$f: check message" ||
			fail "$f: check message" "$(cat "$T/out")"
		check "$f: check --output=json parses" sh -c "$M img check --output=json '$T/m.$f' | python3 -m json.tool"
	fi
	rm -f "$T"/*."$f" "$T"/back.raw "$T"/q.raw "$T"/mq.raw
done
img_done
