#!/bin/bash
# A Parallels bundle directory (.hdd with DiskDescriptor.xml) opens as the image it names, wherever a
# disk image is accepted; a plain directory is refused with one line.
set -u
M=./minivmm
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1${2:+ ($2)}"; }
guid='{5fbaabe3-6958-40ff-92a7-860e329aab41}'
mkdir "$T/b.hdd"
qemu-img create -q -f parallels "$T/b.hdd/disk.hds" 16M
qemu-io -c "write -P 0x5a 0 1M" -c "write -P 0xa5 8M 64k" "$T/b.hdd/disk.hds" >/dev/null
cat >"$T/b.hdd/DiskDescriptor.xml" <<EOF
<?xml version='1.0' encoding='UTF-8'?>
<Parallels_disk_image Version="1.0">
<Disk_Parameters><Disk_size>32768</Disk_size></Disk_Parameters>
<StorageData><Storage><Start>0</Start><End>32768</End><Blocksize>2048</Blocksize>
<Image><GUID>$guid</GUID><Type>Compressed</Type><File>disk.hds</File></Image>
</Storage></StorageData>
<Snapshots><TopGUID>$guid</TopGUID></Snapshots>
</Parallels_disk_image>
EOF
out=$($M img info "$T/b.hdd" 2>&1)
echo "$out" | grep -q '^file format: parallels' && pass "bundle: info sees the parallels image" ||
	fail "bundle: info sees the parallels image" "$out"
$M img compare "$T/b.hdd" "$T/b.hdd/disk.hds" >/dev/null 2>&1 && pass "bundle: reads as its image" ||
	fail "bundle: reads as its image"
$M img convert -O raw "$T/b.hdd" "$T/out.raw" &&
	qemu-img compare -q -f raw -F parallels "$T/out.raw" "$T/b.hdd/disk.hds" &&
	pass "bundle: converts like its image (qemu-img agrees)" || fail "bundle: converts like its image"
mkdir "$T/plain"
if err=$($M img info "$T/plain" 2>&1); then
	fail "plain directory refused" "$err"
else
	[ "$(echo "$err" | wc -l)" = 1 ] && pass "plain directory refused with one line" ||
		fail "plain directory refused with one line" "$err"
fi
