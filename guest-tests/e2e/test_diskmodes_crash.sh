#!/bin/bash
# kill -9 of minivmm mid-write, end to end over AHCI (six disks: more than IDE takes): three runs of VM C with one state directory.
#  1. C writes pattern P at 1 MiB of a normal qcow2, an immutable raw, a multiattach qcow2, a
#     writethrough qcow2 and a shareable raw disk, and powers off.  `minivmm snapshot C take s1`:
#     the normal qcow2 now writes a snapshot layer in the state directory.
#  2. C starts again with a normal VDI added (a disk attached after the snapshot: written
#     directly).  The guest writes pattern Q at 5 MiB of all six disks, then loops writing random
#     data at random places past 16 MiB of each (O_DIRECT, fsync: a FLUSH CACHE each time).  After
#     two full rounds minivmm gets SIGKILL, wherever it is.
#  3. Every image and every image in the state directory passes `qemu-img check` and
#     `minivmm img check`; the immutable and multiattach bases are unchanged byte for byte; the
#     snapshot tree still reads.  C starts again (same name: its stale lock and control socket
#     must not block) and reads P and Q back: gone from the immutable disk (reset on a fresh
#     start), kept by every other disk (the multiattach diff and the snapshot layer included).
# No result depends on when the kill lands: P and Q were flushed before the loop began, and the
# loop writes only past 16 MiB.
#
# Leaked clusters: accepted for qcow2 (`qemu-img check` exit 3).  A kill between raising a
# cluster's refcount and writing the L2 entry that uses it leaves a cluster counted but unused:
# space lost, no data, and `qemu-img check -r leaks` reclaims it; QEMU leaves the same after a
# crash.  Anything else (corruptions, errors, exit 1 or 2) fails, and so does any leak in a VDI.
cd "$(dirname "$0")/../.."
. guest-tests/lib/guest.sh
gt_setup
W=$GT_WORK
real_vmm=$(realpath "${GT_MINIVMM:-./minivmm}")

check() { gt_check "diskmodes: $1" "${@:2}"; }
build() { # INITRD PATTERN CONF-LINES...
	local out=$1 pat=$2
	shift 2
	printf '%s\n' "$@" >"$W/dm.conf"
	initramfs_build "$out" guest-tests/e2e/diskmodes-init.sh -m "ahci sd_mod" \
		-f "$pat:/pattern.bin" -f "$W/dm.conf:/dm.conf"
}
# qemu-img check, or minivmm img check (same exit codes): clean, or only leaks in a qcow2.
image_ok() { # TOOL FILE
	local fmt rc
	fmt=$(qemu-img info "$2" 2>/dev/null | sed -n 's/^file format: //p')
	if [ "$1" = qemu-img ]; then
		qemu-img check -q "$2" >"$W/check.out" 2>&1
	else
		# The state layers name the disks in $W (outside --state-dir): the user allows them.
		"$real_vmm" img check --allow-backing-path "$W" "$2" >"$W/check.out" 2>&1
	fi
	rc=$?
	[ "$rc" = 0 ] || { [ "$rc" = 3 ] && [ "$fmt" = qcow2 ]; } && return 0
	echo "# $1 check $(basename "$2") ($fmt): exit $rc"
	sed 's/^/#   /' "$W/check.out" | head -5
	return 1
}

for p in P Q; do head -c $((4 * 1024 * 1024)) /dev/urandom >"$W/$p.bin"; done
zero=$(head -c $((4 * 1024 * 1024)) /dev/zero | md5sum | cut -d' ' -f1)
# Sizes tell the disks apart in the guest (MiB): n 40, imm 32, ma 56, wt 64, sh 72, vdi 48.
declare -A sectors=([n]=81920 [imm]=65536 [ma]=114688 [wt]=131072 [sh]=147456 [vdi]=98304)
qemu-img create -q -f qcow2 "$W/n.qcow2" 40M && truncate -s 32M "$W/imm.raw" &&
	qemu-img create -q -f qcow2 "$W/ma.qcow2" 56M && qemu-img create -q -f qcow2 "$W/wt.qcow2" 64M &&
	truncate -s 72M "$W/sh.raw" && qemu-img create -q -f vdi "$W/n.vdi" 48M &&
	cp "$W/imm.raw" "$W/imm.orig" && cp "$W/ma.qcow2" "$W/ma.orig" || {
	gt_fail "diskmodes: crash: create the images"
	exit 1
}
C=gt-dm-c-$$
S=$W/state-c
disks=(--disk "$W/n.qcow2,bus=sata" --disk "$W/imm.raw,immutable,bus=sata"
	--disk "$W/ma.qcow2,multiattach,bus=sata" --disk "$W/wt.qcow2,writethrough,bus=sata"
	--disk "$W/sh.raw,shareable,bus=sata" --state-dir "$S")
names=(n imm ma wt sh)

# Run 1: P everywhere, then a VM snapshot.
conf=()
for d in "${names[@]}"; do conf+=("write $d ${sectors[$d]} 1"); done
build "$W/i1.cpio" "$W/P.bin" "${conf[@]}" || { gt_fail "diskmodes: crash: initramfs 1"; exit 1; }
GT_RUN_ARGS=("${disks[@]}")
guest_start "$C" 1 384 "$W/i1.cpio"
guest_wait "$C" '^GT: done$' || {
	gt_fail "diskmodes: crash: run 1 wrote its pattern"
	exit 1 # nothing after means anything
}
guest_wait_exit "$C" 300
bad=""
for d in "${names[@]}"; do
	[ "$(guest_value "$C" "md5_$d")" = "$(gt_md5 "$W/P.bin")" ] || bad="$bad $d"
done
[ -z "$bad" ] && gt_pass "diskmodes: crash: run 1 wrote and read back every disk" ||
	gt_fail "diskmodes: crash: run 1 wrote and read back every disk" "wrong:$bad"
check "crash: snapshot take s1" "$real_vmm" snapshot "$C" take s1 --state-dir "$S"

# Run 2: Q everywhere, then random writes until the kill.
names+=(vdi)
conf=()
for d in "${names[@]}"; do conf+=("write $d ${sectors[$d]} 5"); done
for d in "${names[@]}"; do conf+=("churn ${sectors[$d]}"); done
build "$W/i2.cpio" "$W/Q.bin" "${conf[@]}" loop || { gt_fail "diskmodes: crash: initramfs 2"; exit 1; }
mv "$W/$C.console" "$W/$C.run1.console" && rm -f "$W/$C.in" "$W/$C.stderr"
GT_RUN_ARGS=("${disks[@]}" --disk "$W/n.vdi,bus=sata")
guest_start "$C" 1 384 "$W/i2.cpio"
pid=$(guest_pid "$C")
if guest_wait "$C" '^GT: loop=2$'; then
	kill -KILL "$pid"
	{ wait "$pid"; } 2>/dev/null # reaped here, bash's "Killed" job notice goes nowhere
	guest_wait_exit "$C" 60      # bash keeps the status: GT_RC is still 137
	[ "$GT_RC" = 137 ] && gt_pass "diskmodes: crash: minivmm killed with SIGKILL mid-write" ||
		gt_fail "diskmodes: crash: minivmm killed with SIGKILL mid-write" "exit code $GT_RC"
else
	gt_fail "diskmodes: crash: run 2 reached its write loop"
	guest_wait_exit "$C" 1
fi
bad=""
for d in "${names[@]}"; do
	[ "$(guest_value "$C" "write_$d")" = ok ] && [ "$(guest_value "$C" "md5_$d")" = "$(gt_md5 "$W/Q.bin")" ] ||
		bad="$bad $d"
done
grep -a -q '^GT: churn_.*=failed' "$W/$C.console" && bad="$bad (a loop write failed)"
[ -z "$bad" ] && gt_pass "diskmodes: crash: run 2 wrote every disk before the kill" ||
	gt_fail "diskmodes: crash: run 2 wrote every disk before the kill" "wrong:$bad"

# After the kill.
images=("$W/n.qcow2" "$W/ma.qcow2" "$W/wt.qcow2" "$W/n.vdi")
nstate=0
for f in "$S"/*; do
	case $f in
	"$S/*") ;; # no state directory: counted below
	*.json | */run.pid) ;; # not images (written by rename: never half written)
	*)
		images+=("$f")
		nstate=$((nstate + 1))
		;;
	esac
done
# The snapshot layer of n, the immutable and the multiattach diffs.
[ "$nstate" = 3 ] && gt_pass "diskmodes: crash: the state directory holds three differencing images" ||
	gt_fail "diskmodes: crash: the state directory holds three differencing images" "$(ls "$S" | tr '\n' ' ')"
for f in "${images[@]}"; do
	check "crash: qemu-img check $(basename "$f")" image_ok qemu-img "$f"
	check "crash: minivmm img check $(basename "$f")" image_ok minivmm "$f"
done
check "crash: immutable base unchanged byte for byte" cmp -s "$W/imm.raw" "$W/imm.orig"
check "crash: multiattach base unchanged byte for byte" cmp -s "$W/ma.qcow2" "$W/ma.orig"
"$real_vmm" snapshot "$C" list --state-dir "$S" >"$W/snaps.out" 2>&1
check "crash: the VM snapshot list still reads s1" grep -q '^s1 ' "$W/snaps.out"

# Run 3: the same VM, started again after the kill.
conf=()
for d in "${names[@]}"; do conf+=("read ${d}_p ${sectors[$d]} 1" "read ${d}_q ${sectors[$d]} 5"); done
build "$W/i3.cpio" "$W/P.bin" "${conf[@]}" || { gt_fail "diskmodes: crash: initramfs 3"; exit 1; }
mv "$W/$C.console" "$W/$C.run2.console" && rm -f "$W/$C.in" "$W/$C.stderr"
guest_start "$C" 1 384 "$W/i3.cpio"
guest_wait "$C" '^GT: done$' ||
	gt_fail "diskmodes: crash: the VM starts again after the kill and reads its disks"
guest_wait_exit "$C" 300
for d in "${names[@]}"; do
	want_p=$(gt_md5 "$W/P.bin") want_q=$(gt_md5 "$W/Q.bin") what="kept"
	[ "$d" = vdi ] && want_p=$zero # attached after run 1
	[ "$d" = imm ] && want_p=$zero want_q=$zero what="reset"
	got="$(guest_value "$C" "md5_${d}_p") $(guest_value "$C" "md5_${d}_q")"
	[ "$got" = "$want_p $want_q" ] && gt_pass "diskmodes: crash: $d $what after the kill and a new start" ||
		gt_fail "diskmodes: crash: $d $what after the kill and a new start" "$got"
done
