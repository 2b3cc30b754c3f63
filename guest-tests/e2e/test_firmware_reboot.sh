#!/bin/bash
# Firmware boot from virtio-blk and VMDK, across a reboot in place: SeaBIOS drives virtio-blk
# itself (the drive is in its bootorder by PCI slot) and boots a syslinux disk converted to VMDK
# with `minivmm img convert`; with --reboot restart the guest reboots once in the same process
# (SeaBIOS runs again from a fresh copy and boots the disk again), then powers off.  A second
# virtio disk carries the guest's "reboot once" marker (fwboot-init.sh): GTMARK00 asks for the
# reboot, the guest writes GTMARK01 before it.
cd "$(dirname "$0")/../.."
. guest-tests/lib/fwboot.sh
fwboot_setup "firmware reboot"
"$real_vmm" img convert -O vmdk "$W/os.raw" "$W/os.vmdk" || {
	gt_fail "firmware reboot: convert the bootable disk to VMDK"
	exit 1
}
printf GTMARK00 >"$W/marker.raw"
truncate -s 1M "$W/marker.raw"

vm=gt-fw-reboot-$$
GT_RUN_ARGS=(--disk "$W/os.vmdk,bus=virtio" --disk "$W/marker.raw,format=raw,bus=virtio"
	--reboot restart)
guest_start_fw "$vm" 2 512
if guest_wait "$vm" '^GT: done' 600; then
	gt_pass "firmware reboot: VMDK on virtio-blk booted through SeaBIOS"
else
	gt_fail "firmware reboot: VMDK on virtio-blk booted through SeaBIOS" "no 'GT: done'"
fi
guest_wait_exit "$vm" 120
[ "$GT_RC" = 0 ] && gt_pass "firmware reboot: poweroff after the reboot ends the VMM with 0" ||
	gt_fail "firmware reboot: poweroff after the reboot ends the VMM with 0" "exit code $GT_RC"
console=$(tr -d '\r' <"$W/$vm.console")
seabios_runs=$(grep -a -c 'SeaBIOS (version' <<<"$console")
reboots=$(grep -a -c '^GT: rebooting' <<<"$console")
[ "$reboots" = 1 ] && [ "$(guest_value "$vm" rebooted)" = 1 ] && [ "$seabios_runs" = 2 ] &&
	gt_pass "firmware reboot: the guest rebooted in place, SeaBIOS ran again and booted virtio-blk again" ||
	gt_fail "firmware reboot: the guest rebooted in place, SeaBIOS ran again and booted virtio-blk again" \
		"reboots=$reboots rebooted=$(guest_value "$vm" rebooted) SeaBIOS banners=$seabios_runs"
[ "$(guest_value "$vm" cpus)" = 2 ] && [ "$(guest_value "$vm" cmdline_ok)" = 1 ] &&
	gt_pass "firmware reboot: 2 vCPUs up after the reboot, syslinux passed the command line" ||
	gt_fail "firmware reboot: 2 vCPUs up after the reboot, syslinux passed the command line" \
		"cpus=$(guest_value "$vm" cpus) cmdline_ok=$(guest_value "$vm" cmdline_ok)"
[ "$(head -c 8 "$W/marker.raw")" = GTMARK01 ] &&
	gt_pass "firmware reboot: the marker written before the reboot is on the disk" ||
	gt_fail "firmware reboot: the marker written before the reboot is on the disk" "$(head -c 8 "$W/marker.raw")"
qemu-img check -q "$W/os.vmdk" && gt_pass "firmware reboot: the VMDK is qemu-img check clean" ||
	gt_fail "firmware reboot: the VMDK is qemu-img check clean"
