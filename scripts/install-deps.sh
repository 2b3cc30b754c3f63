#!/bin/sh
# Installs, from Debian's archive, every package minivmm's build, tests, demo and benchmarks use.
# Does nothing when all are present; needs root (or sudo) otherwise.
set -e
PKGS="build-essential pkg-config liburing-dev zlib1g-dev libzstd-dev libjson-c-dev libseccomp-dev
libfdt-dev libcmocka-dev linux-libc-dev qemu-system-x86 qemu-utils linux-image-amd64 busybox-static
cpio seabios xorriso e2fsprogs kmod util-linux acpica-tools xz-utils zstd syslinux syslinux-common
mtools dosfstools fdisk isolinux ovmf systemd-boot-efi fio clang-14 libclang-rt-14-dev debootstrap
initramfs-tools"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
