#!/bin/bash
# `minivmm img convert -l snapshot.id=ID,snapshot.name=NAME | -l ID_OR_NAME | -s ID_OR_NAME`
# copies an internal qcow2 snapshot, as qemu-img does (Debian's qemu-img is the oracle; it no
# longer has -s, so -s is compared with its -l).  Errors: one line, exit 1, no output file.
set -u
cd "$(dirname "$0")/../.."
. tests/storage/img_test_lib.sh

cd "$T"
# snapshot "one": 0x11 at [0, 1M); "two": also 0x22 at [512k, 1.5M) and zeroes at [3M, 3M+64k);
# the active layer then differs everywhere; snapshot "1" (ID 3) makes -l 1 ambiguous.
qemu-img create -q -f qcow2 s.qcow2 4M
qemu-io -c "write -P 0x11 0 1M" -c "write -P 0x44 3M 1M" s.qcow2 >/dev/null
qemu-img snapshot -c one s.qcow2
qemu-io -c "write -P 0x22 512k 1M" -c "write -z 3M 64k" s.qcow2 >/dev/null
qemu-img snapshot -c two s.qcow2
qemu-io -c "write -P 0x33 0 4M" s.qcow2 >/dev/null
qemu-img snapshot -c 1 s.qcow2
qemu-io -c "write -P 0x55 0 2M" s.qcow2 >/dev/null
before=$(md5sum <s.qcow2)

# same_as_qemu NAME QEMU_L_ARG MINIVMM_ARGS...: raw outputs byte-equal, qcow2 output compares equal
same_as_qemu() {
	local name=$1 ql=$2; shift 2
	rm -f q.raw m.raw m.qcow2
	qemu-img convert -O raw -l "$ql" s.qcow2 q.raw
	if ! $M img convert -O raw "$@" s.qcow2 m.raw 2>err; then
		fail "$name" "$(cat err)"
	elif ! cmp -s q.raw m.raw; then
		fail "$name" "raw output differs from qemu-img's"
	elif ! $M img convert -O qcow2 "$@" s.qcow2 m.qcow2 2>err; then
		fail "$name" "to qcow2: $(cat err)"
	elif ! qemu-img compare -q -f raw -F qcow2 q.raw m.qcow2; then
		fail "$name" "qcow2 output differs from qemu-img's"
	elif ! qemu-img check -q m.qcow2; then
		fail "$name" "qcow2 output not clean"
	else
		pass "$name"
	fi
}
same_as_qemu "-l snapshot.name=one" snapshot.name=one -l snapshot.name=one
same_as_qemu "-l one (a name)" one -l one
same_as_qemu "-l snapshot.id=2" snapshot.id=2 -l snapshot.id=2
same_as_qemu "-l snapshot.id=1,snapshot.name=one" snapshot.id=1,snapshot.name=one \
	-l snapshot.id=1,snapshot.name=one
same_as_qemu "-l 1: an ID before a name" 1 -l 1
same_as_qemu "-l snapshot.name=1" snapshot.name=1 -l snapshot.name=1
same_as_qemu "-s two (qemu-img's older form)" two -s two
same_as_qemu "-s 2" 2 -s 2
# the snapshots really differ from each other and from the active layer
qemu-img convert -O raw -l one s.qcow2 a.raw && qemu-img convert -O raw -l two s.qcow2 b.raw &&
	qemu-img convert -O raw s.qcow2 c.raw
! cmp -s a.raw b.raw && ! cmp -s b.raw c.raw && pass "the snapshots differ" || fail "the snapshots differ"
[ "$(md5sum <s.qcow2)" = "$before" ] && pass "the input is not modified" ||
	fail "the input is not modified"

# snapshots minivmm took, over a backing file, read the same by both tools
qemu-img create -q -f raw base.raw 2M
qemu-io -f raw -c "write -P 0x66 0 2M" base.raw >/dev/null
$M img create -f qcow2 -b base.raw -F raw ov.qcow2 >/dev/null
qemu-io -c "write -P 0x77 64k 64k" ov.qcow2 >/dev/null
$M img snapshot -c mine ov.qcow2
qemu-io -c "write -P 0x88 0 2M" ov.qcow2 >/dev/null
qemu-img convert -O raw -l mine ov.qcow2 q.raw
$M img convert -O raw -l snapshot.name=mine ov.qcow2 m.raw && cmp -s q.raw m.raw &&
	pass "minivmm's snapshot over a backing file" || fail "minivmm's snapshot over a backing file"

# a snapshot taken before the image grew: the output has the image's current size (as qemu-img)
cp s.qcow2 g.qcow2
qemu-img resize -q g.qcow2 8M
qemu-img convert -O raw -l one g.qcow2 q.raw
$M img convert -O raw -l one g.qcow2 m.raw && cmp -s q.raw m.raw &&
	pass "snapshot smaller than the grown image" || fail "snapshot smaller than the grown image"

# errors
expect_error() { # NAME NEEDLE OUT COMMAND...
	local name=$1 needle=$2 out=$3; shift 3
	rm -f "$out"
	"$@" >stdout 2>err
	local rc=$?
	if [ $rc -ne 1 ]; then
		fail "$name" "exit $rc, want 1: $(cat err)"
	elif [ "$(wc -l <err)" -ne 1 ] || ! grep -q '^minivmm img: ' err || ! grep -qF -- "$needle" err; then
		fail "$name" "want one line with '$needle': $(tr '\n' '|' <err)"
	elif [ -e "$out" ] || [ -s stdout ]; then
		fail "$name" "output file or stdout left"
	else
		pass "$name"
	fi
}
expect_error "unknown snapshot" "s.qcow2: no snapshot with ID or name 'nope'" x.raw \
	$M img convert -O raw -l nope s.qcow2 x.raw
expect_error "unknown snapshot name" "no snapshot named 'nope'" x.raw \
	$M img convert -O raw -l snapshot.name=nope s.qcow2 x.raw
expect_error "ID and name of different snapshots" "no snapshot with ID '1' and name 'two'" x.raw \
	$M img convert -O raw -l snapshot.id=1,snapshot.name=two s.qcow2 x.raw
expect_error "-s unknown" "no snapshot with ID or name 'nope'" x.qcow2 \
	$M img convert -O qcow2 -s nope s.qcow2 x.qcow2
expect_error "-l on raw" "format raw does not support internal snapshots" x.raw \
	$M img convert -f raw -O raw -l one base.raw x.raw
$M img create -f vdi v.vdi 1M >/dev/null
expect_error "-l on vdi" "format vdi does not support internal snapshots" x.raw \
	$M img convert -O raw -l one v.vdi x.raw
expect_error "-l with an unknown key" "unknown option 'snapshot.foo'" x.raw \
	$M img convert -O raw -l snapshot.foo=1 s.qcow2 x.raw
expect_error "-l and -s together" "give the snapshot once" x.raw \
	$M img convert -O raw -l snapshot.name=one -s two s.qcow2 x.raw
# qemu-img agrees that these fail with exit 1
qemu-img convert -O raw -l nope s.qcow2 x.raw 2>/dev/null
[ $? -eq 1 ] && pass "qemu-img: unknown snapshot is exit 1 too" || fail "qemu-img: unknown snapshot is exit 1 too"

img_done
