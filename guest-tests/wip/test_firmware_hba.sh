#!/bin/bash
# NOT YET SEEN PASSING (guest-tests/wip/, out of make check).  Where it stands (2026-12-07): the
# emulated IOC no longer faults on SeaBIOS's requests (IOC INIT with a 4-byte reply frame is taken,
# tests/device/test_lsi_seabios.c); SeaBIOS scans the HBA, reads the MBR, the boot sector and
# ldlinux.sys through it and SYSLINUX prints its banner, then in level 1 nothing more comes within
# the 600 s wait (no kernel), on bus=scsi (the AHCI VMDK boot, now test_firmware_ctrl, passed
# before it).  Level 1, 2026-12-07 17:47 (fw branch, MINIVMM_LOG=debug): the VDI on NVMe boots to
# /init; bus=scsi still stops after the banner although every SCSI IO after "Booting from
# 0000:7c00" succeeded (no error reply, no IOC fault logged) and polled requests now complete on
# the vCPU; ldlinux.c32's second banner never comes.  bus=sas not seen yet.
# Firmware boot through the other controllers SeaBIOS drives itself: the syslinux disk of
# test_firmware (fwboot_disk_build, built without loop devices) boots with no --kernel
#  1. as a VDI on NVMe, namespace 1 of a controller with an empty namespace 2 beside it;
#  2. raw on the LSI 53C1030 (bus=scsi; SeaBIOS's mpt-scsi driver: IOC INIT with a 4-byte reply
#     frame, no PORT ENABLE, polled SCSI IO);
#  3. as a qcow2 on the LSI SAS1068 (bus=sas);
# (raw, qcow2 and VDI on AHCI, raw on IDE, CDs: test_firmware.sh; VMDK on AHCI:
# test_firmware_ctrl.sh; VMDK on virtio-blk across a reboot: test_firmware_reboot.sh.)
cd "$(dirname "$0")/../.."
. guest-tests/lib/fwboot.sh
fwboot_setup firmware-hba
for fmt in qcow2 vdi; do
	"$real_vmm" img convert -O $fmt "$W/os.raw" "$W/os.$fmt" || {
		gt_fail "firmware-hba: minivmm img convert to $fmt"
		exit 1
	}
done

truncate -s 16M "$W/empty.raw"
GT_RUN_ARGS=(--disk "$W/os.vdi,bus=nvme" --disk "$W/empty.raw,bus=nvme,format=raw")
fwboot_check gt-fwc-nvme-$$ 1 "VDI on NVMe namespace 1 (an empty namespace 2 beside it)"
GT_RUN_ARGS=(--disk "$W/os.raw,bus=scsi,format=raw")
fwboot_check gt-fwc-scsi-$$ 1 "raw on LSI 53C1030 (bus=scsi)"
GT_RUN_ARGS=(--disk "$W/os.qcow2,bus=sas")
fwboot_check gt-fwc-sas-$$ 1 "qcow2 on LSI SAS1068 (bus=sas)"
for fmt in qcow2 vdi; do
	qemu-img check -q -f $fmt "$W/os.$fmt" && gt_pass "firmware-hba: the $fmt image is qemu-img check clean" ||
		gt_fail "firmware-hba: the $fmt image is qemu-img check clean"
done
