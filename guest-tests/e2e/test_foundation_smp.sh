#!/bin/bash
# Four vCPUs, 512 MiB: CPU count, memory, ACPI, clean kernel log, console both ways, then the control
# socket: info while running, pause (no progress while paused, counted by the guest's tick counter),
# resume (progress again), and `poweroff -f` typed in the guest ending the VMM with exit code 0.
# The control poweroff (ACPI power button) is checked by the 1-vCPU test: 4 vCPUs cost most in level 1.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
. guest-tests/e2e/checks.sh
gt_setup
vm=gt-smp-$$
GT_T=smp
ctl() { "$GT_MINIVMM" control "$vm" "$@" 2>&1; }
# The last tick on the console, ignoring the last line, which may be cut short by the pause: so the
# value may lag by one, never lead, and waiting for last_tick + 2 always needs a new tick.
last_tick() {
	tr -d '\r' <"$GT_WORK/$vm.console" | sed '$d' | grep -a -o 'GT-TICK [0-9]*$' | tail -1 | cut -d' ' -f2
}

initramfs_build "$GT_WORK/init.cpio" guest-tests/e2e/foundation-init.sh -m "button evdev" || {
	gt_fail "smp: build the initramfs"
	exit 1
}
guest_start "$vm" 4 512 "$GT_WORK/init.cpio"
if ! guest_wait "$vm" '^GT: ready'; then
	gt_fail "smp: boot to /init" "no 'GT: ready' on the console"
	exit 1
fi
gt_pass "smp: boot to /init"
check_cpus "$vm" 4
check_memtotal "$vm" 512
check_acpi "$vm"
check_dmesg "$vm"
check_console "$vm"

if [ "$GT_VMM" != minivmm ]; then
	guest_send "$vm" 'poweroff -f'
	guest_wait_exit "$vm" 300
	exit 0
fi

out=$(ctl info)
if [ $? -eq 0 ] && echo "$out" | grep -q "^name: $vm\$" && echo "$out" | grep -q '^cpus: 4$' &&
	echo "$out" | grep -q '^state: running$'; then
	gt_pass "smp: control info answers while running"
else
	gt_fail "smp: control info answers while running" "$(echo "$out" | tr '\n' ' ')"
fi

guest_wait "$vm" 'GT-TICK 2$'
out=$(ctl pause)
if [ $? -ne 0 ]; then
	gt_fail "smp: control pause" "$out"
else
	t1=$(last_tick)
	state=$(ctl info | sed -n 's/^state: //p')
	# The guest ticks once a second; 5 s of a running guest would add ticks.  Only a missing
	# increase is checked, so a slow host cannot make this fail.
	sleep 5
	t2=$(last_tick)
	[ "$state" = paused ] && [ "$t1" = "$t2" ] && gt_pass "smp: no guest progress while paused" ||
		gt_fail "smp: no guest progress while paused" "state '$state', tick $t1 -> $t2"
	out=$(ctl resume)
	if [ $? -eq 0 ] && guest_wait "$vm" "GT-TICK $((t2 + 2))\$"; then
		gt_pass "smp: progress again after resume"
	else
		gt_fail "smp: progress again after resume" "$out; last tick $(last_tick)"
	fi
fi

guest_send "$vm" 'poweroff -f'
guest_wait_exit "$vm" 300
rc=$GT_RC
[ "$rc" = 0 ] && gt_pass "smp: poweroff in the guest ends the VMM with exit 0" ||
	gt_fail "smp: poweroff in the guest ends the VMM with exit 0" "exit code $rc"
