#!/bin/bash
# The in-process reboot (--reboot restart) end to end, two guests at once:
#  A. 2 vCPUs, an AHCI disk, console on stdio.  Boot 1 writes a pattern to the disk (O_DIRECT) and
#     reboots itself (reboot -f); minivmm resets every device and vCPU in the same process.
#     Boot 2: both CPUs come up again, the disk reads the pattern back through the reset AHCI
#     controller, a line typed on the serial console reaches the guest and comes back (the UART
#     works after its reset), the control socket still answers with the same pid, and the
#     console output holds both boots.
#  B. --console FILE: the file keeps the first boot's log after the reboot (appended to, not
#     truncated), and the process exits 0 at the second boot's power-off.  B's disk is virtio-blk:
#     the second boot finds its marker on it through the reset virtio-pci function.
cd "$(dirname "$0")/../.."
. guest-tests/lib/guest.sh
gt_setup
W=$GT_WORK
real_vmm=$(realpath "${GT_MINIVMM:-./minivmm}")

head -c $((4 * 1024 * 1024)) /dev/urandom >"$W/p.bin"
truncate -s 64M "$W/a.raw" && truncate -s 48M "$W/b.raw" || {
	gt_fail "reboot: create the images"
	exit 1
}
A=gt-rb-a-$$
B=gt-rb-b-$$
tok=gt-rb-$$-$RANDOM
# 64 MiB = 131072 sectors, 48 MiB = 98304.
printf '%s\n' "cpus 1" "write d 131072" "reboot 131072 12 $tok" "cpus 2" "read d_r 131072" \
	"echo" >"$W/a.conf"
printf '%s\n' "reboot 98304 12 $tok nowait" "read b_r 98304" >"$W/b.conf"
for v in a b; do
	initramfs_build "$W/$v.cpio" guest-tests/e2e/diskmodes-init.sh -m "ahci sd_mod virtio_pci virtio_blk" \
		-f "$W/p.bin:/pattern.bin" -f "$W/$v.conf:/dm.conf" || {
		gt_fail "reboot: initramfs"
		exit 1
	}
done

GT_RUN_ARGS=(--disk "$W/a.raw,bus=sata" --reboot restart --state-dir "$W/state-a")
guest_start "$A" 2 384 "$W/a.cpio"
GT_RUN_ARGS=(--disk "$W/b.raw,bus=virtio" --reboot restart --state-dir "$W/state-b"
	--console "$W/b-console.log")
guest_start "$B" 1 256 "$W/b.cpio"
pid_a=$(guest_pid "$A")

guest_wait "$A" '^GT: reboot-ready' || gt_fail "reboot: A's first boot wrote its marker"
guest_send "$A" go
guest_wait "$A" '^GT: echo-ready' || gt_fail "reboot: A booted again after its reboot"
info=$("$real_vmm" control "$A" info --json 2>&1)
guest_send "$A" "typed-after-the-reset-$$"
guest_wait "$A" '^GT: done$' || gt_fail "reboot: A's second boot ran its script"
guest_wait_exit "$A" 300
rc_a=$GT_RC

[ "$(guest_value "$A" md5_d)" = "$(gt_md5 "$W/p.bin")" ] &&
	gt_pass "reboot: boot 1 wrote the AHCI disk" ||
	gt_fail "reboot: boot 1 wrote the AHCI disk" "$(guest_value "$A" md5_d)"
[ "$(guest_value "$A" md5_d_r)" = "$(gt_md5 "$W/p.bin")" ] &&
	gt_pass "reboot: the AHCI disk reads the pattern back after the reset" ||
	gt_fail "reboot: the AHCI disk reads the pattern back after the reset" \
		"$(guest_value "$A" md5_d_r)"
[ "$(guest_value "$A" cpus_1)" = 2 ] && [ "$(guest_value "$A" cpus_2)" = 2 ] &&
	gt_pass "reboot: both vCPUs up in both boots" ||
	gt_fail "reboot: both vCPUs up in both boots" \
		"boot 1: $(guest_value "$A" cpus_1), boot 2: $(guest_value "$A" cpus_2)"
[ "$(guest_value "$A" echo)" = "typed-after-the-reset-$$" ] &&
	gt_pass "reboot: serial input reaches the guest after the reset" ||
	gt_fail "reboot: serial input reaches the guest after the reset" "$(guest_value "$A" echo)"
echo "$info" | grep -q "\"pid\":$pid_a[,}]" &&
	gt_pass "reboot: the control socket answers after the reset, same pid" ||
	gt_fail "reboot: the control socket answers after the reset, same pid" "$info (pid $pid_a)"
boots=$(tr -d '\r' <"$W/$A.console" | grep -a -c '^GT: booted$')
rebooted=$(grep -a -c 'guest rebooted: resetting the machine' "$W/$A.stderr")
[ "$boots" = 2 ] && [ "$rebooted" = 1 ] && [ "$rc_a" = 0 ] &&
	gt_pass "reboot: one process, two boots, exit 0 at power-off" ||
	gt_fail "reboot: one process, two boots, exit 0 at power-off" \
		"$boots boots, $rebooted resets, exit $rc_a; stderr: $(tail -3 "$W/$A.stderr")"

guest_wait_exit "$B" 300
rc_b=$GT_RC
log=$(tr -d '\r' <"$W/b-console.log")
echo "$log" | grep -q '^GT: boot=1$' && echo "$log" | grep -q '^GT: boot=2$' &&
	[ "$(echo "$log" | grep -c '^GT: booted$')" = 2 ] && [ "$rc_b" = 0 ] &&
	gt_pass "reboot: --console FILE keeps the first boot's log (boot 2 read its marker on virtio-blk)" ||
	gt_fail "reboot: --console FILE keeps the first boot's log (boot 2 read its marker on virtio-blk)" \
		"exit $rc_b; $(echo "$log" | grep '^GT:' | tr '\n' ' ')"
