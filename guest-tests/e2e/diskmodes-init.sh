#!/bin/sh
# /init of the disk-mode guests: runs the lines of /dm.conf in order, then powers off.  A disk is
# found by its size in sectors; NAME only names the result ("GT: md5_NAME=..."); MIB is an offset in
# MiB (default 1).  All I/O is O_DIRECT, every write ends with fsync (a FLUSH CACHE to the disk).
#   write NAME SECTORS [MIB]   writes /pattern.bin (4 MiB) at MIB, then reports the md5 there
#   read NAME SECTORS [MIB]    reports the md5 of the 4 MiB at MIB
#   reboot SECTORS MIB TOKEN [nowait]
#                              a barrier.  Without TOKEN in the sector at MIB of that disk (the first
#                              boot): writes it there, prints "GT: reboot-ready", waits for a line
#                              on the console (not with nowait) and reboots (reboot -f).  With it (after the reboot):
#                              the lines above the barrier are skipped.  A marker that cannot be
#                              written or read back powers off with "GT: marker=failed", so a
#                              broken disk never makes the guest reboot for ever.
#   cpus NAME                  reports the CPUs Linux brought up as "GT: cpus_NAME=N"
#   echo                       prints "GT: echo-ready", reads a line from the console and prints it
#                              back as "GT: echo=LINE" (the serial input works)
#   churn SECTORS              adds the disk to those of `loop`
#   loop                       prints "GT: loop started", then writes random data at random places
#                              (beyond 16 MiB) of every churn disk for ever, "GT: loop=N" each round
echo "GT: booted"
dev_by_size() {
	for d in /sys/block/sd* /sys/block/vd*; do
		[ -e "$d/size" ] && [ "$(cat "$d/size")" = "$1" ] && basename "$d" && return
	done
}
md5_at() { # DEV MIB
	sum=$(dd if=/dev/$1 bs=1M skip=$2 count=4 iflag=direct 2>/dev/null | md5sum)
	echo "${sum%% *}"
}
marker_read() { # DEV MIB LEN
	dd if=/dev/$1 bs=512 skip=$(($2 * 2048)) count=1 iflag=direct 2>/dev/null | head -c "$3"
}
# The marker decides which boot this is before anything else runs.
skip=0
set -- $(grep '^reboot ' /dm.conf)
if [ $# -ge 4 ]; then
	mdev=$(dev_by_size "$2")
	if [ -n "$mdev" ] && [ "$(marker_read "$mdev" "$3" ${#4})" = "$4" ]; then
		skip=1
		echo "GT: boot=2"
	else
		echo "GT: boot=1"
	fi
fi
churn=""
while read -r op args; do
	set -- $args
	if [ "$skip" = 1 ]; then
		[ "$op" = reboot ] && skip=0
		continue
	fi
	case $op in
	reboot) # SECTORS MIB TOKEN
		mdev=$(dev_by_size "$1")
		{ printf '%s' "$3"; head -c 512 /dev/zero; } | head -c 512 >/tmp/marker
		if [ -z "$mdev" ] ||
			! dd if=/tmp/marker of=/dev/$mdev bs=512 seek=$(($2 * 2048)) count=1 \
				oflag=direct conv=fsync 2>/dev/null ||
			[ "$(marker_read "$mdev" "$2" ${#3})" != "$3" ]; then
			echo "GT: marker=failed (disk of $1 sectors: '$mdev')"
			poweroff -f
		fi
		echo "GT: reboot-ready"
		# the host's go: nothing it checks is left to a race
		[ "$4" = nowait ] || read -r _go </dev/console
		echo "GT: rebooting"
		reboot -f
		echo "GT: reboot=failed"
		poweroff -f
		;;
	cpus) # NAME
		echo "GT: cpus_$1=$(grep -c '^processor' /proc/cpuinfo)"
		;;
	echo)
		echo "GT: echo-ready"
		read -r line </dev/console
		echo "GT: echo=$line"
		;;
	churn) # SECTORS
		dev=$(dev_by_size "$1")
		echo "GT: churn_dev=$dev"
		churn="$churn $dev"
		;;
	loop)
		i=0
		echo "GT: loop started"
		while :; do
			for dev in $churn; do
				# 4 KiB blocks: 1 to 64 of them, anywhere past the checked 16 MiB.
				blocks=$(($(cat /sys/block/$dev/size) / 8 - 4096 - 64))
				seek=$((4096 + (RANDOM * 32768 + RANDOM) % blocks))
				dd if=/dev/urandom of=/dev/$dev bs=4k seek=$seek count=$((1 + RANDOM % 64)) \
					oflag=direct conv=fsync 2>/dev/null || echo "GT: churn_$dev=failed"
			done
			i=$((i + 1))
			echo "GT: loop=$i"
		done
		;;
	write | read) # NAME SECTORS [MIB]
		name=$1 mib=${3:-1}
		dev=$(dev_by_size "$2")
		echo "GT: dev_$name=$dev"
		[ -n "$dev" ] || continue
		if [ "$op" = write ]; then
			if dd if=/pattern.bin of=/dev/$dev bs=1M seek="$mib" oflag=direct conv=fsync \
				2>/dev/null; then
				echo "GT: write_$name=ok"
			else
				echo "GT: write_$name=failed"
			fi
		fi
		echo "GT: md5_$name=$(md5_at "$dev" "$mib")"
		;;
	*)
		echo "GT: bad_line=$op"
		;;
	esac
done </dm.conf
sync
echo "GT: done"
poweroff -f
