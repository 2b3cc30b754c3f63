#!/bin/bash
# Firmware boot end to end: no --kernel, SeaBIOS boots what is installed on a disk.
# The disk is built without loop devices (sfdisk, mkfs.fat on a file, mtools, syslinux --install,
# syslinux's MBR): the Debian kernel and a busybox initramfs whose /init reports and powers off.
#  1. raw on AHCI (the default bus), 2 vCPUs: the guest comes up, sees both CPUs and minivmm's own
#     ACPI tables (DSDT/MADT/FACP with OEM ID MINVMM, handed over by the table-loader), the BIOS
#     console is on the serial port, poweroff ends the VMM with 0;
#  2. the same raw image on IDE;
#  3. a qcow2 made with `minivmm img convert`, --boot disk;
#  4. the mission's line: a VDI made with `minivmm img convert` (immutable) and a qcow2 data disk
#     (writethrough), 4 vCPUs; the VDI is unchanged afterwards;
#  5. an empty disk: "no bootable device" and a non-zero exit, bounded;
#  6. --boot cdrom with only a hard disk: the boot order is honoured (nothing to boot);
#  7. an ISOLINUX CD (xorriso, El Torito no emulation) on AHCI beside the bootable disk with
#     --boot order=cdrom,disk boots from the CD; 8. the same CD alone on IDE, default order.
# (VMDK: test_firmware_ctrl.sh; LSI: guest-tests/wip/test_firmware_lsi.sh, not yet passing; NVMe:
# test_nvme.sh; virtio-blk and a reboot in place:
# test_firmware_reboot.sh.)
cd "$(dirname "$0")/../.."
. guest-tests/lib/fwboot.sh
fwboot_setup firmware
bootiso_build "$W/boot.iso" "$(gt_kernel)" "$W/init.cpio" "$FWBOOT_APPEND gt_fromcd" || {
	gt_fail "firmware: build the bootable ISO (xorriso, isolinux)"
	exit 1
}
gt_pass "firmware: bootable disk built without loop devices"

vm=gt-fw-ahci-$$
GT_RUN_ARGS=(--disk "$W/os.raw")
fwboot_check "$vm" 2 "raw on AHCI"
[ "$(guest_value "$vm" dsdt_oem)" = MINVMM ] && [ "$(guest_value "$vm" madt_oem)" = MINVMM ] &&
	[ "$(guest_value "$vm" facp_oem)" = MINVMM ] &&
	gt_pass "firmware: the guest sees minivmm's ACPI tables (table-loader)" ||
	gt_fail "firmware: the guest sees minivmm's ACPI tables (table-loader)" \
		"dsdt=$(guest_value "$vm" dsdt_oem) madt=$(guest_value "$vm" madt_oem) facp=$(guest_value "$vm" facp_oem)"
[ "$(guest_value "$vm" smbios)" = minivmm ] && gt_pass "firmware: the guest sees minivmm's SMBIOS tables" ||
	gt_fail "firmware: the guest sees minivmm's SMBIOS tables" "sys_vendor=$(guest_value "$vm" smbios)"
tr -d '\r' <"$W/$vm.console" | grep -a -q 'SeaBIOS (version' &&
	gt_pass "firmware: the BIOS console is on the serial port" ||
	gt_fail "firmware: the BIOS console is on the serial port" "no 'SeaBIOS (version' on the console"

vm=gt-fw-ide-$$
GT_RUN_ARGS=(--disk "$W/os.raw,bus=ide")
fwboot_check "$vm" 1 "raw on IDE"

"$real_vmm" img convert -O qcow2 "$W/os.raw" "$W/os.qcow2" &&
	"$real_vmm" img convert -O vdi "$W/os.raw" "$W/os.vdi" || {
	gt_fail "firmware: minivmm img convert to qcow2 and VDI"
	exit 1
}
vm=gt-fw-qcow2-$$
GT_RUN_ARGS=(--disk "$W/os.qcow2" --boot disk)
fwboot_check "$vm" 1 "qcow2 on AHCI, --boot disk"

qemu-img create -q -f qcow2 "$W/data.qcow2" 64M
vdi_md5=$(gt_md5 "$W/os.vdi")
vm=gt-fw-vdi-$$
GT_RUN_ARGS=(--disk "$W/os.vdi,immutable" --disk "$W/data.qcow2,writethrough")
fwboot_check "$vm" 4 "os.vdi,immutable + data.qcow2,writethrough, 4 vCPUs"
[ "$(gt_md5 "$W/os.vdi")" = "$vdi_md5" ] && gt_pass "firmware: the immutable VDI is unchanged" ||
	gt_fail "firmware: the immutable VDI is unchanged"

# No bootable device: the message and a non-zero exit, not SeaBIOS's endless reboot loop.
truncate -s 16M "$W/empty.raw"
nobootcheck() {
	local name=$1 title=$2
	guest_start_fw "$name" 1 256
	guest_wait_exit "$name" 300
	if [ "$GT_RC" != 0 ] && [ "$GT_RC" != 124 ] && grep -q '^minivmm: no bootable device$' "$W/$name.stderr"; then
		gt_pass "firmware: $title: 'no bootable device' and exit $GT_RC"
	else
		gt_fail "firmware: $title: 'no bootable device' and a non-zero exit" \
			"exit $GT_RC, stderr: $(head -c 300 "$W/$name.stderr")"
	fi
}
GT_RUN_ARGS=(--disk "$W/empty.raw")
nobootcheck gt-fw-empty-$$ "empty disk"
GT_RUN_ARGS=(--disk "$W/os.raw" --boot cdrom)
nobootcheck gt-fw-order-$$ "--boot cdrom with only a hard disk"

# CD-ROM boot (El Torito): ATAPI on AHCI first in the order, then alone on IDE by default.
vm=gt-fw-cd-ahci-$$
GT_RUN_ARGS=(--disk "$W/os.raw" --cdrom "$W/boot.iso,bus=sata" --boot order=cdrom,disk)
fwboot_check "$vm" 1 "ISO on AHCI, --boot order=cdrom,disk"
[ "$(guest_value "$vm" fromcd)" = 1 ] && gt_pass "firmware: the CD booted first" ||
	gt_fail "firmware: the CD booted first" "fromcd=$(guest_value "$vm" fromcd)"
vm=gt-fw-cd-ide-$$
GT_RUN_ARGS=(--cdrom "$W/boot.iso")
fwboot_check "$vm" 1 "ISO on IDE, default order"
[ "$(guest_value "$vm" fromcd)" = 1 ] && gt_pass "firmware: booted from the IDE CD" ||
	gt_fail "firmware: booted from the IDE CD" "fromcd=$(guest_value "$vm" fromcd)"
