#!/bin/bash
# Firmware boot of a VMDK: the syslinux disk of test_firmware (built without loop devices) made a
# VMDK with `minivmm img convert` boots on AHCI with no --kernel.  (LSI and a VDI on NVMe:
# guest-tests/wip/test_firmware_hba.sh, not yet seen passing; raw on NVMe: test_nvme.sh.)
cd "$(dirname "$0")/../.."
. guest-tests/lib/fwboot.sh
fwboot_setup firmware-ctrl
"$real_vmm" img convert -O vmdk "$W/os.raw" "$W/os.vmdk" || {
	gt_fail "firmware-ctrl: minivmm img convert to VMDK"
	exit 1
}

GT_RUN_ARGS=(--disk "$W/os.vmdk")
fwboot_check gt-fwc-vmdk-$$ 1 "VMDK (minivmm img convert) on AHCI"
