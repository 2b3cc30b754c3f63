#!/bin/bash
# The jail (--chroot DIR --user UID:GID, lib/jail.h) on a running VM: after set-up the VMM's root
# is DIR in a mount namespace of its own, every thread runs as the user with no capability and
# under the seccomp filter, and the guest's disks (opened before, outside DIR) keep working.
# What the jailed VMM opens later is looked up inside DIR: a CD inside it can be inserted, one
# outside cannot; a snapshot is refused with a message; the host's mounts never change.  Refused
# before anything starts: --user by a non-root user, a --chroot that is not a directory.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
gt_setup
vm=gt-jail-$$
W=$GT_WORK
J=$W/jail
GT_T=jail

qemu-img create -q -f qcow2 "$W/a.qcow2" 64M
truncate -s 64M "$W/v.raw"
mkdir -p "$W/iso1" "$W/iso2" "$W/state" "$J"
chmod 755 "$W" "$J"
echo one >"$W/iso1/one.txt"
echo two >"$W/iso2/two.txt"
echo jailed >"$J/marker"
xorriso -as mkisofs -quiet -o "$W/one.iso" "$W/iso1" 2>/dev/null &&
	xorriso -as mkisofs -quiet -o "$J/two.iso" "$W/iso2" 2>/dev/null || {
	gt_fail "jail: build the ISOs (xorriso)"
	exit 1
}
chmod 644 "$J/two.iso" "$W/one.iso"
initramfs_build "$W/init.cpio" guest-tests/e2e/foundation-init.sh \
	-m "button evdev ahci sd_mod sr_mod isofs virtio_pci virtio_blk" || {
	gt_fail "jail: build the initramfs"
	exit 1
}

ctl() { "$GT_MINIVMM" control "$@" 2>&1; }

# Refused before any VM exists (exit 2, one line).
out=$("$GT_MINIVMM" run --name "$vm-bad" --kernel "$(gt_kernel)" --chroot "$J/marker" --user 65534 2>&1)
rc=$?
if [ $rc -eq 2 ] && echo "$out" | grep -q -- "--chroot $J/marker: not a directory"; then
	gt_pass "jail: a --chroot that is not a directory is refused at start"
else
	gt_fail "jail: a --chroot that is not a directory is refused at start" "exit $rc: $out"
fi
out=$(setpriv --reuid 65534 --regid 65534 --clear-groups "$GT_MINIVMM" run --name "$vm-bad" \
	--kernel "$(gt_kernel)" --user 65534 2>&1)
rc=$?
if [ $rc -eq 2 ] && echo "$out" | grep -q -- "--user needs root"; then
	gt_pass "jail: --user by a non-root user is refused at start"
else
	gt_fail "jail: --user by a non-root user is refused at start" "exit $rc: $out"
fi

mounts_before=$(wc -l </proc/self/mountinfo)
GT_RUN_ARGS=(--disk "$W/a.qcow2,bus=sata,format=qcow2" --disk "$W/v.raw,bus=virtio,format=raw"
	--cdrom "$W/one.iso,bus=sata" --state-dir "$W/state" --chroot "$J" --user 65534:65533)
guest_start "$vm" 2 512 "$W/init.cpio"
if ! guest_wait "$vm" '^GT: ready'; then
	gt_fail "jail: boot to /init in the jail" "no 'GT: ready' on the console"
	exit 1
fi
gt_pass "jail: boot to /init in the jail"
pid=$(guest_pid "$vm")

# Every thread: the user's ids, no capability, the seccomp filter.
bad=
n=0
for t in /proc/"$pid"/task/*; do
	n=$((n + 1))
	s=$(cat "$t/status" 2>/dev/null)
	echo "$s" | grep -q -E '^Uid:[[:space:]]+65534[[:space:]]+65534[[:space:]]+65534[[:space:]]+65534$' &&
		echo "$s" | grep -q -E '^Gid:[[:space:]]+65533[[:space:]]+65533[[:space:]]+65533[[:space:]]+65533$' &&
		echo "$s" | grep -q -E '^CapEff:[[:space:]]+0+$' &&
		echo "$s" | grep -q -E '^CapPrm:[[:space:]]+0+$' &&
		echo "$s" | grep -q -E '^Seccomp:[[:space:]]+2$' ||
		bad="$bad $(cat "$t/comm"): $(echo "$s" | grep -E '^(Uid|Gid|CapEff|Seccomp):' | tr '\n\t' '  ')"
done
if [ "$n" -ge 4 ] && [ -z "$bad" ]; then
	gt_pass "jail: all $n threads run as 65534:65533 with no capability under seccomp"
else
	gt_fail "jail: every thread runs as the user with no capability under seccomp" "$n threads;$bad"
fi

# Its root is the jail, in a mount namespace of its own; the host's mounts did not change.
if [ "$(cat /proc/"$pid"/root/marker 2>&1)" = jailed ] && [ ! -e "/proc/$pid/root$W" ] &&
	[ "$(readlink /proc/"$pid"/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ]; then
	gt_pass "jail: the VMM's root is the jail directory, in its own mount namespace"
else
	gt_fail "jail: the VMM's root is the jail directory, in its own mount namespace" \
		"root: $(ls /proc/"$pid"/root/ 2>&1 | tr '\n' ' ') ns: $(readlink /proc/"$pid"/ns/mnt)"
fi
gt_check "jail: the host's mounts are unchanged" test "$(wc -l </proc/self/mountinfo)" = "$mounts_before"

# The guest's disks, opened before the jail, still work both ways.
for d in sda vda; do
	guest_send "$vm" "dd if=/dev/urandom of=/tmp/p bs=64k count=16 2>/dev/null; dd if=/tmp/p of=/dev/$d bs=64k oflag=direct conv=fsync 2>/dev/null; echo \"GT: w_$d=\$(md5sum </tmp/p | cut -c1-32)\"; echo \"GT: r_$d=\$(dd if=/dev/$d bs=64k count=16 iflag=direct 2>/dev/null | md5sum | cut -c1-32)\""
	if guest_wait "$vm" "^GT: r_$d=" && [ -n "$(guest_value "$vm" "w_$d")" ] &&
		[ "$(guest_value "$vm" "w_$d")" = "$(guest_value "$vm" "r_$d")" ]; then
		gt_pass "jail: guest writes and reads back /dev/$d"
	else
		gt_fail "jail: guest writes and reads back /dev/$d" \
			"w=$(guest_value "$vm" "w_$d") r=$(guest_value "$vm" "r_$d")"
	fi
done

# Later opens resolve inside the jail: its CD inserts and the guest reads it; a host path does not.
out=$(ctl "$vm" info)
gt_check "jail: control info answers ($(echo "$out" | grep -c .) lines)" grep -q "sandbox: on" <<<"$out"
out=$(ctl "$vm" cdrom-eject && ctl "$vm" cdrom-insert /two.iso)
rc=$?
gt_check "jail: cdrom-insert of /two.iso inside the jail ($(echo "$out" | tr '\n' ' '))" test $rc -eq 0
# The first open after a change may report it (UNIT ATTENTION): a few tries.
guest_send "$vm" 'mkdir -p /mnt/cd; for i in 1 2 3 4 5; do mount -t iso9660 -o ro /dev/sr0 /mnt/cd 2>/dev/null && break; sleep 1; done; echo "GT: cd=$(cat /mnt/cd/two.txt 2>&1 | tr " " _)"; umount /mnt/cd'
if guest_wait "$vm" '^GT: cd=' && [ "$(guest_value "$vm" cd)" = two ]; then
	gt_pass "jail: the guest reads the CD inserted from inside the jail"
else
	gt_fail "jail: the guest reads the CD inserted from inside the jail" "cd=$(guest_value "$vm" cd)"
fi
out=$(ctl "$vm" cdrom-eject; ctl "$vm" cdrom-insert "$W/one.iso")
rc=$?
if [ $rc -ne 0 ] && echo "$out" | grep -q "one.iso"; then
	gt_pass "jail: a host path outside the jail is not found ($(echo "$out" | tail -1))"
else
	gt_fail "jail: a host path outside the jail is not found" "exit $rc: $out"
fi
out=$(ctl "$vm" pause; ctl "$vm" snapshot take s1)
rc=$?
ctl "$vm" resume >/dev/null
if [ $rc -ne 0 ] && echo "$out" | grep -q "snapshots are not available under --chroot" &&
	[ -z "$(ls "$W/state" | grep snap)" ]; then
	gt_pass "jail: snapshot take is refused with a message"
else
	gt_fail "jail: snapshot take is refused with a message" "exit $rc: $out"
fi
guest_send "$vm" 'echo "GT: alive=yes"'
if guest_wait "$vm" '^GT: alive=yes' && kill -0 "$pid" 2>/dev/null; then
	gt_pass "jail: the VM runs on after them"
else
	gt_fail "jail: the VM runs on after them" "$(tail -3 "$W/$vm.stderr")"
fi

ctl "$vm" stop >/dev/null
guest_wait_exit "$vm" 60
if [ "$GT_RC" = 0 ]; then
	gt_pass "jail: control stop ends the jailed VMM with exit 0"
else
	gt_fail "jail: control stop ends the jailed VMM with exit 0" \
		"exit $GT_RC; stderr: $(tail -3 "$W/$vm.stderr" | tr '\n' ' ')"
fi
gt_check "jail: the host's mounts are still unchanged" test "$(wc -l </proc/self/mountinfo)" = "$mounts_before"
gt_check "jail: qemu-img check of the qcow2 disk the jailed VMM wrote" qemu-img check -q "$W/a.qcow2"
