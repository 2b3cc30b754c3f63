#!/bin/bash
# Disk full during guest writes, under the sandbox: the test-only hook (storage/core/block_fault.h,
# MINIVMM_TEST_ENOSPC_WHILE=FLAG) fails every write with ENOSPC while FLAG exists.  A disk with
# the default werror=report hands the guest an I/O error; a werror=stop disk pauses the VM instead
# (stderr says so, `control info` shows paused), and after the space comes back `control resume`
# retries the write: the guest's dd succeeds and the data reads back intact.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
gt_setup
vm=gt-werror-$$
W=$GT_WORK
GT_T=werror

truncate -s 16M "$W/stop.raw" "$W/report.raw"
initramfs_build "$W/init.cpio" guest-tests/e2e/foundation-init.sh \
	-m "button evdev virtio_pci virtio_blk ahci sd_mod" || {
	gt_fail "werror: build the initramfs"
	exit 1
}
ctl() { "$GT_MINIVMM" control "$@" 2>&1; }

export MINIVMM_TEST_ENOSPC_WHILE=$W/full
GT_RUN_ARGS=(--disk "$W/stop.raw,bus=virtio,format=raw,werror=stop"
	--disk "$W/report.raw,bus=sata,format=raw,werror=report")
guest_start "$vm" 1 512 "$W/init.cpio"
if ! guest_wait "$vm" '^GT: ready'; then
	gt_fail "werror: boot to /init" "no 'GT: ready' on the console"
	exit 1
fi
guest_send "$vm" 'dd if=/dev/urandom of=/tmp/p bs=64k count=16 2>/dev/null; echo "GT: p=$(md5sum </tmp/p | cut -c1-32)"'
guest_wait "$vm" '^GT: p=' || gt_fail "werror: make the pattern"

# werror=report: the guest sees the error.
touch "$W/full"
guest_send "$vm" 'dd if=/tmp/p of=/dev/sda bs=64k oflag=direct 2>/dev/null; echo "GT: report_rc=$?"'
if guest_wait "$vm" '^GT: report_rc=' && [ "$(guest_value "$vm" report_rc)" != 0 ]; then
	gt_pass "werror: report: the guest's write fails with an I/O error"
else
	gt_fail "werror: report: the guest's write fails with an I/O error" "rc=$(guest_value "$vm" report_rc)"
fi

# werror=stop: the VM pauses, the write waits.
guest_send "$vm" 'dd if=/tmp/p of=/dev/vda bs=64k oflag=direct conv=fsync 2>/dev/null; echo "GT: stop_rc=$?"'
paused=
for _ in $(seq 1 240); do
	if ctl "$vm" info | grep -q 'state: paused'; then
		paused=1
		break
	fi
	sleep 0.5
done
if [ -n "$paused" ] && grep -q 'pausing the VM (werror=stop)' "$W/$vm.stderr" &&
	[ -z "$(guest_value "$vm" stop_rc)" ]; then
	gt_pass "werror: stop: a full disk pauses the VM, the guest's write waits"
else
	gt_fail "werror: stop: a full disk pauses the VM" \
		"paused=${paused:-no} rc=$(guest_value "$vm" stop_rc) stderr: $(tail -2 "$W/$vm.stderr" | tr '\n' ' ')"
fi

# Space comes back; resume retries the write.
rm -f "$W/full"
out=$(ctl "$vm" resume)
if guest_wait "$vm" '^GT: stop_rc=' && [ "$(guest_value "$vm" stop_rc)" = 0 ]; then
	gt_pass "werror: stop: after resume the guest's write completes"
else
	gt_fail "werror: stop: after resume the guest's write completes" "resume: $out; rc=$(guest_value "$vm" stop_rc)"
fi
guest_send "$vm" 'echo "GT: back=$(dd if=/dev/vda bs=64k count=16 iflag=direct 2>/dev/null | md5sum | cut -c1-32)"'
if guest_wait "$vm" '^GT: back=' && [ "$(guest_value "$vm" back)" = "$(guest_value "$vm" p)" ]; then
	gt_pass "werror: stop: the data reads back intact in the guest"
else
	gt_fail "werror: stop: the data reads back intact" "p=$(guest_value "$vm" p) back=$(guest_value "$vm" back)"
fi
if [ "$(head -c $((1 << 20)) "$W/stop.raw" | md5sum | cut -c1-32)" = "$(guest_value "$vm" p)" ]; then
	gt_pass "werror: stop: the image holds the data"
else
	gt_fail "werror: stop: the image holds the data"
fi
ctl "$vm" poweroff >/dev/null
guest_wait_exit "$vm" 120
gt_check "werror: the VM powers off (exit $GT_RC)" test "$GT_RC" = 0
