#!/bin/sh
# /init of the balloon e2e guest (virtio_pci, virtio_balloon): a tmpfs over most of RAM to fill,
# then a shell the host types steps into: sh /gt.sh STEP [MIB].  Each prints "GT: key=value" lines.
#   mem           MemTotal, MemFree, MemAvailable in MiB
#   hold MIB      write MIB of zeroes into /mnt/hold (kept; RAM the guest really uses)
#   release       remove /mnt/hold (the RAM is free again in the guest)
#   same MIB      MIB of one repeated 4 KiB page into /mnt/same (for KSM)
#   oom           how many processes the guest's OOM killer has killed
#   balloon       the driver's features (bit 2 DEFLATE_ON_OOM, bit 5 REPORTING)
echo "GT: booted"
mkdir -p /mnt
mount -t tmpfs -o size=95% tmpfs /mnt
cat >/gt.sh <<'SH'
case $1 in
mem)
	awk '/^MemTotal:/ { t = $2 } /^MemFree:/ { f = $2 } /^MemAvailable:/ { a = $2 }
	     END { printf "GT: memtotal=%d\nGT: memfree=%d\nGT: memavail=%d\n", t / 1024, f / 1024, a / 1024 }' /proc/meminfo ;;
hold)
	if dd if=/dev/zero of=/mnt/hold bs=1M count="$2" 2>/dev/null; then echo "GT: hold_$2=ok"; else echo "GT: hold_$2=failed"; fi ;;
release)
	rm -f /mnt/hold
	echo "GT: released=1" ;;
same)
	# "abcdefg\n" repeated: every 4 KiB page of the file is the same.  One MiB of it made once, then
	# copied MIB times by one cat: yes | head for all of it costs minutes of nested TCG (a stdio
	# call per 8 bytes), the copies are the kernel's.
	[ -s /tmp/same1m ] || yes abcdefg | head -c 1048576 >/tmp/same1m
	set -- "$2"
	i=0
	while [ $i -lt "$1" ]; do set -- "$@" /tmp/same1m; i=$((i + 1)); done
	n=$1
	shift
	if cat "$@" >/mnt/same && [ "$(stat -c %s /mnt/same)" = $((n << 20)) ]; then echo "GT: same=ok"; else echo "GT: same=failed"; fi ;;
oom)
	echo "GT: oom_kills=$(dmesg | grep -c -i 'killed process')" ;;
balloon)
	for d in /sys/bus/virtio/devices/*; do
		[ "$(cat $d/device)" = 0x0005 ] && echo "GT: balloon_features=$(cat $d/features)"
	done ;;
esac
SH
echo "GT: ready"
exec sh
