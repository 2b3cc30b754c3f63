# shellcheck shell=bash
# Firmware boot checks shared by the e2e tests (sourced after guest.sh, bash): a VM started with no
# --kernel from GT_RUN_ARGS's disks, whose /init is guest-tests/e2e/fwboot-init.sh.
#   fwboot_check NAME CPUS TITLE   boots it, waits for the guest's report and the VMM's exit 0,
#                                  and checks the vCPU count and the command line syslinux passed

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
