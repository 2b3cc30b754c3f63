#!/bin/bash
# VM snapshot of a paused VM, end to end over AHCI (two boots of a Debian guest):
#  1. The guest writes pattern 1 to a normal qcow2, a normal raw and a writethrough disk and keeps
#     writing elsewhere on them in a loop. `minivmm snapshot VM take` is refused while the VM runs;
#     after `control pause` it succeeds (the loop's requests in flight finish first), a restore is
#     refused while the VM runs, and after `control resume` the guest writes pattern 2 everywhere.
#     After power-off: the bases still hold pattern 1, every image passes qemu-img check.
#  2. `minivmm snapshot VM restore`, start again: the normal disks read pattern 1 (the snapshot's),
#     the writethrough disk pattern 2 (left out of snapshots).
cd "$(dirname "$0")/../.."
. guest-tests/lib/guest.sh
gt_setup
W=$GT_WORK
vmm=$(realpath "${GT_MINIVMM:-./minivmm}")

check() { gt_check "snapshot-live: $1" "${@:2}"; }
expect() { # NAME KEY WANT, for a guest's last "GT: KEY=VALUE"
	local got
	got=$(guest_value "$VM" "$2")
	if [ "$got" = "$3" ]; then gt_pass "snapshot-live: $1"; else gt_fail "snapshot-live: $1" "$2=$got"; fi
}
region() { # IMAGE FORMAT: md5 of its 1..5 MiB as qemu-img reads it
	qemu-img convert -U -f "$2" -O raw "$1" "$W/region.raw" &&
		dd if="$W/region.raw" bs=1M skip=1 count=4 status=none | md5sum | cut -d' ' -f1
}

head -c $((4 * 1024 * 1024)) /dev/urandom >"$W/p1.bin"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$W/p2.bin"
qemu-img create -q -f qcow2 "$W/n.qcow2" 32M && truncate -s 40M "$W/r.raw" &&
	qemu-img create -q -f qcow2 "$W/wt.qcow2" 48M &&
	initramfs_build "$W/init.cpio" guest-tests/e2e/snaplive-init.sh -m "ahci sd_mod" \
		-f "$W/p1.bin:/p1.bin" -f "$W/p2.bin:/p2.bin" || {
	gt_fail "snapshot-live: set up"
	exit 1
}
GT_RUN_ARGS=(--disk "$W/n.qcow2,bus=sata" --disk "$W/r.raw,bus=sata"
	--disk "$W/wt.qcow2,writethrough,bus=sata" --state-dir "$W/state")
sd=(--state-dir "$W/state")

# Boot 1.
VM=gt-live-$$
guest_start "$VM" 1 384 "$W/init.cpio" gt_write
guest_wait "$VM" '^GT: ready' || gt_fail "snapshot-live: boot 1 ready"
expect "pattern 1 written to the normal qcow2 disk" md5_n "$(gt_md5 "$W/p1.bin")"
"$vmm" snapshot "$VM" take early "${sd[@]}" >"$W/early.out" 2>&1
rc=$?
check "take on a running (not paused) VM is refused" [ "$rc" = 1 ]
check "the refusal says to pause first" grep -q "pause it first" "$W/early.out"
check "pause" "$vmm" control "$VM" pause
check "take s1 on the paused VM" "$vmm" snapshot "$VM" take s1 "${sd[@]}"
check "s1 listed" sh -c "'$vmm' snapshot '$VM' list --state-dir '$W/state' | grep -q '^s1 '"
"$vmm" snapshot "$VM" restore s1 "${sd[@]}" >"$W/restore.out" 2>&1
rc=$?
if [ "$rc" = 1 ] && grep -q "running VM '$VM'" "$W/restore.out"; then
	gt_pass "snapshot-live: restore while the VM runs is refused, naming it"
else
	gt_fail "snapshot-live: restore while the VM runs is refused, naming it" "rc=$rc: $(head -c 300 "$W/restore.out")"
fi
check "take through the control socket with another state dir is refused" \
	sh -c "! '$vmm' snapshot '$VM' take s9 --state-dir '$W' 2>/dev/null"
check "resume" "$vmm" control "$VM" resume
guest_send "$VM" "touch /tmp/stop"
guest_wait "$VM" 'GT: loop_stopped' || gt_fail "snapshot-live: the guest's write loop ran on"
guest_send "$VM" "sh /gt.sh write /p2.bin; sh /gt.sh md5; echo GT: wrote2; sync; poweroff -f"
guest_wait "$VM" 'GT: wrote2' || gt_fail "snapshot-live: pattern 2 written"
guest_wait_exit "$VM" 300
check "boot 1 powered off cleanly" [ "$GT_RC" = 0 ]
for d in n r wt; do expect "after the snapshot, $d reads pattern 2" "md5_$d" "$(gt_md5 "$W/p2.bin")"; done
check "the qcow2 base still holds pattern 1" [ "$(region "$W/n.qcow2" qcow2)" = "$(gt_md5 "$W/p1.bin")" ]
check "the raw base still holds pattern 1" [ "$(region "$W/r.raw" raw)" = "$(gt_md5 "$W/p1.bin")" ]
check "the raw disk's writes went to a layer in the state dir" \
	[ "$(region "$W/state/disk1-r.snap1.qcow2" qcow2)" = "$(gt_md5 "$W/p2.bin")" ]
for f in "$W/n.qcow2" "$W/wt.qcow2" "$W"/state/*.qcow2; do
	check "qemu-img check $(basename "$f")" qemu-img check -q "$f"
done

# Boot 2, after a restore.
check "restore s1 (powered off)" "$vmm" snapshot "$VM" restore s1 "${sd[@]}"
VM=gt-live2-$$
guest_start "$VM" 1 384 "$W/init.cpio"
guest_wait "$VM" '^GT: ready' || gt_fail "snapshot-live: boot 2 ready"
guest_send "$VM" "touch /tmp/stop; poweroff -f"
guest_wait_exit "$VM" 300
expect "restore brings the normal qcow2 disk back" md5_n "$(gt_md5 "$W/p1.bin")"
expect "restore brings the normal raw disk back" md5_r "$(gt_md5 "$W/p1.bin")"
expect "the writethrough disk keeps pattern 2 across the restore" md5_wt "$(gt_md5 "$W/p2.bin")"
