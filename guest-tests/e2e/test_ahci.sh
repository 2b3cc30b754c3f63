#!/bin/bash
# AHCI end to end: a Linux guest (ahci, sd_mod, sr_mod, isofs, ext4 modules) with SATA drives on
# one AHCI controller: a raw, a qcow2 and a VDI disk (4 MiB pattern written and read back with
# O_DIRECT, then compared on the host with qemu-img compare and minivmm img compare), a read-only disk that refuses writes,
# a 1 GiB disk formatted ext4 and checked with e2fsck, and an ISO on a SATA CD-ROM. The ahci
# interrupt must be an MSI. One boot for everything: inside level 1 (TCG) boots are dear.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
gt_setup
vm=gt-ahci-$$
W=$GT_WORK

# guest_start with the drives as extra VMM arguments.
ahci_guest_start() {
	local name=$1 initrd=$2 append=$3
	shift 3
	GT_RUN_ARGS=("$@")
	guest_start "$name" 2 512 "$initrd" "$append"
}

head -c $((4 << 20)) /dev/urandom >"$W/pattern"
# The expected content of every pattern disk: 64 MiB of zeroes with the pattern at 1 MiB.
truncate -s 64M "$W/ref.raw"
dd if="$W/pattern" of="$W/ref.raw" bs=1M seek=1 conv=notrunc status=none
truncate -s 64M "$W/disk.raw"
qemu-img create -q -f qcow2 "$W/disk.qcow2" 64M
qemu-img create -q -f vdi "$W/disk.vdi" 64M
head -c $((16 << 20)) /dev/urandom >"$W/ro.raw"
cp "$W/ro.raw" "$W/ro.orig"
truncate -s 1G "$W/ext4.raw"
mkdir -p "$W/iso"
echo "hello-from-sata-cdrom" >"$W/iso/hello.txt"
cp "$W/pattern" "$W/iso/pattern"
xorriso -as mkisofs -quiet -o "$W/cd.iso" "$W/iso" 2>/dev/null || {
	gt_fail "ahci: build the ISO (xorriso)"
	exit 1
}

files=(-f "$W/pattern:/pattern")
for b in /sbin/mke2fs /sbin/e2fsck; do
	files+=(-f "$b:/usr/local/sbin/$(basename "$b")")
	for lib in $(ldd "$b" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
		files+=(-f "$(readlink -f "$lib"):$lib")
	done
done
initramfs_build "$W/init.cpio" guest-tests/e2e/ahci-init.sh \
	-m "ahci sd_mod sr_mod isofs ext4 crc32c_generic" "${files[@]}" || {
	gt_fail "ahci: build the initramfs"
	exit 1
}

roles=(raw ro ext4 cd qcow2 vdi)
drives=(--disk "$W/disk.raw,bus=sata,format=raw" --disk "$W/ro.raw,readonly,bus=sata,format=raw"
	--disk "$W/ext4.raw,bus=sata,format=raw" --cdrom "$W/cd.iso,bus=sata"
	--disk "$W/disk.qcow2,bus=sata,format=qcow2" --disk "$W/disk.vdi,bus=sata,format=vdi")
ahci_guest_start "$vm" "$W/init.cpio" "gt_ahci=$(IFS=,; echo "${roles[*]}")" "${drives[@]}"
if ! guest_wait "$vm" '^GT: booted' && grep -q -i -E 'qcow2|vdi' "$W/$vm.stderr"; then
	# This build lacks a format driver: say so, and test the rest.
	gt_fail "ahci: qcow2 and VDI disks" "$(head -1 "$W/$vm.stderr")"
	guest_wait_exit "$vm" 30
	vm=$vm-b
	roles=(raw ro ext4 cd)
	ahci_guest_start "$vm" "$W/init.cpio" "gt_ahci=$(IFS=,; echo "${roles[*]}")" "${drives[@]:0:8}"
fi
if ! guest_wait "$vm" '^GT: done'; then
	gt_fail "ahci: guest ran its checks" "no 'GT: done' on the console"
	exit 1
fi
guest_wait_exit "$vm" 300
if [ "$GT_RC" = 0 ]; then gt_pass "ahci: guest powered off (exit 0)"; else gt_fail "ahci: guest powered off" "exit $GT_RC"; fi

v() { guest_value "$vm" "$1"; }
if [ "$(v devices)" = "${#roles[@]}/${#roles[@]}" ]; then
	gt_pass "ahci: every port has its drive"
else
	gt_fail "ahci: every port has its drive" "devices=$(v devices)"
fi
if [ "$(v ahci_msi)" -ge 1 ] 2>/dev/null && [ "$(v ahci_irqs)" -gt 0 ] 2>/dev/null; then
	gt_pass "ahci: interrupts are MSI"
else
	gt_fail "ahci: interrupts are MSI" "msi=$(v ahci_msi) irqs=$(v ahci_irqs)"
fi
if [ "$(v ncq_depth)" = 32 ]; then
	gt_pass "ahci: NCQ depth 32"
else
	gt_fail "ahci: NCQ depth 32" "depth=$(v ncq_depth)"
fi
for r in "${roles[@]}"; do
	case $r in
	raw | qcow2 | vdi)
		fmt=$r
		img=$W/disk.$r
		if [ "$(v "rw_$r")" = ok ] && qemu-img compare -q -f "$fmt" -F raw "$img" "$W/ref.raw" &&
			"$GT_MINIVMM" img compare -f "$fmt" -F raw "$img" "$W/ref.raw" >/dev/null; then
			gt_pass "ahci: $r disk: O_DIRECT pattern out and back, image matches on the host"
		else
			gt_fail "ahci: $r disk: O_DIRECT pattern out and back, image matches on the host" \
				"guest rw_$r=$(v "rw_$r"); qemu-img compare: $(qemu-img compare -f "$fmt" -F raw "$img" "$W/ref.raw" 2>&1 | head -1)"
		fi
		;;
	ro)
		if [ "$(v ro_read)" = ok ] && [ "$(v ro_write)" = refused ] && cmp -s "$W/ro.raw" "$W/ro.orig"; then
			gt_pass "ahci: read-only disk reads and refuses writes"
		else
			gt_fail "ahci: read-only disk reads and refuses writes" "read=$(v ro_read) write=$(v ro_write)"
		fi
		;;
	ext4)
		if [ "$(v ext4)" = ok ] && e2fsck -f -n "$W/ext4.raw" >/dev/null 2>&1; then
			gt_pass "ahci: mkfs.ext4, mount, write, e2fsck on a 1 GiB disk (and e2fsck on the host)"
		else
			gt_fail "ahci: mkfs.ext4, mount, write, e2fsck on a 1 GiB disk" "guest ext4=$(v ext4)"
		fi
		;;
	cd)
		if [ "$(v cd_text)" = hello-from-sata-cdrom ] && [ "$(v cd_pattern)" = ok ]; then
			gt_pass "ahci: ISO mounts from the SATA CD-ROM"
		else
			gt_fail "ahci: ISO mounts from the SATA CD-ROM" "cd_text=$(v cd_text)"
		fi
		;;
	esac
done
