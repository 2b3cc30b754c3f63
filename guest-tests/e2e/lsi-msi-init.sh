#!/bin/sh
# /init of test_lsi's MSI guest: mptbase leaves MSI off unless told, so this init loads the Fusion
# modules itself with mpt_msi_enable_spi=1 and mpt_msi_enable_sas=1 (busybox insmod does not read
# module options from the kernel command line), then writes /pattern with O_DIRECT to the disk on
# each HBA (one on bus=scsi, one on bus=sas), reads it back, and reports how /proc/interrupts shows
# the two IOCs.
echo "GT: booted"
for m in mptbase mptscsih mptspi mptsas; do
	opts=""
	[ $m = mptbase ] && opts="mpt_msi_enable_spi=1 mpt_msi_enable_sas=1"
	# shellcheck disable=SC2086 # the options are words
	insmod /lib/mpt/$m.ko $opts || echo "GT: insmod_$m=failed"
done
i=0
while [ $i -lt 120 ] && [ "$(ls -d /sys/block/sd* 2>/dev/null | wc -l)" -lt 2 ]; do
	sleep 1
	i=$((i + 1))
done
echo "GT: disks=$(ls -d /sys/block/sd* 2>/dev/null | wc -l)"
for s in /sys/block/sd*; do
	d=$(basename "$s")
	h=$(readlink -f "$s/device" | sed -n 's|.*/host\([0-9]*\)/.*|\1|p')
	drv=$(cat "/sys/class/scsi_host/host$h/proc_name" 2>/dev/null)
	if dd if=/pattern of=/dev/$d bs=64k seek=16 oflag=direct conv=fsync 2>/dev/null &&
		dd if=/dev/$d bs=64k skip=16 count=16 iflag=direct 2>/dev/null | cmp -s - /pattern; then
		echo "GT: rw_$drv=ok"
	else
		echo "GT: rw_$drv=bad"
	fi
done
grep 'ioc[0-9]' /proc/interrupts | sed 's/^/GT-irq: /'
echo "GT: ioc_lines=$(grep -c 'ioc[0-9]' /proc/interrupts)"
echo "GT: ioc_msi=$(grep 'ioc[0-9]' /proc/interrupts | grep -c 'PCI-MSI')"
# Interrupts taken on the MSI lines (the per-CPU columns).
echo "GT: msi_count=$(grep 'ioc[0-9]' /proc/interrupts | grep 'PCI-MSI' |
	awk '{ for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i } END { print n + 0 }')"
sync
echo "GT: done"
poweroff -f
