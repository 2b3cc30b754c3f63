#!/bin/bash
# Disk modes end to end over IDE, four runs of a Debian guest (two of them at once):
#  1. VM A (--reboot restart) writes a pattern to an immutable, a multiattach, a normal and a
#     writethrough disk; meanwhile a second VM on A's normal disk is refused at once, naming A.
#     The guest then reboots itself; minivmm resets the machine in the same process, and the second boot
#     (told apart by a marker sector on the writethrough disk, outside the checked region) reads
#     all four disks back: the immutable write survives a reboot.  After poweroff: the immutable
#     and multiattach bases are unchanged byte for byte, the normal disk holds the data.
#  2. `minivmm snapshot A take s1`.  A starts again (fresh) while VM B shares the multiattach
#     base: A's immutable disk has lost the write, its multiattach disk kept it; A writes a second
#     pattern to its normal and writethrough disks; B writes its own pattern to the multiattach.
#  3. `minivmm snapshot A restore s1`, A starts again: the normal disk reads the first pattern
#     (restored), the writethrough disk the second (not part of snapshots), and B's multiattach
#     change is not visible to A.
# kill -9 mid-write: test_diskmodes_crash.sh.
cd "$(dirname "$0")/../.."
. guest-tests/lib/guest.sh
gt_setup
W=$GT_WORK
real_vmm=$(realpath "${GT_MINIVMM:-./minivmm}")

check() { gt_check "diskmodes: $1" "${@:2}"; }
# Waits for the end ("GT: done") of a guest that rebooted itself once.  A second "GT: boot=1" means
# the marker was lost across the reboot: the guest would go round again (it waits for our go to
# reboot, so it cannot loop by itself), so it is stopped at once.  Bounded like guest_wait.
wait_after_reboot() {
	local pid i=0
	pid=$(guest_pid "$1")
	while [ $i -lt "${GT_WAIT:-300}" ] && kill -0 "$pid" 2>/dev/null; do
		if [ "$(tr -d '\r' <"$W/$1.console" | grep -a -c '^GT: boot=1$')" -gt 1 ]; then
			kill -KILL "$pid"
			{ wait "$pid"; } 2>/dev/null # (no "Killed" notice; guest_wait_exit still gets 137)
			return 1
		fi
		guest_wait "$1" '^GT: done$' 1 && return 0
		i=$((i + 1))
	done
	guest_wait "$1" '^GT: done$' 1
}
build() { # INITRD PATTERN CONF-LINES...
	local out=$1 pat=$2
	shift 2
	printf '%s\n' "$@" >"$W/dm.conf"
	initramfs_build "$out" guest-tests/e2e/diskmodes-init.sh -m "ata_piix sd_mod" \
		-f "$pat:/pattern.bin" -f "$W/dm.conf:/dm.conf"
}

for p in 1 2 3; do head -c $((4 * 1024 * 1024)) /dev/urandom >"$W/p$p.bin"; done
zero=$(head -c $((4 * 1024 * 1024)) /dev/zero | md5sum | cut -d' ' -f1)
# Sizes tell the disks apart in the guest: 32, 40, 48, 56 MiB.
truncate -s 32M "$W/imm.raw" && qemu-img create -q -f qcow2 "$W/ma.qcow2" 40M &&
	qemu-img create -q -f vdi "$W/n.vdi" 48M && qemu-img create -q -f qcow2 "$W/wt.qcow2" 56M &&
	cp "$W/imm.raw" "$W/imm.orig" && cp "$W/ma.qcow2" "$W/ma.orig" || {
	gt_fail "diskmodes: create the images"
	exit 1
}
# One VM name per boot (the console log and fifo are per name); A's boots share a state dir.
A=gt-dm-a-$$
B=gt-dm-b-$$
A2=$A-2
A3=$A-3
a_disks=(--disk "$W/imm.raw,immutable,bus=ide" --disk "$W/ma.qcow2,multiattach,bus=ide"
	--disk "$W/n.vdi,bus=ide" --disk "$W/wt.qcow2,writethrough,bus=ide" --state-dir "$W/state-a")

# Boot 1, with a reboot inside the guest half way.
token=gt-dm-marker-$$-$RANDOM
build "$W/i1.cpio" "$W/p1.bin" "write imm 65536" "write ma 81920" "write n 98304" \
	"write wt 114688" "reboot 114688 12 $token" "read imm_r 65536" "read ma_r 81920" \
	"read n_r 98304" "read wt_r 114688" || { gt_fail "diskmodes: initramfs"; exit 1; }
GT_RUN_ARGS=("${a_disks[@]}" --reboot restart)
guest_start "$A" 1 384 "$W/i1.cpio"
vmm_pid=$(guest_pid "$A")
guest_wait "$A" '^GT: booted' || gt_fail "diskmodes: VM A booted"
pid1=$(cat "$W/state-a/run.pid" 2>/dev/null) ino1=$(stat -c %i "$W/state-a/run.pid" 2>/dev/null)
"$real_vmm" run --name "$B" --kernel "$(gt_kernel)" --console none --disk "$W/n.vdi,bus=ide" \
	--state-dir "$W/state-b" >"$W/second.out" 2>&1
rc=$?
check "a second VM on a normal disk in use is refused, naming the holder" \
	grep -q "in use by running VM '$A'" "$W/second.out"
[ "$rc" != 0 ] || gt_fail "diskmodes: the refused VM exits non-zero"
# The guest waits for this line before it reboots: the refusal above never races the restart.
guest_wait "$A" '^GT: reboot-ready' ||
	gt_fail "diskmodes: boot 1 of A wrote its reboot marker" "marker $(guest_value "$A" marker)"
guest_send "$A" go
wait_after_reboot "$A" || gt_fail "diskmodes: boot 1 of A ran its script after the reboot"
pid2=$(cat "$W/state-a/run.pid" 2>/dev/null) ino2=$(stat -c %i "$W/state-a/run.pid" 2>/dev/null)
guest_wait_exit "$A" 300
for d in imm ma n wt; do
	[ "$(guest_value "$A" "md5_$d")" = "$(gt_md5 "$W/p1.bin")" ] &&
		gt_pass "diskmodes: boot 1: $d written and read back" ||
		gt_fail "diskmodes: boot 1: $d written and read back" "$(guest_value "$A" "md5_$d")"
done
# run.pid is "PID STARTTIME", replaced (a new inode) by each start of minivmm: the reboot resets
# the machine in place, so the same file, written once, names the process of both boots.
boots=$(grep -a -c '^GT: booted' "$W/$A.console")
[ "$boots" = 2 ] && [ -n "$pid1" ] && [ "$pid1" = "$pid2" ] && [ "$ino1" = "$ino2" ] &&
	[ "${pid1%% *}" = "$vmm_pid" ] &&
	[ "$(grep -a -c 'minivmm: guest rebooted: resetting the machine' "$W/$A.stderr")" = 1 ] &&
	gt_pass "diskmodes: a reboot in the guest resets it in the same minivmm process" ||
	gt_fail "diskmodes: a reboot in the guest resets it in the same minivmm process" \
		"run.pid '$pid1' (inode $ino1) then '$pid2' (inode $ino2), minivmm pid $vmm_pid, $boots boots"
for d in imm ma n wt; do
	[ "$(guest_value "$A" "md5_${d}_r")" = "$(gt_md5 "$W/p1.bin")" ] &&
		gt_pass "diskmodes: $d write still there after a reboot inside the guest" ||
		gt_fail "diskmodes: $d write still there after a reboot inside the guest" \
			"$(guest_value "$A" "md5_${d}_r")"
done
[ "$GT_RC" = 0 ] && gt_pass "diskmodes: boot 1 of A powers off with exit 0" ||
	gt_fail "diskmodes: boot 1 of A powers off with exit 0" "exit code $GT_RC"
check "immutable base unchanged byte for byte" cmp -s "$W/imm.raw" "$W/imm.orig"
check "multiattach base unchanged byte for byte" cmp -s "$W/ma.qcow2" "$W/ma.orig"
# (no process substitution: level 1 has no /dev/fd)
qemu-img convert -f vdi -O raw "$W/n.vdi" "$W/n.raw" &&
	dd if="$W/n.raw" of="$W/n.part" bs=1M skip=1 count=4 status=none
check "normal disk holds the guest's data" cmp -s "$W/p1.bin" "$W/n.part"

# Boot 2: A and B at once.
check "snapshot take s1" "$real_vmm" snapshot "$A" take s1 --state-dir "$W/state-a"
build "$W/i2.cpio" "$W/p2.bin" "read imm 65536" "read ma 81920" "write n 98304" \
	"write wt 114688" && cp "$W/i2.cpio" "$W/i2a.cpio" &&
	build "$W/i2b.cpio" "$W/p3.bin" "write ma 81920" || { gt_fail "diskmodes: initramfs 2"; exit 1; }
GT_RUN_ARGS=("${a_disks[@]}")
guest_start "$A2" 1 384 "$W/i2a.cpio"
GT_RUN_ARGS=(--disk "$W/ma.qcow2,multiattach,bus=ide" --state-dir "$W/state-b")
guest_start "$B" 1 384 "$W/i2b.cpio"
guest_wait "$A2" '^GT: done' || gt_fail "diskmodes: boot 2 of A ran its script"
guest_wait "$B" '^GT: done' || gt_fail "diskmodes: VM B ran its script"
guest_wait_exit "$A2" 300
guest_wait_exit "$B" 300
[ "$(guest_value "$A2" md5_imm)" = "$zero" ] && gt_pass "diskmodes: immutable write gone after power off and start" ||
	gt_fail "diskmodes: immutable write gone after power off and start" "$(guest_value "$A2" md5_imm)"
[ "$(guest_value "$A2" md5_ma)" = "$(gt_md5 "$W/p1.bin")" ] && gt_pass "diskmodes: multiattach kept A's change across a start" ||
	gt_fail "diskmodes: multiattach kept A's change across a start" "$(guest_value "$A2" md5_ma)"
[ "$(guest_value "$B" md5_ma)" = "$(gt_md5 "$W/p3.bin")" ] && gt_pass "diskmodes: second VM on the multiattach base writes its own diff" ||
	gt_fail "diskmodes: second VM on the multiattach base writes its own diff" "$(guest_value "$B" md5_ma)"

# Boot 3: after a restore.
check "snapshot restore s1" "$real_vmm" snapshot "$A" restore s1 --state-dir "$W/state-a"
build "$W/i3.cpio" "$W/p1.bin" "read ma 81920" "read n 98304" "read wt 114688" ||
	{ gt_fail "diskmodes: initramfs 3"; exit 1; }
GT_RUN_ARGS=("${a_disks[@]}")
guest_start "$A3" 1 384 "$W/i3.cpio"
guest_wait "$A3" '^GT: done' || gt_fail "diskmodes: boot 3 of A ran its script"
guest_wait_exit "$A3" 300
[ "$(guest_value "$A3" md5_n)" = "$(gt_md5 "$W/p1.bin")" ] && gt_pass "diskmodes: restore brings the normal disk back" ||
	gt_fail "diskmodes: restore brings the normal disk back" "$(guest_value "$A3" md5_n)"
[ "$(guest_value "$A3" md5_wt)" = "$(gt_md5 "$W/p2.bin")" ] && gt_pass "diskmodes: writethrough disk keeps its changes across a restore" ||
	gt_fail "diskmodes: writethrough disk keeps its changes across a restore" "$(guest_value "$A3" md5_wt)"
[ "$(guest_value "$A3" md5_ma)" = "$(gt_md5 "$W/p1.bin")" ] && gt_pass "diskmodes: A does not see B's multiattach change" ||
	gt_fail "diskmodes: A does not see B's multiattach change" "$(guest_value "$A3" md5_ma)"
for f in "$W"/state-a/*.qcow2 "$W"/state-b/*.qcow2 "$W/ma.qcow2" "$W/wt.qcow2" "$W/n.vdi"; do
	check "qemu-img check $(basename "$f")" qemu-img check -q "$f"
done
