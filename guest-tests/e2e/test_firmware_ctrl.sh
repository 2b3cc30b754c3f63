#!/bin/bash
# Firmware boot through the other controllers SeaBIOS drives itself: the syslinux disk of
# test_firmware (fwboot_disk_build, built without loop devices) boots with no --kernel
#  1. as a VMDK (`minivmm img convert`) on AHCI;
#  2. raw on the LSI 53C1030 (bus=scsi; SeaBIOS's mpt-scsi driver: IOC INIT with a 4-byte reply
#     frame, no PORT ENABLE, polled SCSI IO);
#  3. as a qcow2 on the LSI SAS1068 (bus=sas);
#  4. as a VDI on NVMe, namespace 1 of a controller with an empty namespace 2 beside it.
# (raw, qcow2 and VDI on AHCI, raw on IDE, CDs: test_firmware.sh; VMDK on virtio-blk across a
# reboot: test_firmware_reboot.sh.)
cd "$(dirname "$0")/../.."
. guest-tests/lib/guest.sh
. guest-tests/lib/bootdisk.sh
. guest-tests/lib/fwboot.sh
gt_setup
W=$GT_WORK
real_vmm=$(realpath "${GT_MINIVMM:-./minivmm}")

fwboot_disk_build "$W" || {
	gt_fail "firmware-ctrl: build the bootable disk (sfdisk, mkfs.fat, mtools, syslinux)"
	exit 1
}
for fmt in vmdk qcow2 vdi; do
	"$real_vmm" img convert -O $fmt "$W/os.raw" "$W/os.$fmt" || {
		gt_fail "firmware-ctrl: minivmm img convert to $fmt"
		exit 1
	}
done

GT_RUN_ARGS=(--disk "$W/os.vmdk")
fwboot_check gt-fwc-vmdk-$$ 1 "VMDK (minivmm img convert) on AHCI"
GT_RUN_ARGS=(--disk "$W/os.raw,bus=scsi")
fwboot_check gt-fwc-scsi-$$ 1 "raw on LSI 53C1030 (bus=scsi)"
GT_RUN_ARGS=(--disk "$W/os.qcow2,bus=sas")
fwboot_check gt-fwc-sas-$$ 1 "qcow2 on LSI SAS1068 (bus=sas)"
truncate -s 16M "$W/empty.raw"
GT_RUN_ARGS=(--disk "$W/os.vdi,bus=nvme" --disk "$W/empty.raw,bus=nvme,format=raw")
fwboot_check gt-fwc-nvme-$$ 1 "VDI on NVMe namespace 1 (an empty namespace 2 beside it)"
for fmt in qcow2 vdi vmdk; do
	qemu-img check -q -f $fmt "$W/os.$fmt" && gt_pass "firmware-ctrl: the $fmt image is qemu-img check clean" ||
		gt_fail "firmware-ctrl: the $fmt image is qemu-img check clean"
done
