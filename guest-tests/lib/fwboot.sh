# shellcheck shell=bash
# Firmware boot checks shared by the e2e tests (bash, sourced from the repository's top; it sources
# guest.sh and bootdisk.sh itself unless they are already in): a VM started with no --kernel from
# GT_RUN_ARGS's disks, whose /init is guest-tests/e2e/fwboot-init.sh.
#   fwboot_setup TITLE             gt_setup, W=$GT_WORK, real_vmm (the VMM's full path) and the
#                                  disk pair in $W (fwboot_disk_build); a failure to build it is
#                                  TITLE's FAIL line and ends the test
#   fwboot_disk_build DIR          DIR/init.cpio (busybox, /init fwboot-init.sh, virtio-blk for the
#                                  reboot marker disk) and DIR/os.raw, the syslinux disk booting it
#                                  (built without loop devices, bootdisk_build); copied from
#                                  build/fwboot/ when guest-tests/e2e/prepare/fwboot.sh built the
#                                  same one on the host (seconds there, a minute under TCG)
#   fwboot_check NAME CPUS TITLE   boots it, waits for the guest's report and the VMM's exit 0,
#                                  and checks the vCPU count and the command line syslinux passed

declare -F gt_setup >/dev/null || . guest-tests/lib/guest.sh
declare -F bootdisk_build >/dev/null || . guest-tests/lib/bootdisk.sh

FWBOOT_CACHE=build/fwboot
FWBOOT_APPEND="console=ttyS0 quiet panic=-1 gt_fwboot"

# What the disk is made of: the kernel, the busybox, and the scripts that build it.
fwboot_stamp() {
	{
		echo "$(gt_kernel) $FWBOOT_APPEND"
		cat guest-tests/e2e/fwboot-init.sh guest-tests/lib/initramfs.sh \
			guest-tests/lib/bootdisk.sh guest-tests/lib/fwboot.sh
	} | sha256sum | cut -d' ' -f1
}

# Build the pair into DIR (the host-side preparation calls it with the cache itself).
fwboot_disk_make() {
	local dir=$1
	initramfs_build "$dir/init.cpio" guest-tests/e2e/fwboot-init.sh -m "virtio_pci virtio_blk" -z &&
		bootdisk_build "$dir/os.raw" "$(gt_kernel)" "$dir/init.cpio" "$FWBOOT_APPEND"
}

fwboot_disk_build() {
	local dir=$1
	if [ -r "$FWBOOT_CACHE/os.raw" ] && [ -r "$FWBOOT_CACHE/init.cpio" ] &&
		[ "$(cat "$FWBOOT_CACHE/stamp" 2>/dev/null)" = "$(fwboot_stamp)" ]; then
		cp --sparse=always "$FWBOOT_CACHE/init.cpio" "$FWBOOT_CACHE/os.raw" "$dir/" && return 0
	fi
	fwboot_disk_make "$dir"
}

fwboot_setup() {
	gt_setup
	W=$GT_WORK
	# shellcheck disable=SC2034 # W and real_vmm are the tests'
	real_vmm=$(realpath "${GT_MINIVMM:-./minivmm}")
	fwboot_disk_build "$W" || {
		gt_fail "$1: build the bootable disk (sfdisk, mkfs.fat, mtools, syslinux)"
		exit 1
	}
}

fwboot_check() {
	local name=$1 cpus=$2 title=$3
	guest_start_fw "$name" "$cpus" 512
	if guest_wait "$name" '^GT: done' 600; then
		gt_pass "firmware: $title: booted from the disk through SeaBIOS"
	else
		gt_fail "firmware: $title: booted from the disk through SeaBIOS" "no 'GT: done'"
	fi
	guest_wait_exit "$name" 120
	[ "$GT_RC" = 0 ] && gt_pass "firmware: $title: poweroff ends the VMM with 0" ||
		gt_fail "firmware: $title: poweroff ends the VMM with 0" "exit code $GT_RC"
	[ "$(guest_value "$name" cpus)" = "$cpus" ] && [ "$(guest_value "$name" cmdline_ok)" = 1 ] &&
		gt_pass "firmware: $title: $cpus vCPUs up, syslinux passed the command line" ||
		gt_fail "firmware: $title: $cpus vCPUs up, syslinux passed the command line" \
			"cpus=$(guest_value "$name" cpus) cmdline_ok=$(guest_value "$name" cmdline_ok)"
}
