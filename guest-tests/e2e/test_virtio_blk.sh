#!/bin/bash
# virtio-blk end to end: a Linux guest (virtio_pci, virtio_blk, ext4 modules) with three disks on
# bus=virtio (a qcow2 disk, a read-only raw disk, a 1 GiB raw disk) beside a raw disk on AHCI, and
# --cpus 2: a 4 MiB pattern written and read back with O_DIRECT on the qcow2 and the AHCI disk and
# compared on the host with qemu-img compare; the read-only disk reads and refuses writes (the
# image unchanged); mkfs.ext4, fstrim and e2fsck on virtio-blk (e2fsck on the host too); write
# zeroes and discard; two request queues (one per vCPU); packed rings with EVENT_IDX negotiated;
# GET_ID gives the serial; MSI-X interrupts.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
gt_setup
vm=gt-virtio-$$
W=$GT_WORK

# guest_start with the drives as extra VMM arguments.
vblk_guest_start() {
	local name=$1 initrd=$2
	shift 2
	GT_RUN_ARGS=("$@")
	guest_start "$name" 2 512 "$initrd"
}

head -c $((4 << 20)) /dev/urandom >"$W/pattern"
truncate -s 64M "$W/ref.raw"
dd if="$W/pattern" of="$W/ref.raw" bs=1M seek=1 conv=notrunc status=none
qemu-img create -q -f qcow2 "$W/disk.qcow2" 64M
truncate -s 64M "$W/sata.raw"
head -c $((16 << 20)) /dev/urandom >"$W/ro.raw"
cp "$W/ro.raw" "$W/ro.orig"
truncate -s 1G "$W/ext4.raw"

files=(-f "$W/pattern:/pattern")
for b in /sbin/mke2fs /sbin/e2fsck /sbin/blkdiscard; do
	files+=(-f "$b:/usr/local/sbin/$(basename "$b")")
	for lib in $(ldd "$b" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
		files+=(-f "$(readlink -f "$lib"):$lib")
	done
done
initramfs_build "$W/init.cpio" guest-tests/e2e/virtio-blk-init.sh \
	-m "virtio_pci virtio_blk ahci sd_mod ext4 crc32c_generic" "${files[@]}" || {
	gt_fail "virtio-blk: build the initramfs"
	exit 1
}

vblk_guest_start "$vm" "$W/init.cpio" --disk "$W/disk.qcow2,bus=virtio,format=qcow2" \
	--disk "$W/ro.raw,readonly,bus=virtio,format=raw" --disk "$W/ext4.raw,bus=virtio,format=raw" \
	--disk "$W/sata.raw,bus=sata,format=raw"
if ! guest_wait "$vm" '^GT: done'; then
	gt_fail "virtio-blk: guest ran its checks" "no 'GT: done' on the console: $(tail -3 "$W/$vm.console" "$W/$vm.stderr" | tr '\n' ' ')"
	exit 1
fi
guest_wait_exit "$vm" 300
if [ "$GT_RC" = 0 ]; then gt_pass "virtio-blk: guest powered off (exit 0)"; else gt_fail "virtio-blk: guest powered off" "exit $GT_RC"; fi

v() { guest_value "$vm" "$1"; }
check() { # NAME, CONDITION-COMMAND..., DETAIL
	local name=$1 detail=$2
	shift 2
	if "$@"; then gt_pass "virtio-blk: $name"; else gt_fail "virtio-blk: $name" "$detail"; fi
}
check "three virtio disks (vda-vdc) beside the AHCI disk" "devices=$(v devices)" test "$(v devices)" = 4/4
# The pattern region was overwritten by discard/write-zeroes checks only at 8 MiB: compare the
# first 8 MiB.
qemu-img convert -f qcow2 -O raw "$W/disk.qcow2" "$W/disk.out.raw"
check "qcow2 disk: O_DIRECT pattern out and back, image matches on the host (qemu-img)" \
	"guest rw_vda=$(v rw_vda)" test "$(v rw_vda)" = ok -a \
	"$(head -c 8M "$W/disk.out.raw" | md5sum)" = "$(head -c 8M "$W/ref.raw" | md5sum)"
check "qcow2 image is qemu-img check clean" "$(qemu-img check "$W/disk.qcow2" 2>&1 | tail -1)" \
	qemu-img check -q "$W/disk.qcow2"
check "AHCI disk beside it: pattern out and back, matches on the host" "guest rw_sda=$(v rw_sda)" \
	test "$(v rw_sda)" = ok -a "$(head -c 8M "$W/sata.raw" | md5sum)" = "$(head -c 8M "$W/ref.raw" | md5sum)"
check "read-only disk: marked ro, reads, refuses writes, image unchanged" \
	"ro=$(v ro_flag) read=$(v ro_read) write=$(v ro_write)" \
	bash -c "[ '$(v ro_flag)' = 1 ] && [ '$(v ro_read)' = ok ] && [ '$(v ro_write)' = refused ] && cmp -s '$W/ro.raw' '$W/ro.orig'"
check "mkfs.ext4, mount, write, fstrim, e2fsck on a 1 GiB virtio disk (and e2fsck on the host)" \
	"guest ext4=$(v ext4)" bash -c "[ '$(v ext4)' = ok ] && e2fsck -f -n '$W/ext4.raw' >/dev/null 2>&1"
check "write zeroes (blkdiscard -z) reads back zeroes" "write_zeroes=$(v write_zeroes)" test "$(v write_zeroes)" = ok
check "discard accepted" "discard=$(v discard) max=$(v discard_max)" test "$(v discard)" = ok
check "--cpus 2 gives two request queues" "mq=$(v mq)" test "$(v mq)" = 2
check "Linux drives packed rings with EVENT_IDX" "packed=$(v packed) event_idx=$(v event_idx)" \
	test "$(v packed)" = 1 -a "$(v event_idx)" = 1
check "GET_ID gives the disk's serial" "serial='$(v serial)'" bash -c "[ -n '$(v serial)' ]"
check "interrupts are MSI-X, one vector per queue" "vectors=$(v virtio_msix) irqs=$(v virtio_irqs)" \
	bash -c "[ '$(v virtio_msix)' -ge 6 ] && [ '$(v virtio_irqs)' -gt 0 ]"
