#!/bin/bash
# bus=ide end to end, two boots of a Debian guest (ata_piix, sd_mod, sr_mod, isofs, ext4):
#  1. a qcow2, a VDI and a 1 GiB raw disk plus an ISO on the CD-ROM (all four IDE positions):
#     a pattern written and read back with O_DIRECT on each disk, mkfs.ext4 + files + e2fsck on
#     the raw disk, the ISO mounted and a file hashed; after poweroff the host proves the data
#     landed (qemu-img compare and minivmm img compare against a reference, cmp, host e2fsck).
#  2. a readonly disk: the guest's write fails, its read works, the image is unchanged.
cd "$(dirname "$0")/../.."
. guest-tests/lib/guest.sh
gt_setup
GT_T=ide
W=$GT_WORK
real_vmm=$(realpath "${GT_MINIVMM:-./minivmm}")

libs() { # -f arguments for a dynamically linked program and its libraries (symlinks resolved:
	# the initramfs builder copies links as links)
	local p=$1 l
	echo "-f $(realpath "$p"):$p"
	for l in $(ldd "$p" | grep -o '/[^ ]*'); do
		echo "-f $(realpath "$l"):$l"
	done
}

# VMM wrapper: guest_start knows no disk options, so they are appended here.

head -c $((4 * 1024 * 1024)) /dev/urandom >"$W/pattern.bin"
mkdir -p "$W/tree"
head -c 700000 /dev/urandom >"$W/tree/random.bin"
xorriso -as mkisofs -quiet -V GTCDROM -o "$W/cd.iso" "$W/tree" 2>/dev/null || {
	gt_fail "ide: xorriso"
	exit 1
}
qemu-img create -q -f qcow2 "$W/d.qcow2" 64M &&
	qemu-img create -q -f vdi "$W/d.vdi" 96M &&
	truncate -s 1G "$W/d.raw" || {
	gt_fail "ide: create the images"
	exit 1
}
cat >"$W/ide.conf" <<CONF
disk qcow2 131072 8
disk vdi 196608 40
disk raw 2097152 1000
ext4 raw 2097152 900
cdrom random.bin
CONF
mods="ata_piix sd_mod sr_mod isofs ext4 crc32c_generic"
# shellcheck disable=SC2046
initramfs_build "$W/init1.cpio" guest-tests/e2e/ide-init.sh -m "$mods" \
	-f "$W/pattern.bin:/pattern.bin" -f "$W/ide.conf:/ide.conf" \
	$(libs "$(command -v mkfs.ext4)") $(libs "$(command -v e2fsck)") || {
	gt_fail "ide: build the initramfs"
	exit 1
}

vm=gt-ide-$$
GT_RUN_ARGS=(--disk "$W/d.qcow2,bus=ide" --disk "$W/d.vdi,bus=ide,format=vdi"
	--disk "$W/d.raw,bus=ide,cache=writeback" --cdrom "$W/cd.iso")
guest_start "$vm" 1 512 "$W/init1.cpio"
if guest_wait "$vm" '^GT: done'; then
	gt_pass "ide: guest ran its disk script"
else
	gt_fail "ide: guest ran its disk script" "no 'GT: done'"
fi
guest_wait_exit "$vm" 300
[ "$GT_RC" = 0 ] && gt_pass "ide: poweroff ends the VMM with exit 0" ||
	gt_fail "ide: poweroff ends the VMM with exit 0" "exit code $GT_RC"

want=$(md5sum <"$W/pattern.bin" | cut -d' ' -f1)
[ "$(guest_value "$vm" piix)" = 1 ] && gt_pass "ide: ata_piix bound the PIIX function" ||
	gt_fail "ide: ata_piix bound the PIIX function" "got '$(guest_value "$vm" piix)'"
for spec in qcow2:8 vdi:40 raw:1000; do
	fmt=${spec%%:*}
	seek=${spec#*:}
	dev=$(guest_value "$vm" "dev_$fmt")
	[ "$(guest_value "$vm" "write_$fmt")" = ok ] && [ "$(guest_value "$vm" "md5_$fmt")" = "$want" ] &&
		gt_pass "ide: $fmt disk ($dev): O_DIRECT pattern written and read back in the guest" ||
		gt_fail "ide: $fmt disk ($dev): O_DIRECT pattern written and read back in the guest" \
			"write=$(guest_value "$vm" "write_$fmt") md5=$(guest_value "$vm" "md5_$fmt")"
done
# The host's view: a reference raw image with the pattern at the same place.
for spec in qcow2:64:8 vdi:96:40; do
	IFS=: read -r fmt mib seek <<<"$spec"
	truncate -s "${mib}M" "$W/ref-$fmt.raw"
	dd if="$W/pattern.bin" of="$W/ref-$fmt.raw" bs=1M seek="$seek" conv=notrunc status=none
	qemu-img compare -q -f raw -F "$fmt" "$W/ref-$fmt.raw" "$W/d.$fmt" &&
		gt_pass "ide: qemu-img compare: the $fmt image holds the guest's data" ||
		gt_fail "ide: qemu-img compare: the $fmt image holds the guest's data"
	"$real_vmm" img compare -f raw -F "$fmt" "$W/ref-$fmt.raw" "$W/d.$fmt" >/dev/null &&
		gt_pass "ide: minivmm img compare: the $fmt image holds the guest's data" ||
		gt_fail "ide: minivmm img compare: the $fmt image holds the guest's data"
	qemu-img check -q "$W/d.$fmt" && gt_pass "ide: qemu-img check of the $fmt image" ||
		gt_fail "ide: qemu-img check of the $fmt image"
done
dd if="$W/d.raw" of="$W/raw-part.bin" bs=1M skip=1000 count=4 status=none
cmp -s "$W/pattern.bin" "$W/raw-part.bin" &&
	gt_pass "ide: raw image holds the pattern at 1000 MiB" ||
	gt_fail "ide: raw image holds the pattern at 1000 MiB"
[ "$(guest_value "$vm" ext4_raw)" = ok ] && gt_pass "ide: mkfs.ext4, files and e2fsck in the guest (1 GiB raw)" ||
	gt_fail "ide: mkfs.ext4, files and e2fsck in the guest (1 GiB raw)" "$(guest_value "$vm" ext4_raw)"
e2fsck -fn "$W/d.raw" >"$W/fsck.log" 2>&1 && gt_pass "ide: host e2fsck accepts the guest's ext4" ||
	gt_fail "ide: host e2fsck accepts the guest's ext4" "$(tail -3 "$W/fsck.log" | tr '\n' ' ')"
cd_want=$(md5sum <"$W/tree/random.bin" | cut -d' ' -f1)
[ "$(guest_value "$vm" cdrom_md5)" = "$cd_want" ] && [ "$(guest_value "$vm" cdrom_label)" = GTCDROM ] &&
	gt_pass "ide: ISO mounted from the CD-ROM, file intact" ||
	gt_fail "ide: ISO mounted from the CD-ROM, file intact" \
		"md5=$(guest_value "$vm" cdrom_md5) label=$(guest_value "$vm" cdrom_label)"
[ "$(guest_value "$vm" ata_errors)" = 0 ] && gt_pass "ide: no ATA errors in the guest's log" ||
	gt_fail "ide: no ATA errors in the guest's log" "$(guest_value "$vm" ata_errors)"

# Boot 2: a readonly disk.
head -c $((16 * 1024 * 1024)) /dev/urandom >"$W/ro.raw"
cp "$W/ro.raw" "$W/ro.orig"
printf 'disk ro 32768 0\n' >"$W/ide.conf"
initramfs_build "$W/init2.cpio" guest-tests/e2e/ide-init.sh -m "$mods" \
	-f "$W/pattern.bin:/pattern.bin" -f "$W/ide.conf:/ide.conf" || {
	gt_fail "ide: build the second initramfs"
	exit 1
}
vm2=gt-ide-ro-$$
GT_RUN_ARGS=(--disk "$W/ro.raw,readonly,bus=ide")
guest_start "$vm2" 1 512 "$W/init2.cpio"
guest_wait "$vm2" '^GT: done' || gt_fail "ide: readonly guest ran its script" "no 'GT: done'"
guest_wait_exit "$vm2" 300
ro_want=$(head -c $((4 * 1024 * 1024)) "$W/ro.orig" | md5sum | cut -d' ' -f1)
[ "$(guest_value "$vm2" write_ro)" = failed ] && gt_pass "ide: readonly disk refuses the guest's write" ||
	gt_fail "ide: readonly disk refuses the guest's write" "write=$(guest_value "$vm2" write_ro)"
[ "$(guest_value "$vm2" md5_ro)" = "$ro_want" ] && gt_pass "ide: readonly disk still reads" ||
	gt_fail "ide: readonly disk still reads" "md5=$(guest_value "$vm2" md5_ro)"
cmp -s "$W/ro.raw" "$W/ro.orig" && gt_pass "ide: readonly image unchanged" ||
	gt_fail "ide: readonly image unchanged"
