#!/bin/bash
# One vCPU, 1 GiB: CPU count, memory size, ACPI tables, clean kernel log, console both ways, and
# `minivmm control NAME poweroff` (ACPI fixed power button -> SCI -> the guest's button driver ->
# busybox acpid -> poweroff) ends the VMM with exit code 0.  On one vCPU because level 1 (QEMU TCG)
# makes every extra vCPU dear; `poweroff -f` typed in the guest is checked by the 4-vCPU test.
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
if [ "$GT_VMM" != minivmm ]; then
	guest_send "$vm" 'poweroff -f'
	guest_wait_exit "$vm" 300
	exit 0
fi
out=$("$GT_MINIVMM" control "$vm" poweroff 2>&1)
[ $? -eq 0 ] || gt_fail "up: control poweroff accepted" "$out"
guest_wait_exit "$vm" 180
rc=$GT_RC
if [ "$rc" = 0 ] && grep -a -q '^GT: power-button' "$GT_WORK/$vm.console"; then
	gt_pass "up: control poweroff (ACPI power button) ends the VMM with exit 0"
else
	gt_fail "up: control poweroff (ACPI power button) ends the VMM with exit 0" \
		"exit code $rc; guest: $(guest_value "$vm" acpid) acpi_irq=$(guest_value "$vm" acpi_irq) input=$(guest_value "$vm" input_devices)"
fi
