#!/bin/sh
# /init.main of the level-1 guest (QEMU TCG, -cpu max): makes /dev/kvm, mounts the host's root read-only
# over 9p, chroots into it and runs the command the host left in the writable share, with its
# output on the second serial port.  Modules were loaded by the generic /init.
share=
cwd=/
beat=5
cache=
for w in $(cat /proc/cmdline); do
	case $w in
	gt.share=*) share=${w#gt.share=} ;;
	gt.cwd=*) cwd=${w#gt.cwd=} ;;
	gt.beat=*) beat=${w#gt.beat=} ;;
	gt.cache=*) cache=${w#gt.cache=} ;;
	esac
done
say() { echo "level1: $*"; }
finish() { # $1 exit code of the command
	[ -n "$share" ] && [ -d "/host$share" ] && echo "$1" >"/host$share/rc"
	sync
	poweroff -f
}
[ -c /dev/kvm ] || { say "no /dev/kvm (kvm-amd did not load)"; finish 125; }
opts=trans=virtio,version=9p2000.L,msize=262144
# The read-only shares are cached in level 1 (gt.cache=loose, the default: the host's files do not
# change under a test, and each uncached stat/open/read is a 9p round trip through TCG); the results
# share never is (the host reads the heartbeat and exit code as they come).
ro=$opts,ro
[ -z "$cache" ] || [ "$cache" = none ] || ro=$ro,cache=$cache
mkdir -p /host
mount -t 9p -o "$ro" hostroot /host || { say "cannot mount the host root"; finish 125; }
mount -t tmpfs -o mode=1777 tmpfs /host/tmp
mount -t tmpfs -o mode=1777 tmpfs /host/var/tmp
mount -t tmpfs -o mode=755 tmpfs /host/run
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts -o ptmxmode=666 devpts /host/dev/pts
mount -t tmpfs tmpfs /host/dev/shm
# The share sits under /tmp on the host (mktemp), so its mount point can be made in the tmpfs.
mkdir -p "/host$share" && mount -t 9p -o "$opts" results "/host$share" || {
	say "cannot mount the results share $share"
	finish 125
}
# The current directory, shared on its own: it may lie under one of the tmpfs above.
mkdir -p "/host$cwd" && mount -t 9p -o "$ro" cwd "/host$cwd" || {
	say "cannot mount the current directory $cwd"
	finish 125
}
# The heartbeat the host watches (level1.sh, _level1_watch): a counter bumped every $beat seconds.
# It stops when level 1 freezes (a CPU spinning with interrupts off, a lost wake-up), which its
# console alone does not always tell.
(
	n=0
	while :; do
		n=$((n + 1))
		echo "$n" >"/host$share/heartbeat"
		sleep "$beat"
	done
) </dev/null >/dev/null 2>&1 &
# Raw line discipline: bytes pass unchanged both ways (the level-2 console does its own echo).
stty -F /dev/ttyS1 raw -echo
[ -f "/host$share/interactive" ] && stty -F /dev/ttyS1 opost onlcr
chroot /host /bin/sh -c 'cd "$1" && . "$2/env" && exec /bin/sh "$2/cmd"' level1 "$cwd" "$share" \
	</dev/ttyS1 >/dev/ttyS1 2>&1
finish $?
