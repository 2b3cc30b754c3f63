#!/bin/sh
# Runs once at boot in the Debian test image (gt-report.service, before the serial getty): what the
# guest sees of its machine, as "GT: key=value" lines on the serial console (guest-tests/lib/guest.sh).
cpu=/sys/devices/system/cpu
{
	# A line of its own first: what was written before may have left the cursor mid-line.
	echo
	echo "GT: os=$(. /etc/os-release && echo "$ID-$VERSION_ID")"
	echo "GT: init=$(cat /proc/1/comm)"
	echo "GT: root=$(findmnt -n -o SOURCE /)"
	echo "GT: root_partuuid=$(findmnt -n -o PARTUUID /)"
	echo "GT: possible=$(cat $cpu/possible)"
	echo "GT: present=$(cat $cpu/present)"
	echo "GT: online=$(cat $cpu/online)"
	echo "GT: memtotal_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
	echo "GT: balloon_driver=$(ls /sys/bus/virtio/drivers/virtio_balloon 2>/dev/null | grep -c virtio)"
	echo "GT: disks=$(lsblk -d -n -o NAME | tr '\n' ',')"
	echo "GT: udev_cpu_rule=$(ls /etc/udev/rules.d/ | grep -c minivmm-cpu-online)"
	echo "GT: report-done"
} >/dev/ttyS0
