#!/bin/sh
# /init of the NVMe e2e guest.  nvme0 has four namespaces: n1 qcow2, n2 VDI, n3 VMDK (the O_DIRECT
# pattern goes to each), n4 a read-only raw disk; nvme1 (controller=nvme1) has one namespace, a
# 1 GiB qcow2 for ext4 and fstrim.  Each check prints one "GT: key=value" line; then the guest
# syncs and powers off, and the host looks at the images.
echo "GT: booted"

i=0
while [ $i -lt 600 ]; do # bounded (120 s and more): only stops a hang
	[ -b /dev/nvme0n1 ] && [ -b /dev/nvme0n2 ] && [ -b /dev/nvme0n3 ] &&
		[ -b /dev/nvme0n4 ] && [ -b /dev/nvme1n1 ] && break
	sleep 0.2
	i=$((i + 1))
done
n=0
for d in nvme0n1 nvme0n2 nvme0n3 nvme0n4 nvme1n1; do [ -b /dev/$d ] && n=$((n + 1)); done
echo "GT: devices=$n/5"
echo "GT: model=$(cat /sys/class/nvme/nvme0/model | tr -d ' ')"
echo "GT: nvme1_model=$(cat /sys/class/nvme/nvme1/model | tr -d ' ')"

# 4 MiB pattern at 1 MiB, O_DIRECT out and back, on the qcow2, VDI and VMDK namespaces.
for d in nvme0n1 nvme0n2 nvme0n3; do
	if dd if=/pattern of=/dev/$d bs=64k seek=16 oflag=direct conv=fsync 2>/dev/null &&
		dd if=/dev/$d bs=64k skip=16 count=64 iflag=direct 2>/dev/null | cmp -s - /pattern; then
		echo "GT: rw_$d=ok"
	else
		echo "GT: rw_$d=bad"
	fi
done
# Large O_DIRECT requests (1 MiB: split at MDTS, PRP lists) and 512-byte ones at an odd offset.
dd if=/pattern of=/tmp/odd bs=512 skip=3 count=7 2>/dev/null
if dd if=/pattern of=/dev/nvme0n1 bs=1M seek=16 oflag=direct 2>/dev/null &&
	dd if=/dev/nvme0n1 bs=1M skip=16 count=4 iflag=direct 2>/dev/null | cmp -s - /pattern &&
	dd if=/dev/nvme0n1 bs=512 skip=$((16 * 2048 + 3)) count=7 iflag=direct 2>/dev/null |
	cmp -s - /tmp/odd; then
	echo "GT: rw_large=ok"
else
	echo "GT: rw_large=bad"
fi

echo "GT: ro_flag=$(cat /sys/block/nvme0n4/ro)"
dd if=/dev/nvme0n4 of=/dev/null bs=4k count=4 iflag=direct 2>/dev/null && echo "GT: ro_read=ok"
# Linux marks the namespace read-only from NSATTR and refuses the write itself; the controller's
# own refusal (Namespace Is Write Protected) is covered by tests/device/test_nvme.c.
if dd if=/dev/zero of=/dev/nvme0n4 bs=4k count=1 oflag=direct conv=fsync 2>/dev/null; then
	echo "GT: ro_write=accepted"
else
	echo "GT: ro_write=refused"
fi

# ext4 on nvme1n1 (qcow2): mkfs without discarding or zeroing much (so little is allocated), fill
# 64 MiB, delete, and fstrim returns the space.
if /usr/local/sbin/mke2fs -q -F -t ext4 -E nodiscard,lazy_itable_init=1,lazy_journal_init=1 /dev/nvme1n1 &&
	mkdir -p /mnt && mount -t ext4 /dev/nvme1n1 /mnt &&
	dd if=/dev/urandom of=/mnt/fill bs=1M count=64 2>/dev/null &&
	cp /pattern /mnt/pattern && sync && cmp -s /mnt/pattern /pattern && rm /mnt/fill && sync &&
	fstrim /mnt && umount /mnt && /usr/local/sbin/e2fsck -f -n /dev/nvme1n1 >/dev/null 2>&1; then
	echo "GT: ext4=ok"
else
	echo "GT: ext4=bad"
fi

# Write zeroes and deallocate straight to the device: 1 MiB of the pattern at 8 MiB of n1, zeroed.
dd if=/pattern of=/dev/nvme0n1 bs=64k seek=128 count=16 oflag=direct conv=fsync 2>/dev/null
/usr/local/sbin/blkdiscard -z -o $((8 << 20)) -l $((1 << 20)) /dev/nvme0n1 || echo "GT: blkdiscard_z=failed"
z=$(dd if=/dev/nvme0n1 bs=64k skip=128 count=16 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
zero=$(dd if=/dev/zero bs=64k count=16 2>/dev/null | md5sum | cut -d' ' -f1)
[ "$z" = "$zero" ] && echo "GT: write_zeroes=ok" || echo "GT: write_zeroes=bad"
/usr/local/sbin/blkdiscard -o $((8 << 20)) -l $((1 << 20)) /dev/nvme0n1 && echo "GT: discard=ok"

echo "GT: queues=$(ls /sys/block/nvme0n1/mq | wc -l)"
echo "GT: msix=$(grep -c 'nvme0q' /proc/interrupts)"
echo "GT: irqs=$(grep 'nvme0q[1-9]' /proc/interrupts | awk '{s = 0; for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i; else break; t += s} END {print t + 0}')"
echo "GT: wc=$(cat /sys/block/nvme0n1/queue/write_cache | tr ' ' _)"
echo "GT: max_hw_kb=$(cat /sys/block/nvme0n1/queue/max_hw_sectors_kb)"
echo "GT: dmesg_errors=$(dmesg | grep -c -i -E 'nvme.*(error|timeout|abort|reset)')"
dmesg | grep -i nvme | sed 's/^/GT-dmesg: /' | head -20
sync
echo "GT: done"
poweroff -f
