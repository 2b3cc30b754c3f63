#!/bin/bash
# The seccomp sandbox on a running VM (lib/sandbox.h): every thread of the VMM shows "Seccomp: 2"
# in /proc, while the guest writes and reads its disks (qcow2 on AHCI: worker-pool I/O threads;
# raw on virtio-blk: io_uring), and the worker opens and creates files under it (pause, snapshot
# take, resume; CD eject and insert).  Then a request that makes a forbidden call (the test-only
# verb sandbox-probe, with MINIVMM_SANDBOX_PROBE=1) stops the VMM with exit 159 and a message
# naming the call.  A second VM with --sandbox off shows "Seccomp: 0" and survives the probe.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
gt_setup
vm=gt-sandbox-$$
W=$GT_WORK
GT_T=sandbox

qemu-img create -q -f qcow2 "$W/a.qcow2" 64M
truncate -s 64M "$W/v.raw"
mkdir -p "$W/iso1" "$W/iso2" "$W/state"
echo one >"$W/iso1/one.txt"
echo two >"$W/iso2/two.txt"
xorriso -as mkisofs -quiet -o "$W/one.iso" "$W/iso1" 2>/dev/null &&
	xorriso -as mkisofs -quiet -o "$W/two.iso" "$W/iso2" 2>/dev/null || {
	gt_fail "sandbox: build the ISOs (xorriso)"
	exit 1
}
initramfs_build "$W/init.cpio" guest-tests/e2e/foundation-init.sh \
	-m "button evdev ahci sd_mod virtio_pci virtio_blk" || {
	gt_fail "sandbox: build the initramfs"
	exit 1
}

# Thread name and Seccomp mode of every task of PID, one "name=mode" per line.
seccomp_modes() {
	local t
	for t in /proc/"$1"/task/*; do
		echo "$(cat "$t/comm" 2>/dev/null)=$(sed -n 's/^Seccomp:[[:space:]]*//p' "$t/status" 2>/dev/null)"
	done
}

ctl() { "$GT_MINIVMM" control "$@" 2>&1; }

export MINIVMM_SANDBOX_PROBE=1
GT_RUN_ARGS=(--disk "$W/a.qcow2,bus=sata,format=qcow2" --disk "$W/v.raw,bus=virtio,format=raw"
	--cdrom "$W/one.iso" --state-dir "$W/state")
guest_start "$vm" 1 512 "$W/init.cpio"
if ! guest_wait "$vm" '^GT: ready'; then
	gt_fail "sandbox: boot to /init" "no 'GT: ready' on the console"
	exit 1
fi
gt_pass "sandbox: boot to /init under the sandbox"
pid=$(guest_pid "$vm")

out=$(ctl "$vm" info)
case $out in
*"sandbox: on"*) gt_pass "sandbox: info says sandbox on" ;;
*) gt_fail "sandbox: info says sandbox on" "$out" ;;
esac

# Guest I/O on both disks: the I/O threads and io_uring at work under their filters.
for d in sda vda; do
	guest_send "$vm" "dd if=/dev/urandom of=/tmp/p bs=64k count=16 2>/dev/null; dd if=/tmp/p of=/dev/$d bs=64k oflag=direct conv=fsync 2>/dev/null; echo \"GT: w_$d=\$(md5sum </tmp/p | cut -c1-32)\"; echo \"GT: r_$d=\$(dd if=/dev/$d bs=64k count=16 iflag=direct 2>/dev/null | md5sum | cut -c1-32)\""
	if guest_wait "$vm" "^GT: r_$d=" && [ -n "$(guest_value "$vm" "w_$d")" ] &&
		[ "$(guest_value "$vm" "w_$d")" = "$(guest_value "$vm" "r_$d")" ]; then
		gt_pass "sandbox: guest writes and reads back /dev/$d"
	else
		gt_fail "sandbox: guest writes and reads back /dev/$d" \
			"w=$(guest_value "$vm" "w_$d") r=$(guest_value "$vm" "r_$d")"
	fi
done

modes=$(seccomp_modes "$pid")
n=$(echo "$modes" | wc -l)
if [ "$n" -ge 4 ] && ! echo "$modes" | grep -q -v '=2$'; then
	gt_pass "sandbox: Seccomp 2 on all $n threads of the running VM"
else
	gt_fail "sandbox: Seccomp 2 on every thread of the running VM" "$(echo "$modes" | tr '\n' ' ')"
fi

# The worker under its filter: pause, snapshot take (creates a layer), resume; media change.
out=$(ctl "$vm" pause && ctl "$vm" snapshot take s1 && ctl "$vm" resume)
if [ $? -eq 0 ] && ls "$W/state" | grep -q snap; then
	gt_pass "sandbox: pause, snapshot take, resume"
else
	gt_fail "sandbox: pause, snapshot take, resume" "$out; state: $(ls "$W/state" | tr '\n' ' ')"
fi
out=$(ctl "$vm" cdrom-eject && ctl "$vm" cdrom-insert "$W/two.iso")
gt_check "sandbox: cdrom-eject and cdrom-insert ($out)" test $? -eq 0
guest_send "$vm" 'echo "GT: alive=yes"'
if guest_wait "$vm" '^GT: alive=yes' && kill -0 "$pid" 2>/dev/null; then
	gt_pass "sandbox: the VM runs on after them"
else
	gt_fail "sandbox: the VM runs on after them" "$(tail -3 "$W/$vm.stderr")"
fi
modes=$(seccomp_modes "$pid")
if ! echo "$modes" | grep -q -v '=2$'; then
	gt_pass "sandbox: still Seccomp 2 on every thread ($(echo "$modes" | wc -l))"
else
	gt_fail "sandbox: still Seccomp 2 on every thread" "$(echo "$modes" | tr '\n' ' ')"
fi

# A forbidden call from a request: the VMM stops, naming the call.
ctl "$vm" sandbox-probe >/dev/null
guest_wait_exit "$vm" 60
if [ "$GT_RC" = 159 ] && grep -q 'forbidden system call setuid (105) on thread vm-worker (role worker)' "$W/$vm.stderr"; then
	gt_pass "sandbox: a forbidden call stops the VMM (exit 159) with a message naming it"
else
	gt_fail "sandbox: a forbidden call stops the VMM with a message naming it" \
		"exit $GT_RC; stderr: $(tail -2 "$W/$vm.stderr" | tr '\n' ' ')"
fi

# --sandbox off: no filter, and the probe is harmless.  No need to wait for the guest.
vm2=gt-nosandbox-$$
GT_RUN_ARGS=(--sandbox off)
guest_start "$vm2" 1 256 "$W/init.cpio"
for _ in $(seq 1 120); do
	ctl "$vm2" info >/dev/null && break
	sleep 0.5
done
out=$(ctl "$vm2" info; ctl "$vm2" sandbox-probe)
modes=$(seccomp_modes "$(guest_pid "$vm2")")
if echo "$out" | grep -q "sandbox: off" && ! echo "$modes" | grep -q -v '=0$' &&
	kill -0 "$(guest_pid "$vm2")"; then
	gt_pass "sandbox: --sandbox off runs without filters"
else
	gt_fail "sandbox: --sandbox off runs without filters" "$out / $(echo "$modes" | tr '\n' ' ')"
fi
ctl "$vm2" stop >/dev/null
guest_wait_exit "$vm2" 60
