# shellcheck shell=bash
# Builds a real Debian 12 system disk for test guests, without loop devices (sourced, bash; root).
#
#   debian_image_path     the cached raw image for this script, the guest files and the kernel:
#                         build/debian-image/KEY/os.raw (KEY changes when any of them does)
#   debian_image_build    makes debian_image_path if it is missing; needs the Debian mirror
#                         ($GT_DEBIAN_MIRROR, default deb.debian.org), debootstrap, mkinitramfs,
#                         mke2fs, sfdisk, mkfs.fat, mtools and syslinux.  Prints the path.
#
# The image: an MBR (sfdisk, label-id 0x4d564d4d) with a FAT16 /boot (partition 1, active: syslinux,
# the Debian kernel from /boot and a small initrd made by the host's mkinitramfs with MODULES=list)
# and an ext4 root (partition 2, mke2fs -d from a debootstrap --variant=minbase tree with udev,
# systemd-sysv, kmod and procps, the kernel's modules copied from the host).  It boots through
# SeaBIOS to a login prompt on ttyS0 (root, no password); gt-report.service prints what the guest
# sees as "GT: key=value" lines first.  guest-tests/udev/'s CPU-online rule is installed.

GT_LIB=${GT_LIB:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
. "$GT_LIB/initramfs.sh"
. "$GT_LIB/bootdisk.sh"

DEBIAN_IMAGE_SUITE=bookworm
DEBIAN_IMAGE_PACKAGES=systemd-sysv,udev,kmod,procps
# Units that only slow a boot under nested TCG and that no test looks at: timers of maintenance
# jobs, a getty on a VGA console the machine lacks, logind (minbase has no D-Bus, which it needs),
# journal flushes and utmp writes to the disk, pseudo-file systems nothing mounts.  What the tests use stays: udevd and its coldplug (modules, the CPU-online
# rule), journald (volatile), the serial getty, gt-report.
DEBIAN_IMAGE_MASK="apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer
e2scrub_reap.service fstrim.timer systemd-tmpfiles-clean.timer getty@tty1.service
systemd-logind.service systemd-journal-flush.service
systemd-random-seed.service systemd-update-utmp.service systemd-update-utmp-runlevel.service
systemd-pstore.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount
sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount sys-fs-fuse-connections.mount
dev-hugepages.mount dev-mqueue.mount systemd-ask-password-wall.path systemd-ask-password-console.path"
# Module trees no test guest needs: a third of the modules' size.
DEBIAN_IMAGE_SKIP_MODULES="drivers/gpu drivers/media drivers/infiniband drivers/iio drivers/staging
drivers/net/wireless sound"
# Enough for the storage controllers minivmm offers and the root file system.
DEBIAN_IMAGE_INITRD_MODULES="ahci ata_piix sd_mod virtio_pci virtio_blk nvme mptsas ext4"

_debian_image_key() {
	local guest=$GT_LIB/../debian kernel
	kernel=$(gt_kernel)
	{
		cat "${BASH_SOURCE[0]}" "$GT_LIB/bootdisk.sh" "$guest"/* "$GT_LIB"/../udev/*.rules
		echo "$kernel $(stat -c %s "$kernel")"
	} | md5sum | cut -c1-12
}

debian_image_path() {
	echo "$(cd "$GT_LIB/../.." && pwd)/build/debian-image/$(_debian_image_key)/os.raw"
}

# The root tree: debootstrap, then what makes it a test guest.
_debian_image_root() { # ROOT KVER
	local root=$1 kver=$2 guest=$GT_LIB/../debian d
	debootstrap --variant=minbase --include="$DEBIAN_IMAGE_PACKAGES" "$DEBIAN_IMAGE_SUITE" "$root" \
		"${GT_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$root.log" 2>&1 ||
		{ echo "debian_image: debootstrap failed, see $root.log" >&2; return 1; }
	echo mission >"$root/etc/hostname"
	printf 'PARTUUID=4d564d4d-02 / ext4 defaults 0 1\n' >"$root/etc/fstab"
	chroot "$root" passwd -d root >/dev/null || return 1
	for d in $DEBIAN_IMAGE_MASK; do
		ln -sf /dev/null "$root/etc/systemd/system/$d"
	done
	mkdir -p "$root/etc/systemd/journald.conf.d" &&
		printf '[Journal]\nStorage=volatile\n' >"$root/etc/systemd/journald.conf.d/gt-volatile.conf" || return 1
	mkdir -p "$root/etc/udev/rules.d" "$root/usr/local/sbin" "$root/etc/systemd/system/multi-user.target.wants" &&
		cp "$GT_LIB"/../udev/*.rules "$root/etc/udev/rules.d/" &&
		install -m 755 "$guest/gt-report.sh" "$root/usr/local/sbin/gt-report" &&
		cp "$guest/gt-report.service" "$root/etc/systemd/system/" &&
		ln -sf /etc/systemd/system/gt-report.service \
			"$root/etc/systemd/system/multi-user.target.wants/gt-report.service" || return 1
	# The kernel's modules, as the linux-image package would have put them (depmod for the tree).
	mkdir -p "$root/lib/modules" || return 1
	cp -a "/lib/modules/$kver" "$root/lib/modules/" || return 1
	for d in $DEBIAN_IMAGE_SKIP_MODULES; do
		rm -rf "$root/lib/modules/$kver/kernel/$d"
	done
	depmod -b "$root" "$kver" || return 1
	rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*
}

# A small initrd: the host's initramfs-tools with MODULES=list, its modules read from ROOT.
_debian_image_initrd() { # OUT KVER
	local out=$1 kver=$2 conf
	conf=$out.conf
	rm -rf "$conf"
	cp -a /etc/initramfs-tools "$conf" || return 1
	sed -i -e 's/^MODULES=.*/MODULES=list/' -e 's/^COMPRESS=.*/COMPRESS=gzip/' "$conf/initramfs.conf"
	printf '%s\n' $DEBIAN_IMAGE_INITRD_MODULES >"$conf/modules"
	mkinitramfs -d "$conf" -o "$out" "$kver" 2>"$out.log" ||
		{ echo "debian_image: mkinitramfs failed, see $out.log" >&2; return 1; }
	rm -rf "$conf"
}

debian_image_build() {
	local out dir tmp kernel kver root_mib boot_mib=64 total
	# Only the path goes to standard output (callers take it with $(...)); the tools' chatter, such
	# as mke2fs's "Creating regular file", goes to standard error.
	out=$(debian_image_path)
	[ -s "$out" ] && { echo "$out"; return 0; }
	[ "$(id -u)" = 0 ] || { echo "debian_image: debootstrap and mke2fs -d need root" >&2; return 1; }
	dir=$(dirname "$out")
	tmp=$dir.tmp
	rm -rf "$tmp"
	mkdir -p "$tmp" || return 1
	kernel=$(gt_kernel)
	kver=$(gt_kernel_version "$kernel")
	_debian_image_root "$tmp/root" "$kver" >&2 || return 1
	_debian_image_initrd "$tmp/initrd.img" "$kver" >&2 || return 1
	# The root: what the tree holds and half again, for the guest's own writes.
	root_mib=$(($(du -s -m "$tmp/root" | cut -f1) * 3 / 2 + 64))
	mke2fs -q -t ext4 -L gtroot -d "$tmp/root" "$tmp/root.part" "${root_mib}M" >&2 || return 1
	# /boot: syslinux with the kernel and the initrd, as bootdisk_build makes it, then the root
	# partition after it; the disk identifier gives the root its PARTUUID.
	bootdisk_build "$tmp/boot.raw" "$kernel" "$tmp/initrd.img" \
		"root=PARTUUID=4d564d4d-02 ro console=ttyS0 quiet" $((boot_mib + 1)) >&2 || return 1
	total=$((1 + boot_mib + root_mib))
	cp "$tmp/boot.raw" "$tmp/os.raw" && truncate -s "${total}M" "$tmp/os.raw" || return 1
	printf 'label: dos\nlabel-id: 0x4d564d4d\nstart=2048, size=%d, type=6, bootable\nstart=%d, type=83\n' \
		$((boot_mib * 2048)) $(((1 + boot_mib) * 2048)) | sfdisk -q "$tmp/os.raw" >/dev/null 2>&1 || return 1
	dd if="$tmp/root.part" of="$tmp/os.raw" bs=1M seek=$((1 + boot_mib)) conv=notrunc,sparse status=none ||
		return 1
	mkdir -p "$dir" && mv "$tmp/os.raw" "$out" || return 1
	rm -rf "$tmp"
	# Images of earlier keys are stale: a few hundred MiB each.
	find "$(dirname "$dir")" -mindepth 1 -maxdepth 1 ! -name "$(basename "$dir")" -exec rm -rf {} +
	echo "$out"
}
