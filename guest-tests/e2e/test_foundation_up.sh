#!/bin/bash
# One vCPU, 1 GiB: CPU count, memory size, ACPI tables, clean kernel log, console both ways, and
# `poweroff -f` typed in the guest ends the VMM with exit code 0.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
. guest-tests/e2e/checks.sh
gt_setup
vm=gt-up-$$
GT_T=up
initramfs_build "$GT_WORK/init.cpio" guest-tests/e2e/foundation-init.sh -m "button evdev" || {
	gt_fail "up: build the initramfs"
	exit 1
}
guest_start "$vm" 1 1024 "$GT_WORK/init.cpio"
if ! guest_wait "$vm" '^GT: ready'; then
	gt_fail "up: boot to /init" "no 'GT: ready' on the console"
	exit 1
fi
gt_pass "up: boot to /init"
check_cpus "$vm" 1
check_memtotal "$vm" 1024
check_acpi "$vm"
check_dmesg "$vm"
check_console "$vm"
guest_send "$vm" 'poweroff -f'
guest_wait_exit "$vm" 300
rc=$GT_RC
[ "$rc" = 0 ] && gt_pass "up: poweroff in the guest ends the VMM with exit 0" ||
	gt_fail "up: poweroff in the guest ends the VMM with exit 0" "exit code $rc"
