#!/bin/bash
# `minivmm img check` opens the whole backing chain, as `info --backing-chain` does: a missing
# backing file, one that is the image itself, a loop or a chain deeper than 64 fails with one line
# and exit 1 (qemu-img check's exit code when it cannot open the backing file); it is never
# reported clean.  (qemu-img 7.2 itself recurses without end on a loop: it is not run on one.)
set -u
cd "$(dirname "$0")/../.."
. tests/storage/img_test_lib.sh

# check_fails NAME NEEDLE FILE [ARGS...]: exit 1, one stderr line naming NEEDLE, nothing on stdout
check_fails() {
	local name=$1 needle=$2; shift 2
	timeout 20 $M img check "$@" >"$T/out" 2>"$T/err"
	local rc=$?
	if [ $rc -ne 1 ]; then
		fail "$name" "exit $rc, want 1: $(cat "$T/out" "$T/err" | tr '\n' '|')"
	elif [ "$(wc -l <"$T/err")" -ne 1 ] || ! grep -q '^minivmm img: ' "$T/err"; then
		fail "$name" "not one error line: $(tr '\n' '|' <"$T/err")"
	elif ! grep -qF -- "$needle" "$T/err"; then
		fail "$name" "message does not say '$needle': $(cat "$T/err")"
	elif [ -s "$T/out" ]; then
		fail "$name" "unexpected stdout: $(head -c 200 "$T/out")"
	else
		pass "$name"
	fi
}

cd "$T"
# qcow2: missing backing file, and qemu-img agrees that the check fails with exit 1
qemu-img create -q -f qcow2 -u -b nope.qcow2 -F qcow2 missing.qcow2 1M
check_fails "qcow2: missing backing file" "nope.qcow2: cannot open: No such file" missing.qcow2
qemu-img check missing.qcow2 >/dev/null 2>&1
[ $? -eq 1 ] && pass "qemu-img check: missing backing file is exit 1 too" ||
	fail "qemu-img check: missing backing file is exit 1 too"
cp missing.qcow2 missing.copy
check_fails "qcow2: check -r all, missing backing file" "nope.qcow2" -r all missing.qcow2
cmp -s missing.qcow2 missing.copy && pass "check -r all leaves the image alone" ||
	fail "check -r all leaves the image alone"
check_fails "qcow2: --output=json, missing backing file" "nope.qcow2" --output=json missing.qcow2

# qcow2: the image is its own backing file (by name, and through a symlink), and a two-image loop
qemu-img create -q -f qcow2 -u -b self.qcow2 -F qcow2 self.tmp 1M && mv self.tmp self.qcow2
check_fails "qcow2: backing file is the image itself" "is the image itself" self.qcow2
qemu-img create -q -f qcow2 -u -b link.qcow2 -F qcow2 target.qcow2 1M
ln -s target.qcow2 link.qcow2
check_fails "qcow2: backing file is itself through a symlink" "is the image itself" target.qcow2
qemu-img create -q -f qcow2 -u -b b.qcow2 -F qcow2 a.qcow2 1M
qemu-img create -q -f qcow2 -u -b a.qcow2 -F qcow2 b.qcow2 1M
check_fails "qcow2: two-image loop" "b.qcow2: backing chain loop: its backing file a.qcow2" a.qcow2

# a chain of 64 images is the limit; 65 is refused, not recursed into
qemu-img create -q -f qcow2 d0.qcow2 1M
for i in $(seq 1 64); do
	qemu-img create -q -f qcow2 -u -b "d$((i - 1)).qcow2" -F qcow2 "d$i.qcow2" 1M
done
out=$($M img check d63.qcow2 2>&1) && pass "a chain of 64 images checks clean" ||
	fail "a chain of 64 images checks clean" "$out"
check_fails "a chain of 65 images is refused" "backing chain deeper than 64" d64.qcow2

# a clean chain still checks clean, and only the top image's clusters are counted
qemu-img create -q -f qcow2 base.qcow2 1M
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
out=$($M img check top.qcow2 2>&1) && pass "clean chain: exit 0" || fail "clean chain: exit 0" "$out"

# VMDK parentFileNameHint: itself, a loop, missing
$M img create -f vmdk s.vmdk 1M >/dev/null
$M img create -f vmdk -b s.vmdk -F vmdk t.vmdk >/dev/null && mv t.vmdk s.vmdk
check_fails "vmdk: parentFileNameHint is the image itself" "is the image itself" s.vmdk
$M img create -f vmdk p.vmdk 1M >/dev/null
$M img create -f vmdk -b p.vmdk -F vmdk x.vmdk >/dev/null
$M img create -f vmdk -b x.vmdk -F vmdk y.vmdk >/dev/null && mv y.vmdk p.vmdk
check_fails "vmdk: parentFileNameHint loop" "its backing file x.vmdk is already in the chain" x.vmdk
$M img create -f vmdk q.vmdk 1M >/dev/null
$M img create -f vmdk -b q.vmdk -F vmdk r.vmdk >/dev/null && rm q.vmdk
check_fails "vmdk: missing parent" "q.vmdk: cannot open" r.vmdk

# VHD and VDI parents
$M img create -f vpc pv.vhd 1M >/dev/null
$M img create -f vpc -b pv.vhd -F vpc cv.vhd >/dev/null && mv cv.vhd pv.vhd
check_fails "vhd: parent is the image itself" "is the image itself" pv.vhd
$M img create -f vpc pm.vhd 1M >/dev/null
$M img create -f vpc -b pm.vhd -F vpc cm.vhd >/dev/null && rm pm.vhd
check_fails "vhd: missing parent" "pm.vhd: cannot open" cm.vhd
$M img create -f vdi pd.vdi 1M >/dev/null
$M img create -f vdi -b pd.vdi -F vdi cd.vdi >/dev/null && rm pd.vdi
check_fails "vdi: missing parent" "pd.vdi: cannot open" cd.vdi

img_done
