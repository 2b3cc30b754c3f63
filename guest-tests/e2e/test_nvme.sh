#!/bin/bash
# NVMe end to end: a Linux guest (nvme, ext4 modules) with --cpus 2 and two controllers: nvme0 with
# four namespaces (qcow2, VDI, VMDK, a read-only raw disk), nvme1 (controller=nvme1) with a 1 GiB
# qcow2.  A 4 MiB pattern written and read back with O_DIRECT on the qcow2, VDI and VMDK
# namespaces and found in each image on the host (qemu-img convert, qemu-img check); the
# read-only namespace reads and refuses writes (the image unchanged); mkfs.ext4, fill, delete,
# fstrim and e2fsck on nvme1n1, then `qemu-img map` shows the space returned; write zeroes and
# discard; one I/O queue per vCPU with an MSI-X vector each; shadow doorbells with ioeventfds;
# SeaBIOS boots a disk installed on a namespace.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
gt_setup
vm=gt-nvme-$$
W=$GT_WORK

nvme_guest_start() {
	local name=$1 initrd=$2 fd
	shift 2
	mkfifo "$W/$name.in" || return 1
	exec {fd}<>"$W/$name.in"
	"$GT_MINIVMM" --log-level info run --name "$name" --cpus 2 --memory 512 --kernel "$(gt_kernel)" \
		--initrd "$initrd" --append "console=ttyS0 quiet panic=-1" --console stdio "$@" \
		<"$W/$name.in" >"$W/$name.console" 2>"$W/$name.stderr" &
	_gt_pid["$name"]=$!
	_gt_fd["$name"]=$fd
	_gt_last=$name
}

head -c $((4 << 20)) /dev/urandom >"$W/pattern"
truncate -s 64M "$W/ref.raw"
dd if="$W/pattern" of="$W/ref.raw" bs=1M seek=1 conv=notrunc status=none
qemu-img create -q -f qcow2 "$W/n1.qcow2" 64M
qemu-img create -q -f vdi "$W/n2.vdi" 64M
qemu-img create -q -f vmdk "$W/n3.vmdk" 64M
head -c $((16 << 20)) /dev/urandom >"$W/ro.raw"
cp "$W/ro.raw" "$W/ro.orig"
qemu-img create -q -f qcow2 "$W/ext4.qcow2" 1G

files=(-f "$W/pattern:/pattern")
for b in /sbin/mke2fs /sbin/e2fsck /sbin/blkdiscard; do
	files+=(-f "$b:/usr/local/sbin/$(basename "$b")")
	for lib in $(ldd "$b" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
		files+=(-f "$(readlink -f "$lib"):$lib")
	done
done
initramfs_build "$W/init.cpio" guest-tests/e2e/nvme-init.sh \
	-m "nvme ext4 crc32c_generic" "${files[@]}" || {
	gt_fail "nvme: build the initramfs"
	exit 1
}

nvme_guest_start "$vm" "$W/init.cpio" --disk "$W/n1.qcow2,bus=nvme,format=qcow2" \
	--disk "$W/n2.vdi,bus=nvme,format=vdi" --disk "$W/n3.vmdk,bus=nvme,format=vmdk" \
	--disk "$W/ro.raw,readonly,bus=nvme,format=raw" \
	--disk "$W/ext4.qcow2,bus=nvme,controller=nvme1,format=qcow2"
if ! guest_wait "$vm" '^GT: done'; then
	gt_fail "nvme: guest ran its checks" "no 'GT: done' on the console: $(tail -n 3 "$W/$vm.console" "$W/$vm.stderr" | tr '\n' ' ')"
	exit 1
fi
guest_wait_exit "$vm" 300
if [ "$GT_RC" = 0 ]; then gt_pass "nvme: guest powered off (exit 0)"; else gt_fail "nvme: guest powered off" "exit $GT_RC"; fi
grep -a '^GT-dmesg: ' "$W/$vm.console" | sed 's/^/# /'

v() { guest_value "$vm" "$1"; }
check() { # NAME, DETAIL, CONDITION-COMMAND...
	local name=$1 detail=$2
	shift 2
	if "$@"; then gt_pass "nvme: $name"; else gt_fail "nvme: $name" "$detail"; fi
}
check "the nvme driver finds nvme0n1-n4 and nvme1n1" "devices=$(v devices)" test "$(v devices)" = 5/5
check "both controllers identify as minivmm's" "model=$(v model) nvme1=$(v nvme1_model)" \
	test "$(v model)" = minivmmNVMeCtrl -a "$(v nvme1_model)" = minivmmNVMeCtrl
# The first 8 MiB: the pattern at 1 MiB (write zeroes and discard work at 8 MiB and up).
for img in n1.qcow2:qcow2:nvme0n1 n2.vdi:vdi:nvme0n2 n3.vmdk:vmdk:nvme0n3; do
	IFS=: read -r f fmt dev <<<"$img"
	qemu-img convert -f "$fmt" -O raw "$W/$f" "$W/$f.out.raw"
	check "$fmt namespace: O_DIRECT pattern out and back, image holds it on the host (qemu-img)" \
		"guest rw_$dev=$(v "rw_$dev")" test "$(v "rw_$dev")" = ok -a \
		"$(head -c 8M "$W/$f.out.raw" | md5sum)" = "$(head -c 8M "$W/ref.raw" | md5sum)"
	check "$fmt image is qemu-img check clean" "$(qemu-img check -f "$fmt" "$W/$f" 2>&1 | tail -1)" \
		qemu-img check -q -f "$fmt" "$W/$f"
done
check "1 MiB O_DIRECT requests (PRP lists, split at MDTS) and 512-byte ones" "rw_large=$(v rw_large)" \
	test "$(v rw_large)" = ok
check "read-only namespace: marked ro (NSATTR), reads, refuses writes, image unchanged" \
	"ro=$(v ro_flag) read=$(v ro_read) write=$(v ro_write)" \
	bash -c "[ '$(v ro_flag)' = 1 ] && [ '$(v ro_read)' = ok ] && [ '$(v ro_write)' = refused ] && cmp -s '$W/ro.raw' '$W/ro.orig'"
check "mkfs.ext4, fill, delete, fstrim, e2fsck on nvme1n1 (and e2fsck on the host)" \
	"guest ext4=$(v ext4)" bash -c "[ '$(v ext4)' = ok ] && qemu-img convert -f qcow2 -O raw '$W/ext4.qcow2' '$W/ext4.raw' && e2fsck -f -n '$W/ext4.raw' >/dev/null 2>&1"
# 64 MiB were written and deleted: after fstrim the qcow2 maps far less than that.
mapped=$(qemu-img map -f qcow2 --output=json "$W/ext4.qcow2" |
	awk -F'[:,]' '/"data": true/ { for (i = 1; i <= NF; i++) if ($i ~ /"length"/) s += $(i + 1) } END { print int(s / 1048576) }')
check "fstrim returned the space in the qcow2 image (qemu-img map: ${mapped} MiB data)" \
	"mapped=${mapped} MiB" test "${mapped:-999}" -lt 32
check "ext4 qcow2 is qemu-img check clean" "$(qemu-img check "$W/ext4.qcow2" 2>&1 | tail -1)" \
	qemu-img check -q "$W/ext4.qcow2"
check "write zeroes (blkdiscard -z) reads back zeroes" "write_zeroes=$(v write_zeroes)" test "$(v write_zeroes)" = ok
check "deallocate (blkdiscard) accepted" "discard=$(v discard)" test "$(v discard)" = ok
check "--cpus 2 gives two I/O queues" "queues=$(v queues)" test "$(v queues)" = 2
check "MSI-X: admin queue and one vector per I/O queue, I/O interrupts seen" \
	"vectors=$(v msix) irqs=$(v irqs)" bash -c "[ '$(v msix)' -ge 3 ] && [ '$(v irqs)' -gt 0 ]"
check "volatile write cache reported (write back)" "wc=$(v wc)" test "$(v wc)" = write_back
check "MDTS: 512 KiB per command" "max_hw_sectors_kb=$(v max_hw_kb)" test "$(v max_hw_kb)" = 512
check "no NVMe errors, timeouts or resets in the guest's log" "dmesg_errors=$(v dmesg_errors)" \
	test "$(v dmesg_errors)" = 0
check "Linux set up shadow doorbells: the I/O doorbells became ioeventfds (both controllers)" \
	"$(grep -c 'shadow doorbells on: I/O doorbells are ioeventfds' "$W/$vm.stderr") of 2" \
	test "$(grep -c 'nvme[01]: shadow doorbells on: I/O doorbells are ioeventfds' "$W/$vm.stderr")" -ge 2

# Firmware boot from a namespace: SeaBIOS's NVMe driver finds the disk by the boot order entry the
# controller gave it (/pci@i0cf8/nvme@SLOT/namespace@N) and boots what is installed there.  (SeaBIOS
# boots only its first hard disk, so the bootable one is namespace 1; an empty namespace 2 is
# beside it.)
. guest-tests/lib/fwboot.sh
if mkdir -p "$W/fw" && fwboot_disk_build "$W/fw"; then
	truncate -s 16M "$W/empty.raw"
	fw=gt-nvme-fw-$$
	GT_RUN_ARGS=(--disk "$W/fw/os.raw,bus=nvme,format=raw" --disk "$W/empty.raw,bus=nvme,format=raw")
	guest_start_fw "$fw" 1 512
	if guest_wait "$fw" '^GT: done' 600; then
		gt_pass "nvme: SeaBIOS boots what is installed on an NVMe namespace"
	else
		gt_fail "nvme: SeaBIOS boots what is installed on an NVMe namespace" \
			"no 'GT: done': $(tail -n 3 "$W/$fw.console" "$W/$fw.stderr" | tr '\n' ' ')"
	fi
	guest_wait_exit "$fw" 120
else
	gt_fail "nvme: build the bootable disk (sfdisk, mkfs.fat, mtools, syslinux)"
fi
