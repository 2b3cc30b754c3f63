#!/bin/bash
# Storage pools from a running guest's side: a pool with a thin qcow2 volume (virtio-blk), a thick
# VDI (AHCI) and a qcow2 child of a base volume (immutable: the guest's writes go to a throwaway
# layer), all named `--disk pool:POOL/VOL`.  The guest sees each disk at its size and writes a
# pattern with O_DIRECT; while it runs `minivmm vol list` names the VM on its volumes and
# `vol delete`/`vol resize` of them are refused naming it; after poweroff the volumes hold the
# guest's data (read back through qemu-img), `qemu-img check` is clean, the immutable child and
# its base are unchanged, and the volumes can be deleted.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
gt_setup
vm=gt-pool-$$
W=$GT_WORK
M=$(realpath "$GT_MINIVMM")
export MINIVMM_CONFIG_DIR=$W/cfg

"$M" pool create gtp "$W/pool" >/dev/null &&
	"$M" vol create gtp/data.qcow2 48M >/dev/null &&
	"$M" vol create gtp/fixed.vdi 32M --thick >/dev/null &&
	"$M" vol create gtp/base.qcow2 16M >/dev/null &&
	qemu-io -c 'write -P 0x5a 0 1M' "$W/pool/base.qcow2" >/dev/null &&
	"$M" vol create gtp/child.qcow2 -b base.qcow2 >/dev/null || {
	gt_fail "pool: make the pool and its volumes" "$("$M" pool info gtp 2>&1 | tail -3)"
	exit 1
}
md5() { md5sum | cut -c1-32; }
base_before=$(md5sum <"$W/pool/base.qcow2" | cut -c1-32)
child_before=$(md5sum <"$W/pool/child.qcow2" | cut -c1-32)
initramfs_build "$W/init.cpio" guest-tests/e2e/foundation-init.sh \
	-m "button evdev virtio_pci virtio_blk ahci sd_mod" || {
	gt_fail "pool: build the initramfs"
	exit 1
}
GT_RUN_ARGS=(--disk pool:gtp/data.qcow2,bus=virtio --disk pool:gtp/fixed.vdi,bus=sata
	--disk pool:gtp/child.qcow2,bus=virtio,immutable --state-dir "$W/state")
guest_start "$vm" 1 512 "$W/init.cpio"
if ! guest_wait "$vm" '^GT: ready'; then
	gt_fail "pool: boot to /init" "no 'GT: ready' on the console"
	exit 1
fi
guest_send "$vm" 'echo "GT: sizes=$(cat /sys/block/vda/size)/$(cat /sys/block/sda/size)/$(cat /sys/block/vdb/size)"'
guest_wait "$vm" '^GT: sizes='
sizes=$(guest_value "$vm" sizes)
[ "$sizes" = "$((48 * 2048))/$((32 * 2048))/$((16 * 2048))" ] &&
	gt_pass "pool: the guest sees each volume at its size" ||
	gt_fail "pool: the guest sees each volume at its size" "$sizes"
guest_send "$vm" 'dd if=/dev/urandom of=/tmp/p bs=64k count=16 2>/dev/null; echo "GT: p=$(md5sum </tmp/p | cut -c1-32)"'
guest_wait "$vm" '^GT: p='
guest_send "$vm" 'dd if=/tmp/p of=/dev/vda bs=64k seek=100 oflag=direct conv=fsync 2>/dev/null && dd if=/tmp/p of=/dev/sda bs=64k seek=200 oflag=direct conv=fsync 2>/dev/null && dd if=/tmp/p of=/dev/vdb bs=64k oflag=direct conv=fsync 2>/dev/null; echo "GT: w=$?"'
guest_wait "$vm" '^GT: w=' && [ "$(guest_value "$vm" w)" = 0 ] &&
	gt_pass "pool: the guest writes each volume" ||
	gt_fail "pool: the guest writes each volume" "rc=$(guest_value "$vm" w)"
p=$(guest_value "$vm" p)

# While it runs: the volumes are the VM's.
list=$("$M" vol list gtp 2>&1)
if echo "$list" | grep -q "^data.qcow2 .* $vm\$" && echo "$list" | grep -q "^fixed.vdi .* $vm\$"; then
	gt_pass "pool: vol list names the running VM on its volumes"
else
	gt_fail "pool: vol list names the running VM on its volumes" "$(echo "$list" | tr '\n' '|')"
fi
out=$("$M" vol delete gtp/data.qcow2 2>&1)
if [ $? != 0 ] && echo "$out" | grep -q "in use by running VM '$vm'" && [ -e "$W/pool/data.qcow2" ]; then
	gt_pass "pool: a running VM's volume is not deleted"
else
	gt_fail "pool: a running VM's volume is not deleted" "$out"
fi
out=$("$M" vol resize gtp/fixed.vdi 64M 2>&1)
[ $? != 0 ] && echo "$out" | grep -q "$vm" && gt_pass "pool: nor resized" || gt_fail "pool: nor resized" "$out"

"$GT_MINIVMM" control "$vm" poweroff >/dev/null 2>&1
guest_wait_exit "$vm" 120

# Afterwards: the data is in the volumes, the metadata clean, the immutable chain untouched.
# (qemu-img convert needs a file it can seek in, not a pipe.)
qemu-img convert -O raw "$W/pool/data.qcow2" "$W/data.raw" &&
	qemu-img convert -O raw "$W/pool/fixed.vdi" "$W/fixed.raw"
got_data=$(dd if="$W/data.raw" bs=64k skip=100 count=16 2>/dev/null | md5)
got_vdi=$(dd if="$W/fixed.raw" bs=64k skip=200 count=16 2>/dev/null | md5)
[ -n "$p" ] && [ "$got_data" = "$p" ] && [ "$got_vdi" = "$p" ] &&
	gt_pass "pool: the volumes hold the guest's data" ||
	gt_fail "pool: the volumes hold the guest's data" "p=$p qcow2=$got_data vdi=$got_vdi"
qemu-img check -q "$W/pool/data.qcow2" && qemu-img check -q "$W/pool/fixed.vdi" &&
	gt_pass "pool: qemu-img check is clean" || gt_fail "pool: qemu-img check is clean"
[ "$(md5sum <"$W/pool/base.qcow2" | cut -c1-32)" = "$base_before" ] &&
	[ "$(md5sum <"$W/pool/child.qcow2" | cut -c1-32)" = "$child_before" ] &&
	gt_pass "pool: the immutable child and its base are unchanged" ||
	gt_fail "pool: the immutable child and its base are unchanged"
"$M" vol delete gtp/data.qcow2 >/dev/null 2>&1 && [ ! -e "$W/pool/data.qcow2" ] &&
	gt_pass "pool: after poweroff the volume can be deleted" ||
	gt_fail "pool: after poweroff the volume can be deleted"
