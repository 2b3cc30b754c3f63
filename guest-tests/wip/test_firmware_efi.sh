#!/bin/bash
# UEFI boot end to end (--firmware efi): Debian's OVMF boots a GPT disk whose EFI system partition
# holds the Debian kernel as a unified kernel image (\EFI\BOOT\BOOTX64.EFI: systemd's EFI stub
# with the kernel, a busybox initramfs and the command line), built without loop devices.
#  1. on virtio-blk: the guest comes up under UEFI (/sys/firmware/efi), sees 2 vCPUs and
#     minivmm's own ACPI tables (handed to OVMF by the table-loader), powers off with exit 0;
#  2. the VM's variable store is its own copy in the state directory, and OVMF wrote to it (the
#     CFI flash's programs and erases reached the file), while Debian's template is untouched;
#  3. a second boot of the same VM (same store) comes up again.
cd "$(dirname "$0")/../.."
. guest-tests/lib/guest.sh
. guest-tests/lib/bootdisk.sh
gt_setup
W=$GT_WORK
tmpl=/usr/share/OVMF/OVMF_VARS_4M.fd

initramfs_build "$W/init.cpio" guest-tests/e2e/fwboot-init.sh -m "virtio_pci virtio_blk" -z || {
	gt_fail "efi: build the initramfs"
	exit 1
}
efidisk_build "$W/esp.raw" "$(gt_kernel)" "$W/init.cpio" "console=ttyS0 quiet panic=-1 gt_fwboot" || {
	gt_fail "efi: build the UEFI disk (sfdisk GPT, mkfs.fat, mtools, objcopy UKI)"
	exit 1
}
gt_pass "efi: GPT disk with a unified kernel image built without loop devices"
tmpl_md5=$(gt_md5 "$tmpl")

# boot NAME TITLE
boot() {
	local name=$1 title=$2
	guest_start_fw "$name" 2 512
	if guest_wait "$name" '^GT: done' 600; then
		gt_pass "efi: $title: booted from the ESP through OVMF"
	else
		gt_fail "efi: $title: booted from the ESP through OVMF" "no 'GT: done'"
	fi
	guest_wait_exit "$name" 120
	[ "$GT_RC" = 0 ] && gt_pass "efi: $title: poweroff ends the VMM with 0" ||
		gt_fail "efi: $title: poweroff ends the VMM with 0" "exit code $GT_RC"
}

vm=gt-efi-$$
# --reboot restart: a reset OVMF asks for on its own (as on hardware) goes on in place.
GT_RUN_ARGS=(--firmware efi --disk "$W/esp.raw,format=raw,bus=virtio" --state-dir "$W/state"
	--reboot restart)
boot "$vm" "UKI on virtio-blk"
[ "$(guest_value "$vm" efi)" = 1 ] && [ "$(guest_value "$vm" cpus)" = 2 ] &&
	[ "$(guest_value "$vm" cmdline_ok)" = 1 ] &&
	gt_pass "efi: the guest runs under UEFI with 2 vCPUs and the UKI's command line" ||
	gt_fail "efi: the guest runs under UEFI with 2 vCPUs and the UKI's command line" \
		"efi=$(guest_value "$vm" efi) cpus=$(guest_value "$vm" cpus) cmdline_ok=$(guest_value "$vm" cmdline_ok)"
[ "$(guest_value "$vm" dsdt_oem)" = MINVMM ] && [ "$(guest_value "$vm" madt_oem)" = MINVMM ] &&
	gt_pass "efi: the guest sees minivmm's ACPI tables (table-loader through OVMF)" ||
	gt_fail "efi: the guest sees minivmm's ACPI tables (table-loader through OVMF)" \
		"dsdt=$(guest_value "$vm" dsdt_oem) madt=$(guest_value "$vm" madt_oem)"
vars=$W/state/efivars.fd
if [ -f "$vars" ] && [ "$(stat -c %s "$vars")" = "$(stat -c %s "$tmpl")" ] &&
	[ "$(gt_md5 "$vars")" != "$tmpl_md5" ] && [ "$(gt_md5 "$tmpl")" = "$tmpl_md5" ]; then
	gt_pass "efi: OVMF kept its variables in the VM's own store (state directory), not the template"
else
	gt_fail "efi: OVMF kept its variables in the VM's own store (state directory), not the template" \
		"$(ls -l "$W/state" 2>&1 | tr '\n' ' ')"
fi
vm=gt-efi2-$$
boot "$vm" "second boot on the same variable store"
