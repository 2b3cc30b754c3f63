#!/bin/sh
# /init of the virtio-blk e2e guest: vda is a qcow2 disk, vdb a read-only raw disk, vdc a 1 GiB raw
# disk for ext4 (all bus=virtio), sda a raw disk on AHCI beside them. Each check prints one
# "GT: key=value" line; then the guest syncs and powers off, and the host looks at the images.
echo "GT: booted"

i=0
while [ $i -lt 600 ]; do # bounded (120 s and more): only stops a hang
	[ -b /dev/vda ] && [ -b /dev/vdb ] && [ -b /dev/vdc ] && [ -b /dev/sda ] && break
	sleep 0.2
	i=$((i + 1))
done
n=0
for d in vda vdb vdc sda; do [ -b /dev/$d ] && n=$((n + 1)); done
echo "GT: devices=$n/4"

# 4 MiB pattern at 1 MiB, O_DIRECT both ways (on the virtio qcow2 disk and on the AHCI disk).
for d in vda sda; do
	if dd if=/pattern of=/dev/$d bs=64k seek=16 oflag=direct conv=fsync 2>/dev/null &&
		dd if=/dev/$d bs=64k skip=16 count=64 iflag=direct 2>/dev/null | cmp -s - /pattern; then
		echo "GT: rw_$d=ok"
	else
		echo "GT: rw_$d=bad"
	fi
done

echo "GT: ro_flag=$(cat /sys/block/vdb/ro)"
dd if=/dev/vdb of=/dev/null bs=4k count=4 iflag=direct 2>/dev/null && echo "GT: ro_read=ok"
if dd if=/dev/zero of=/dev/vdb bs=4k count=1 oflag=direct conv=fsync 2>/dev/null; then
	echo "GT: ro_write=accepted"
else
	echo "GT: ro_write=refused"
fi

if /usr/local/sbin/mke2fs -q -F -t ext4 /dev/vdc && mkdir -p /mnt &&
	mount -t ext4 /dev/vdc /mnt && cp /pattern /mnt/pattern && sync &&
	cmp -s /mnt/pattern /pattern && fstrim /mnt && umount /mnt &&
	/usr/local/sbin/e2fsck -f -n /dev/vdc >/dev/null 2>&1; then
	echo "GT: ext4=ok"
else
	echo "GT: ext4=bad"
fi
# Write zeroes and discard straight to the device: 1 MiB of the pattern at 8 MiB of vda, zeroed.
dd if=/pattern of=/dev/vda bs=64k seek=128 count=16 oflag=direct conv=fsync 2>/dev/null
/usr/local/sbin/blkdiscard -z -o $((8 << 20)) -l $((1 << 20)) /dev/vda || echo "GT: blkdiscard_z=failed"
z=$(dd if=/dev/vda bs=64k skip=128 count=16 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
zero=$(dd if=/dev/zero bs=64k count=16 2>/dev/null | md5sum | cut -d' ' -f1)
[ "$z" = "$zero" ] && echo "GT: write_zeroes=ok" || echo "GT: write_zeroes=bad"
/usr/local/sbin/blkdiscard -o $((8 << 20)) -l $((1 << 20)) /dev/vda && echo "GT: discard=ok"

echo "GT: mq=$(ls /sys/block/vda/mq | wc -l)"
echo "GT: serial=$(cat /sys/block/vda/serial 2>/dev/null)"
# Negotiated feature bits, bit 0 first: 34 is VIRTIO_F_RING_PACKED, 29 EVENT_IDX.
echo "GT: packed=$(cut -c35 /sys/block/vda/device/features)"
echo "GT: event_idx=$(cut -c30 /sys/block/vda/device/features)"
echo "GT: discard_max=$(cat /sys/block/vda/queue/discard_max_bytes)"
echo "GT: virtio_msix=$(grep -c 'virtio.*-req' /proc/interrupts)"
echo "GT: virtio_irqs=$(grep 'virtio.*-req' /proc/interrupts | awk '{s = 0; for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i; else break; t += s} END {print t + 0}')"
sync
echo "GT: done"
poweroff -f
