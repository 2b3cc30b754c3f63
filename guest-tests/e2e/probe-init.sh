#!/bin/sh
# /init of the probed-raw guests (test_probe_raw.sh): three raw disks found by their size in
# sectors (v 2048, q 81920, r 98304); the phase comes from the kernel command line (gtphase=N).
#   phase 1: tries to turn v into a VMDK descriptor whose extent is a host file (/vmdk.bin) and q
#            into a qcow2 image whose backing file is that host file (/attack.qcow2): first the
#            part outside sector 0 (allowed: the disk still probes as raw), then sector 0, then
#            all of it in one write (both must be refused).  "GT: NAME=ok|refused" per write.
#   phase 2: writes /attack.qcow2 onto r, which the host attached with format=raw (allowed).
#   every phase then reports, per disk, the md5 of its first 64 KiB (head_X) and how many lines
#   of its first MiB hold the host file's marker (secret_X: must stay 0).
# All I/O is O_DIRECT; every write ends with fsync (a FLUSH CACHE).
echo "GT: booted"
phase=$(sed -n 's/.*gtphase=\([0-9]\).*/\1/p' /proc/cmdline)
dev_by_size() {
	for d in /sys/block/sd*; do
		[ "$(cat "$d/size")" = "$1" ] && basename "$d" && return
	done
}
put() { # NAME DEV DD-ARGS...
	name=$1 dev=$2
	shift 2
	if [ -n "$dev" ] && dd of=/dev/$dev oflag=direct conv=fsync,notrunc "$@" 2>/dev/null; then
		echo "GT: $name=ok"
	else
		echo "GT: $name=refused"
	fi
}
v=$(dev_by_size 2048)
q=$(dev_by_size 81920)
r=$(dev_by_size 98304)
echo "GT: devs=$v,$q,$r"
case $phase in
1)
	put vmdk_tail "$v" if=/vmdk.bin bs=512 skip=1 seek=1 count=7
	put vmdk_head "$v" if=/vmdk.bin bs=512 count=1
	put vmdk_all "$v" if=/vmdk.bin bs=4096 count=1
	put qcow2_tail "$q" if=/attack.qcow2 bs=512 skip=1 seek=1
	put qcow2_head "$q" if=/attack.qcow2 bs=512 count=1
	put qcow2_all "$q" if=/attack.qcow2 bs=64k
	;;
2)
	put qcow2_raw "$r" if=/attack.qcow2 bs=64k
	;;
esac
marker=$(cat /marker.txt)
for n in v q r; do
	eval dev=\$$n
	[ -n "$dev" ] || continue
	sum=$(dd if=/dev/$dev bs=64k count=1 iflag=direct 2>/dev/null | md5sum)
	echo "GT: head_$n=${sum%% *}"
	echo "GT: secret_$n=$(dd if=/dev/$dev bs=1M count=1 iflag=direct 2>/dev/null | grep -a -c "$marker")"
done
sync
echo "GT: done"
poweroff -f
