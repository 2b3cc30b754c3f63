#!/bin/sh
# /init of the LSI Logic e2e guest: six drives on bus=scsi (53C1030, mptspi) and three on bus=sas
# (SAS1068, mptsas).  Disks are told apart by their size in MiB (the host made each one
# different), their driver by the SCSI host's proc_name.  Each check prints "GT: key=value";
# then the guest syncs and powers off, and the host looks at the images.
echo "GT: booted"

i=0
while [ $i -lt 120 ]; do
	[ "$(ls -d /sys/block/sd* 2>/dev/null | wc -l)" -ge 8 ] && [ -b /dev/sr0 ] && break
	sleep 1
	i=$((i + 1))
done
echo "GT: disks=$(ls -d /sys/block/sd* 2>/dev/null | wc -l)"
# What the drivers said, for the host's report when something is missing.
dmesg | grep -iE 'mpt|ioc[0-9]|fusion|scsi|sd |sr |sas' | sed 's/^/GT-dmesg: /' | head -80
echo "GT: cdrom=$([ -b /dev/sr0 ] && echo present || echo missing)"

# dev_of MIB: the sd disk of that size; driver_of DEV: mptspi or mptsas.
dev_of() {
	for s in /sys/block/sd*; do
		[ "$(cat "$s/size")" = $(($1 * 2048)) ] && basename "$s" && return
	done
}
driver_of() {
	h=$(readlink -f "/sys/block/$1/device" | sed -n 's|.*/host\([0-9]*\)/.*|\1|p')
	cat "/sys/class/scsi_host/host$h/proc_name" 2>/dev/null
}

# 4 MiB pattern at 1 MiB, O_DIRECT both ways, on the qcow2, VDI and VMDK disk of each HBA.
for spec in spi_qcow2:64 spi_vdi:65 spi_vmdk:66 sas_qcow2:68 sas_vdi:69 sas_vmdk:70; do
	name=${spec%%:*}
	d=$(dev_of "${spec#*:}")
	echo "GT: drv_$name=$([ -n "$d" ] && driver_of "$d")"
	if [ -n "$d" ] && dd if=/pattern of=/dev/$d bs=64k seek=16 oflag=direct conv=fsync 2>/dev/null &&
		dd if=/dev/$d bs=64k skip=16 count=64 iflag=direct 2>/dev/null | cmp -s - /pattern; then
		echo "GT: rw_$name=ok"
	else
		echo "GT: rw_$name=bad"
	fi
done

ro=$(dev_of 67)
echo "GT: ro_flag=$(cat /sys/block/$ro/ro 2>/dev/null)"
dd if=/dev/$ro of=/dev/null bs=4k count=4 iflag=direct 2>/dev/null && echo "GT: ro_read=ok"
if dd if=/dev/zero of=/dev/$ro bs=4k count=1 oflag=direct conv=fsync 2>/dev/null; then
	echo "GT: ro_write=accepted"
else
	echo "GT: ro_write=refused"
fi

# ext4 on the 256 MiB qcow2 disk: 48 MiB written, removed, fstrim gives the clusters back.
e=$(dev_of 256)
echo "GT: discard_max=$(cat /sys/block/$e/queue/discard_max_bytes 2>/dev/null)"
echo "GT: wce=$(cat /sys/block/$e/device/scsi_disk/*/cache_type 2>/dev/null | tr " " _)"
if /usr/local/sbin/mke2fs -q -F -E nodiscard -t ext4 /dev/$e && mkdir -p /mnt &&
	mount -t ext4 /dev/$e /mnt && dd if=/dev/urandom of=/mnt/big bs=1M count=48 2>/dev/null &&
	cp /pattern /mnt/pattern && sync && cmp -s /mnt/pattern /pattern && rm /mnt/big && sync &&
	fstrim /mnt && umount /mnt && /usr/local/sbin/e2fsck -f -n /dev/$e >/dev/null 2>&1; then
	echo "GT: ext4=ok"
else
	echo "GT: ext4=bad"
fi

# The SCSI CD-ROM: its medium is the pattern.
if dd if=/dev/sr0 bs=2048 count=2048 2>/dev/null | cmp -s - /pattern; then
	echo "GT: cdrom_read=ok"
else
	echo "GT: cdrom_read=bad"
fi
echo "GT: cdrom_driver=$(driver_of sr0)"
echo "GT: mpt_irqs=$(grep -c 'ioc[0-9]' /proc/interrupts)"
sync
echo "GT: done"
poweroff -f
