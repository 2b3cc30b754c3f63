#!/bin/sh
# /init of the live-snapshot guest. Three SATA disks told apart by size (n 32 MiB, r 40 MiB,
# wt 48 MiB). At boot it reports the md5 of 1..5 MiB of each; with gt_write on the kernel command
# line it then writes /p1.bin there. A background loop keeps writing random data at 8 MiB of every
# disk (requests in flight while the host pauses and snapshots) until /tmp/stop exists; then the
# console is a shell the host types into (/gt.sh write FILE | md5).
echo "GT: booted"
cat >/gt.sh <<'SH'
dev() { for d in /sys/block/sd*; do [ "$(cat $d/size)" = "$1" ] && basename $d && return; done; }
for x in n:65536 r:81920 wt:98304; do
	name=${x%%:*}
	d=$(dev ${x#*:})
	[ -n "$d" ] || { echo "GT: dev_$name=missing"; continue; }
	case $1 in
	write) dd if="$2" of=/dev/$d bs=1M seek=1 oflag=direct conv=fsync 2>/dev/null ||
		echo "GT: write_$name=failed" ;;
	md5) s=$(dd if=/dev/$d bs=1M skip=1 count=4 iflag=direct 2>/dev/null | md5sum)
		echo "GT: md5_$name=${s%% *}" ;;
	devs) echo $d ;;
	esac
done
SH
# SCSI scanning is asynchronous: wait (bounded) for the three disks.
i=0
while [ $i -lt 100 ] && [ "$(sh /gt.sh devs | wc -l)" -lt 3 ]; do
	sleep 0.2
	i=$((i + 1))
done
sh /gt.sh md5
if grep -q gt_write /proc/cmdline; then
	sh /gt.sh write /p1.bin
	sh /gt.sh md5
fi
(
	devs=$(sh /gt.sh devs)
	while [ ! -e /tmp/stop ]; do
		for d in $devs; do
			dd if=/dev/urandom of=/dev/$d bs=64k seek=128 count=16 oflag=direct 2>/dev/null
		done
	done
	echo "GT: loop_stopped"
) &
echo "GT: ready"
exec sh
