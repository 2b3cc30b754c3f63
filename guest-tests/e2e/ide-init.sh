#!/bin/sh
# /init of the IDE guests: finds each disk by its size in sectors, writes /pattern.bin with O_DIRECT
# and reads it back, builds and checks an ext4 file system, mounts the CD-ROM and hashes its file,
# then powers off. Results are "GT: key=value" lines; what to do comes from /ide.conf:
#   disk NAME SECTORS SEEK_MIB      pattern test (NAME is a label: qcow2, vdi, raw, ro ...)
#   ext4 NAME SECTORS SIZE_MIB      mkfs.ext4 on the first SIZE_MIB, files, umount, e2fsck
#   cdrom FILE                      mount /dev/sr0 and md5 FILE
echo "GT: booted"
dev_by_size() {
	for d in /sys/block/sd*; do
		[ "$(cat "$d/size")" = "$1" ] && basename "$d" && return
	done
}
while read -r kind name a b; do
	case $kind in
	disk)
		dev=$(dev_by_size "$a")
		echo "GT: dev_$name=$dev"
		[ -n "$dev" ] || continue
		if dd if=/pattern.bin of=/dev/$dev bs=1M seek="$b" oflag=direct conv=fsync 2>/dev/null; then
			echo "GT: write_$name=ok"
		else
			echo "GT: write_$name=failed"
		fi
		sum=$(dd if=/dev/$dev bs=1M skip="$b" count=4 iflag=direct 2>/dev/null | md5sum)
		echo "GT: md5_$name=${sum%% *}"
		;;
	ext4)
		dev=$(dev_by_size "$a")
		echo "GT: dev_$name=$dev"
		mkdir -p /mnt
		if mkfs.ext4 -q -F /dev/$dev "${b}M" && mount -t ext4 /dev/$dev /mnt &&
			cp /pattern.bin /mnt/p1 && mkdir /mnt/d && cp /pattern.bin /mnt/d/p2 && sync &&
			umount /mnt && e2fsck -fn /dev/$dev >/tmp/fsck.log 2>&1; then
			echo "GT: ext4_$name=ok"
		else
			echo "GT: ext4_$name=failed"
			sed 's/^/GT-FSCK: /' /tmp/fsck.log | tail -5
		fi
		;;
	cdrom)
		mkdir -p /cdrom
		if mount -t iso9660 -o ro /dev/sr0 /cdrom; then
			sum=$(md5sum "/cdrom/$name")
			echo "GT: cdrom_md5=${sum%% *}"
			# The volume id, straight from the primary volume descriptor (block 16, byte 40).
			echo "GT: cdrom_label=$(dd if=/dev/sr0 bs=2048 skip=16 count=1 2>/dev/null |
				dd bs=1 skip=40 count=32 2>/dev/null | tr -d ' ')"
			umount /cdrom
		else
			echo "GT: cdrom_md5=mount-failed"
		fi
		;;
	esac
done </ide.conf
echo "GT: piix=$(ls /sys/bus/pci/drivers/ata_piix 2>/dev/null | grep -c :)"
echo "GT: ata_errors=$(dmesg | grep -c -E 'ata[0-9.]+: (exception|failed command|hard resetting)|timeout')"
dmesg | grep -E 'ata[0-9.]+: (exception|failed command)|timeout' | head -5 | sed 's/^/GT-DMESG: /'
sync
echo "GT: done"
poweroff -f
