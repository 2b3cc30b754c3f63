#!/bin/bash
# Firmware boot through the controllers SeaBIOS drives itself besides ATA (test_firmware.sh) and
# NVMe (test_nvme.sh): the syslinux disk of test_firmware (built without loop devices) boots with
# no --kernel
#  1. as a VMDK made with `minivmm img convert`, on AHCI;
#  2. raw on the LSI 53C1030 (bus=scsi), through SeaBIOS's mpt-scsi driver;
#  3. as a qcow2 on the LSI SAS1068 (bus=sas), the same driver.
cd "$(dirname "$0")/../.."
. guest-tests/lib/guest.sh
. guest-tests/lib/bootdisk.sh
. guest-tests/lib/fwboot.sh
gt_setup
W=$GT_WORK
real_vmm=$(realpath "${GT_MINIVMM:-./minivmm}")

initramfs_build "$W/init.cpio" guest-tests/e2e/fwboot-init.sh -z &&
	bootdisk_build "$W/os.raw" "$(gt_kernel)" "$W/init.cpio" "console=ttyS0 quiet panic=-1 gt_fwboot" || {
	gt_fail "firmware-ctrl: build the bootable disk (sfdisk, mkfs.fat, mtools, syslinux)"
	exit 1
}
"$real_vmm" img convert -O vmdk "$W/os.raw" "$W/os.vmdk" &&
	"$real_vmm" img convert -O qcow2 "$W/os.raw" "$W/os.qcow2" || {
	gt_fail "firmware-ctrl: minivmm img convert to VMDK and qcow2"
	exit 1
}

GT_RUN_ARGS=(--disk "$W/os.vmdk")
fwboot_check gt-fwc-vmdk-$$ 1 "VMDK (minivmm img convert) on AHCI"
GT_RUN_ARGS=(--disk "$W/os.raw,bus=scsi")
fwboot_check gt-fwc-scsi-$$ 1 "raw on LSI 53C1030 (bus=scsi)"
GT_RUN_ARGS=(--disk "$W/os.qcow2,bus=sas")
fwboot_check gt-fwc-sas-$$ 1 "qcow2 on LSI SAS1068 (bus=sas)"
