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
# Level 1, 2026-12-07 20:41 (lsi branch, wip/diag_lsi.sh: MINIVMM_LOG=debug,trace=lsi, bus=scsi,
# raw): after the banner SYSLINUX reads the VBR and FAT (LBA 2048, 2244, 2070), ldlinux.c32 (LBA
# 20812-21045 in four READ(10)s of 32, 127, 72 and 3 sectors into 0x10000) and the two ADV sectors
# (20810, 20811 into 0x9800, 0x9a00).  All 13 READ(10)s of the boot put in guest memory exactly the
# image's sectors (FNV-1a of the buffer at completion against os.raw), each completed in under
# 3 ms with a context reply read once by SeaBIOS; no error reply, no fault.  Then no SCSI IO at all
# for 240 s: ldlinux.c32 stops before it opens syslinux.cfg, without touching the disk.  So it is
# not a request that "succeeds" with wrong data or length; what ldlinux.c32 waits for with the LSI
# present (console init, idle loop: interrupts/timer) is the open question.
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
