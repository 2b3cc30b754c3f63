#!/bin/sh
# /init of the AHCI e2e guest. The kernel command line names the drive on each AHCI port, in port
# order: gt_ahci=raw,ro,ext4,cd[,qcow2][,vdi]. Each check prints one "GT: key=value" line; then the
# guest syncs and powers off, and the host looks at the images.
echo "GT: booted"
roles=$(sed -n 's/.*gt_ahci=\([^ ]*\).*/\1/p' /proc/cmdline | tr ',' ' ')

# The block device behind AHCI port N (libata numbers the ports ata1, ata2... in order).
dev_of_port() {
	for b in /sys/block/sd* /sys/block/sr*; do
		[ -e "$b" ] || continue
		case $(readlink -f "$b") in
		*/ata$1/*) basename "$b"; return 0 ;;
		esac
	done
	return 1
}

# SCSI scanning is asynchronous: wait (bounded) for every port's device.
n=0
for r in $roles; do n=$((n + 1)); done
i=0
while [ $i -lt 600 ]; do # bounded (120 s and more): only stops a hang
	found=0
	p=1
	for r in $roles; do
		dev_of_port $p >/dev/null && found=$((found + 1))
		p=$((p + 1))
	done
	[ $found -eq $n ] && break
	sleep 0.2
	i=$((i + 1))
done
echo "GT: devices=$found/$n"

p=1
for r in $roles; do
	d=/dev/$(dev_of_port $p)
	p=$((p + 1))
	case $r in
	raw | qcow2 | vdi)
		# 4 MiB pattern at 1 MiB, O_DIRECT both ways, then read back through the device.
		if dd if=/pattern of="$d" bs=64k seek=16 oflag=direct conv=fsync 2>/dev/null &&
			dd if="$d" bs=64k skip=16 count=64 iflag=direct 2>/dev/null | cmp -s - /pattern; then
			echo "GT: rw_$r=ok"
		else
			echo "GT: rw_$r=bad"
		fi
		;;
	ro)
		dd if="$d" of=/dev/null bs=4k count=4 iflag=direct 2>/dev/null && echo "GT: ro_read=ok"
		if dd if=/dev/zero of="$d" bs=4k count=1 oflag=direct conv=fsync 2>/dev/null; then
			echo "GT: ro_write=accepted"
		else
			echo "GT: ro_write=refused"
		fi
		;;
	ext4)
		if /usr/local/sbin/mke2fs -q -F -t ext4 "$d" && mkdir -p /mnt &&
			mount -t ext4 "$d" /mnt && cp /pattern /mnt/pattern && sync &&
			cmp -s /mnt/pattern /pattern && umount /mnt &&
			/usr/local/sbin/e2fsck -f -n "$d" >/dev/null 2>&1; then
			echo "GT: ext4=ok"
		else
			echo "GT: ext4=bad"
		fi
		;;
	cd)
		mkdir -p /cdrom
		if mount -t iso9660 -o ro "$d" /cdrom; then
			echo "GT: cd_text=$(cat /cdrom/hello.txt)"
			cmp -s /cdrom/pattern /pattern && echo "GT: cd_pattern=ok"
			umount /cdrom
		else
			echo "GT: cd_text=mount-failed"
		fi
		;;
	esac
done
first=$(dev_of_port 1)
echo "GT: ncq_depth=$(cat /sys/block/"$first"/device/queue_depth 2>/dev/null)"
echo "GT: ahci_msi=$(grep ahci /proc/interrupts | grep -c MSI)"
echo "GT: ahci_irqs=$(grep ahci /proc/interrupts | awk '{s = 0; for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i; else break; t += s} END {print t + 0}')"
sync
echo "GT: done"
poweroff -f
