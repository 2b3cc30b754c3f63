#!/bin/bash
# `minivmm img` errors: one line on stderr "minivmm img: FILE: problem", nothing on stdout, exit 1
# (compare: 2), and no file left behind or changed.
set -u
cd "$(dirname "$0")/../.."
. tests/storage/img_test_lib.sh

# expect_error NAME WANT_RC NEEDLE COMMAND...: exit code, one stderr line naming NEEDLE, no stdout
expect_error() {
	local name=$1 want=$2 needle=$3; shift 3
	"$@" >"$T/out" 2>"$T/err"
	local rc=$? lines
	lines=$(wc -l <"$T/err")
	if [ $rc -ne "$want" ]; then
		fail "$name" "exit $rc, want $want: $(cat "$T/err")"
	elif [ "$lines" -ne 1 ]; then
		fail "$name" "$lines lines on stderr: $(cat "$T/err" | tr '\n' '|')"
	elif ! grep -q '^minivmm img: ' "$T/err" || ! grep -qF -- "$needle" "$T/err"; then
		fail "$name" "message does not name '$needle': $(cat "$T/err")"
	elif [ -s "$T/out" ]; then
		fail "$name" "unexpected stdout: $(head -c 200 "$T/out")"
	else
		pass "$name"
	fi
}

$M img create -f raw "$T/ok.raw" 1M >/dev/null


# hostile backing files: a FIFO (or a directory, a socket, a character device) is refused at once,
# never opened and waited on; `timeout` makes a regression fail instead of hang
mkfifo "$T/fifo"
mkdir "$T/adir"
$M img create -f qcow2 -b fifo -F raw "$T/on-fifo.qcow2" 1M >/dev/null
$M img create -f qcow2 -b adir -F raw "$T/on-dir.qcow2" 1M >/dev/null
$M img create -f qcow2 -b /dev/null -F raw "$T/on-null.qcow2" 1M >/dev/null
expect_error "info: FIFO backing file" 1 "$T/fifo: cannot open: not a regular file or block device" \
	timeout 10 $M img info --backing-chain "$T/on-fifo.qcow2"
expect_error "map: FIFO backing file" 1 "$T/fifo: cannot open: not a regular file" \
	timeout 10 $M img map "$T/on-fifo.qcow2"
expect_error "info: directory backing file" 1 "$T/adir" \
	timeout 10 $M img info --backing-chain "$T/on-dir.qcow2"
expect_error "info: char device backing file refused (a device node)" 1 \
	"$T/on-null.qcow2: refusing backing file /dev/null named by the image (a device node; allow it with --allow-backing-path /dev)" \
	timeout 10 $M img info --backing-chain "$T/on-null.qcow2"
expect_error "info: char device backing file, allowed, is still no disk" 1 "/dev/null: cannot open: not a regular file" \
	timeout 10 $M img info --allow-backing-path /dev --backing-chain "$T/on-null.qcow2"
expect_error "info: FIFO image" 1 "$T/fifo: cannot open: not a regular file" \
	timeout 10 $M img info "$T/fifo"
expect_error "create: size from a FIFO backing file" 1 "$T/fifo" \
	timeout 10 $M img create -f qcow2 -b fifo -F raw "$T/sized.qcow2"
[ -e "$T/sized.qcow2" ] && fail "create on FIFO backing leaves no file" || pass "create on FIFO backing leaves no file"

# missing files
expect_error "info: missing file" 1 "$T/none.img" $M img info "$T/none.img"
expect_error "map: missing file" 1 "$T/none.img" $M img map "$T/none.img"
expect_error "check: missing file" 1 "$T/none.img" $M img check "$T/none.img"
expect_error "convert: missing input" 1 "$T/none.img" $M img convert -O raw "$T/none.img" "$T/o.raw"
[ ! -e "$T/o.raw" ] && pass "convert: no output after a missing input" || fail "convert: no output after a missing input"
expect_error "resize: missing file" 1 "$T/none.img" $M img resize "$T/none.img" 1M
expect_error "compare: missing file is exit 2" 2 "$T/none.img" $M img compare "$T/ok.raw" "$T/none.img"
expect_error "rebase: missing file" 1 "$T/none.img" $M img rebase -u -b x "$T/none.img"

# bad sizes
for s in 12Q -1 -5M 1.5 0x10 99999999999999999999 9E 1KB "" " 1"; do
	expect_error "create: bad size '$s'" 1 "'$s'" $M img create -f raw "$T/bad.raw" "$s"
	[ ! -e "$T/bad.raw" ] || { fail "create: bad size '$s' leaves no file"; rm -f "$T/bad.raw"; }
done
expect_error "resize: bad size" 1 "'+junk'" $M img resize "$T/ok.raw" +junk
expect_error "resize: shrink below zero" 1 "$T/ok.raw" $M img resize --shrink "$T/ok.raw" -2M
expect_error "resize: shrink needs --shrink" 1 "--shrink" $M img resize "$T/ok.raw" 512k
expect_error "convert: bad -S" 1 "-S" $M img convert -S 100 -O raw "$T/ok.raw" "$T/o.raw"
expect_error "convert: bad -m" 1 "-m" $M img convert -m 0 -O raw "$T/ok.raw" "$T/o.raw"

# unknown formats and options
expect_error "create: unknown format" 1 "'nosuchfmt'" $M img create -f nosuchfmt "$T/u.img" 1M
[ ! -e "$T/u.img" ] && pass "create: unknown format leaves no file" || fail "create: unknown format leaves no file"
expect_error "info: unknown format" 1 "'nosuchfmt'" $M img info -f nosuchfmt "$T/ok.raw"
expect_error "convert: unknown output format" 1 "'nosuchfmt'" $M img convert -O nosuchfmt "$T/ok.raw" "$T/o.img"
expect_error "create: unknown -o option" 1 "'nosuchopt'" $M img create -f raw -o nosuchopt=1 "$T/o.raw" 1M
[ ! -e "$T/o.raw" ] && pass "create: unknown -o option leaves no file" || fail "create: unknown -o option leaves no file"
expect_error "convert: unknown -o option" 1 "'nosuchopt'" $M img convert -O raw -o nosuchopt=1 "$T/ok.raw" "$T/o.raw"
expect_error "create: unknown flag" 1 "-Z" $M img create -Z -f raw "$T/o.raw" 1M
expect_error "unknown sub-verb" 1 "frobnicate" $M img frobnicate
expect_error "create: existing file" 1 "$T/ok.raw" $M img create -f raw "$T/ok.raw" 1M
expect_error "info: bad --output" 1 "--output" $M img info --output=xml "$T/ok.raw"
expect_error "snapshot: no action" 1 "snapshot" $M img snapshot "$T/ok.raw"
expect_error "snapshot: raw has none" 1 "$T/ok.raw" $M img snapshot -c s1 "$T/ok.raw"
expect_error "clonemedium: bad --format" 1 "--format" $M img clonemedium "$T/ok.raw" "$T/c.img" --format FLOPPY

expect_error "create: -b without -F" 1 "-F" $M img create -f qcow2 -b "$T/ok.raw" "$T/nofmt.qcow2"
[ ! -e "$T/nofmt.qcow2" ] && pass "create: -b without -F leaves no file" || fail "create: -b without -F leaves no file"

# convert refuses to overwrite its own input
dd if=/dev/urandom of="$T/ok.raw" bs=64k count=2 conv=notrunc status=none
sum=$(md5sum <"$T/ok.raw")
expect_error "convert: output is the input" 1 "$T/ok.raw" $M img convert -O raw "$T/ok.raw" "$T/ok.raw"
[ "$(md5sum <"$T/ok.raw")" = "$sum" ] && pass "convert: input unchanged" || fail "convert: input unchanged"

# a malformed image: a qcow2 header with an absurd size is refused, file unchanged
if img_formats | grep -qx qcow2; then
	qemu-img create -f qcow2 "$T/bad.qcow2" 1M >/dev/null
	printf '\xff\xff\xff\xff\xff\xff\xff\xff' | dd of="$T/bad.qcow2" bs=1 seek=24 conv=notrunc status=none
	sum=$(md5sum <"$T/bad.qcow2")
	expect_error "info: corrupt qcow2 size" 1 "$T/bad.qcow2" $M img info "$T/bad.qcow2"
	expect_error "convert: corrupt qcow2" 1 "$T/bad.qcow2" $M img convert -O raw "$T/bad.qcow2" "$T/o2.raw"
	[ "$(md5sum <"$T/bad.qcow2")" = "$sum" ] && pass "corrupt qcow2 unchanged" || fail "corrupt qcow2 unchanged"
	head -c 100 "$T/bad.qcow2" >"$T/short.qcow2"
	expect_error "info: truncated qcow2" 1 "$T/short.qcow2" $M img info -f qcow2 "$T/short.qcow2"
	# A qcow2 file with a sparse tail of 9 TiB (found by fuzz_image as an ASan abort: check
	# asked for a counter per cluster of the file): refused with one line, not a crash.
	qemu-img create -q -f qcow2 "$T/tail.qcow2" 1M
	if truncate -s 9T "$T/tail.qcow2" 2>/dev/null; then
		expect_error "check: 9 TiB sparse qcow2 file" 1 "$T/tail.qcow2" $M img check "$T/tail.qcow2"
	fi
	rm -f "$T/tail.qcow2"
fi
img_done
