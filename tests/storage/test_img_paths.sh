#!/bin/bash
# Images that name host files (issue 10): a backing file, parent or extent an image names is opened
# only inside the image's own directory (symlinks resolved) and never as a device node, unless
# --allow-backing-path DIR allows it; the refusal is one line naming the image and the name.
# Crafted images: qcow2 backing /etc/passwd, ../x and a symlink out; VMDK extents /dev/null, an
# absolute path and a device node made beside the descriptor; a VDI parent found by UUID in the
# directory above. Chains inside the directory keep working.
set -u
cd "$(dirname "$0")/../.."
. tests/storage/img_test_lib.sh

mkdir -p "$T/vm/sub" "$T/other"
V=$T/vm
head -c 1048576 /dev/urandom >"$T/other/base.raw"
cp "$T/other/base.raw" "$V/base.raw"
cp "$T/other/base.raw" "$V/sub/base.raw"

refused() { # NAME EXPECTED-MESSAGE-REGEX COMMAND...: fails with exactly that one line, exit 1
	local name=$1 re=$2
	shift 2
	"$@" >/dev/null 2>"$T/err"
	local rc=$?
	if [ $rc != 1 ]; then
		fail "$name: refused" "exit $rc: $(cat "$T/err")"
	elif [ "$(wc -l <"$T/err")" != 1 ] || ! grep -Eq "$re" "$T/err"; then
		fail "$name: refused" "$(cat "$T/err")"
	else
		pass "$name: refused"
	fi
}
# Every verb that opens a chain: convert reads through it, info --backing-chain lists it.
chain() { $M img convert -O raw "$@" "$T/out.raw"; }

# qcow2 naming /etc/passwd, ../x, and a symlink leading out of its directory
qemu-img create -q -f qcow2 -u -b /etc/passwd -F raw "$V/abs.qcow2" 1M
qemu-img create -q -f qcow2 -u -b ../other/base.raw -F raw "$V/up.qcow2" 1M
ln -s /etc/passwd "$V/link"
qemu-img create -q -f qcow2 -u -b link -F raw "$V/link.qcow2" 1M
P="minivmm img: $V"
refused "qcow2 backing /etc/passwd" \
	"^$P/abs.qcow2: refusing backing file /etc/passwd named by the image \(outside $V/abs.qcow2's directory; allow it with --allow-backing-path /etc\)$" \
	chain "$V/abs.qcow2"
refused "qcow2 backing ../other/base.raw" \
	"^$P/up.qcow2: refusing backing file ../other/base.raw \(= $T/other/base.raw\) named by the image \(outside .*; allow it with --allow-backing-path $T/other\)$" \
	chain "$V/up.qcow2"
refused "qcow2 backing through a symlink to /etc/passwd" \
	"^$P/link.qcow2: refusing backing file link \(= /etc/passwd\) named by the image \(outside" \
	chain "$V/link.qcow2"
refused "info --backing-chain refuses too" "refusing backing file /etc/passwd" \
	$M img info --backing-chain "$V/abs.qcow2"
check "qcow2 backing /etc/passwd allowed with --allow-backing-path /etc" \
	chain --allow-backing-path /etc "$V/abs.qcow2"
cmp -s -n 100 /etc/passwd "$T/out.raw" && pass "... and /etc/passwd is what it reads" || fail "... and /etc/passwd is what it reads"
check "qcow2 backing ../ allowed with --allow-backing-path" \
	chain "$V/up.qcow2" --allow-backing-path "$T/other"
check "qcow2 backing through a symlink allowed with --allow-backing-path=/etc" \
	chain --allow-backing-path=/etc "$V/link.qcow2"
refused "an unrelated --allow-backing-path does not help" "refusing backing file /etc/passwd" \
	chain --allow-backing-path "$T/other" "$V/abs.qcow2"
refused "--allow-backing-path of a missing directory" "^minivmm img: --allow-backing-path: $T/nope: No such file or directory$" \
	chain --allow-backing-path "$T/nope" "$V/abs.qcow2"

# Chains inside the directory: beside, below, and through a symlink that stays inside.
qemu-img create -q -f qcow2 -u -b base.raw -F raw "$V/ok.qcow2" 1M
qemu-img create -q -f qcow2 -u -b sub/base.raw -F raw "$V/ok-sub.qcow2" 1M
qemu-img create -q -f qcow2 -u -b "$V/base.raw" -F raw "$V/ok-abs.qcow2" 1M
ln -s sub/base.raw "$V/inlink"
qemu-img create -q -f qcow2 -u -b inlink -F raw "$V/ok-link.qcow2" 1M
qemu-img create -q -f qcow2 -u -b ok.qcow2 -F qcow2 "$V/ok-top.qcow2" 1M
for i in ok ok-sub ok-abs ok-link ok-top; do
	check "qcow2 backing inside its directory ($i)" chain "$V/$i.qcow2"
	cmp -s "$T/out.raw" "$T/other/base.raw" && pass "... $i reads its backing file" || fail "... $i reads its backing file"
done
# A chain checks each image against its own directory: sub/mid names ../base.raw, outside sub/.
qemu-img create -q -f qcow2 -u -b ../base.raw -F raw "$V/sub/mid.qcow2" 1M
qemu-img create -q -f qcow2 -u -b sub/mid.qcow2 -F qcow2 "$V/top2.qcow2" 1M
refused "each image of a chain against its own directory" \
	"^$P/top2.qcow2: in its backing chain: $V/sub/mid.qcow2: refusing backing file ../base.raw" \
	chain "$V/top2.qcow2"

# VMDK extents: a device (/dev/null), an absolute path elsewhere, a device node beside it.
vmdk_desc() { # FILE EXTENT-NAME
	cat >"$1" <<EOF
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
createType="monolithicFlat"

# Extent description
RW 2048 FLAT "$2" 0

# The Disk Data Base
ddb.virtualHWVersion = "4"
EOF
}
vmdk_desc "$V/null.vmdk" /dev/null
vmdk_desc "$V/absext.vmdk" "$T/other/base.raw"
vmdk_desc "$V/passwd.vmdk" /etc/passwd
vmdk_desc "$V/inside.vmdk" base.raw
refused "vmdk extent /dev/null" \
	"^$P/null.vmdk: refusing extent file /dev/null named by the image \(a device node; allow it with --allow-backing-path /dev\)$" \
	chain "$V/null.vmdk"
refused "vmdk extent /dev/null, read-only info" "refusing extent file /dev/null" $M img info "$V/null.vmdk"
refused "vmdk extent at an absolute path elsewhere" \
	"^$P/absext.vmdk: refusing extent file $T/other/base.raw named by the image \(outside" \
	chain "$V/absext.vmdk"
refused "vmdk RW extent /etc/passwd" "refusing extent file /etc/passwd named by the image" \
	$M img info "$V/passwd.vmdk"
check "vmdk extent elsewhere allowed with --allow-backing-path" \
	chain --allow-backing-path "$T/other" "$V/absext.vmdk"
cmp -s "$T/out.raw" "$T/other/base.raw" && pass "... and reads it" || fail "... and reads it"
check "vmdk extent beside the descriptor" chain "$V/inside.vmdk"
# Allowed, /dev/null passes the path rule but is still no disk (the driver's own check).
refused "vmdk extent /dev/null allowed by --allow-backing-path /dev, then refused as no disk" \
	"null.vmdk: extent /dev/null is not a regular file or block device" \
	chain --allow-backing-path /dev "$V/null.vmdk"
if [ "$(id -u)" = 0 ]; then
	mknod "$V/blk" b 7 255 # never opened: refused before
	vmdk_desc "$V/blk.vmdk" blk
	refused "vmdk extent: a block device node beside the descriptor" \
		"^$P/blk.vmdk: refusing extent file blk \(= $V/blk\) named by the image \(a device node;" \
		chain "$V/blk.vmdk"
	rm -f "$V/blk"
else
	echo "note: not root, the block device node case is skipped"
fi

# VDI: a differencing image as VirtualBox writes it (no file name, only the parent's UUID), the
# parent in the directory above (VirtualBox's Snapshots/ layout) or beside it.
mkdir -p "$T/vb/Snapshots"
$M img convert -f raw -O vdi "$T/other/base.raw" "$T/vb/base.vdi"
$M img create -f vdi -b ../base.vdi -F vdi "$T/vb/Snapshots/diff.vdi" >/dev/null
# drop minivmm's file name from the comment: only the UUID search is left
python3 - "$T/vb/Snapshots/diff.vdi" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(0x54)
    f.write(b"\0" * 256)
PY
refused "vdi parent found by UUID in the directory above" \
	"^minivmm img: $T/vb/Snapshots/diff.vdi: refusing backing file ../base.vdi \(= $T/vb/base.vdi\) named by the image \(outside" \
	chain "$T/vb/Snapshots/diff.vdi"
check "vdi parent above allowed with --allow-backing-path" \
	chain --allow-backing-path "$T/vb" "$T/vb/Snapshots/diff.vdi"
cmp -s "$T/out.raw" "$T/other/base.raw" && pass "... and reads it" || fail "... and reads it"
mv "$T/vb/base.vdi" "$T/vb/Snapshots/base.vdi"
check "vdi parent found by UUID beside it" chain "$T/vb/Snapshots/diff.vdi"

# VHD: a parent locator naming a file elsewhere.
$M img convert -f raw -O vpc "$T/other/base.raw" "$T/other/base.vhd"
$M img create -f vpc -b "$T/other/base.vhd" -F vpc "$V/diff.vhd" >/dev/null
refused "vhd parent elsewhere" "^$P/diff.vhd: refusing backing file $T/other/base.vhd named by the image \(outside" \
	chain "$V/diff.vhd"
check "vhd parent allowed with --allow-backing-path" chain --allow-backing-path "$T/other" "$V/diff.vhd"

# rebase -b: the user's own choice, even elsewhere (the image then names it; opening it later is
# checked again).
qemu-img create -q -f qcow2 "$V/rb.qcow2" 1M
check "rebase -b to a file elsewhere (given by the user)" $M img rebase -b "$T/other/base.raw" -F raw "$V/rb.qcow2"
refused "... a later open checks it again" "refusing backing file $T/other/base.raw" chain "$V/rb.qcow2"

# A VM's state directory under the default root: its layers name the disks the VM recorded in
# disks.json, wherever they are, and `img` follows them; a disks.json anywhere else is not trusted.
S=$T/xdg/minivmm/vms/vm1
mkdir -p "$S" "$T/appliance"
printf '[{"file":"%s","media":"hdd","mode":"normal","format":"raw","bus":"sata"}]' "$T/other/base.raw" >"$S/disks.json"
qemu-img create -q -f qcow2 -u -b "$T/other/base.raw" -F raw "$S/disk0-base.snap1.qcow2" 1M
check "state layer naming a recorded disk" env XDG_DATA_HOME="$T/xdg" $M img check "$S/disk0-base.snap1.qcow2"
cp "$S/disks.json" "$T/appliance/disks.json"
qemu-img create -q -f qcow2 -u -b "$T/other/base.raw" -F raw "$T/appliance/evil.qcow2" 1M
refused "disks.json outside the state root is not trusted" "refusing backing file $T/other/base.raw" \
	env XDG_DATA_HOME="$T/xdg" $M img check "$T/appliance/evil.qcow2"

[ "$FAILS" = 0 ]
