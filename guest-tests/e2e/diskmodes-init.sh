#!/bin/sh
# /init of the disk-mode guests: for each line of /dm.conf "OP NAME SECTORS" finds the disk by its
# size, with OP write writes /pattern.bin at 1 MiB (O_DIRECT), then with any OP reports the md5 of
# those 4 MiB as "GT: md5_NAME=...", and powers off.
echo "GT: booted"
dev_by_size() {
	for d in /sys/block/sd*; do
		[ "$(cat "$d/size")" = "$1" ] && basename "$d" && return
	done
}
while read -r op name sectors; do
	dev=$(dev_by_size "$sectors")
	echo "GT: dev_$name=$dev"
	[ -n "$dev" ] || continue
	if [ "$op" = write ]; then
		if dd if=/pattern.bin of=/dev/$dev bs=1M seek=1 oflag=direct conv=fsync 2>/dev/null; then
			echo "GT: write_$name=ok"
		else
			echo "GT: write_$name=failed"
		fi
	fi
	sum=$(dd if=/dev/$dev bs=1M skip=1 count=4 iflag=direct 2>/dev/null | md5sum)
	echo "GT: md5_$name=${sum%% *}"
done </dm.conf
sync
echo "GT: done"
poweroff -f
