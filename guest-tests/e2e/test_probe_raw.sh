#!/bin/bash
# Probed raw disks end to end (QEMU's CVE-2008-2004 class), three starts of one VM with three raw
# SATA disks given without format= (so probed), the guest as the attacker:
#  1. The guest writes a VMDK descriptor whose flat extent is a host file into sectors 0-7 of v
#     (the part in sectors 1-7 first, as in issue 10: the old guard looked at sector 0 only) and a
#     qcow2 image whose backing file is that host file onto q (all but sector 0 first).  The
#     writes that complete a header are refused (the disks stay raw); minivmm says once per disk
#     that the disk was probed and records each disk's format in STATE/formats.json.
#  2. The VM starts again; r is given with format=raw, so the guest can write the qcow2 image onto
#     it (the file then really probes as qcow2: qemu-img says so).
#  3. The VM starts again without format=: r opens as raw, the format recorded at its first
#     attach, with one warning; the guest reads back its own bytes from every disk and never
#     the host file.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
gt_setup
W=$GT_WORK
vm=gt-probe-$$

check() { gt_check "probe-raw: $1" "${@:2}"; }
same() { # NAME GOT WANT
	[ -n "$2" ] && [ "$2" = "$3" ] && gt_pass "probe-raw: $1" || gt_fail "probe-raw: $1" "got '$2', want '$3'"
}

# The host file the images name: a marker line over and over (1 MiB), then a sparse rest up to
# the size of the disk it stands in for, so that the guest would find the disk by its size.
marker="GT-HOST-SECRET-$$-$RANDOM"
printf '%s\n' "$marker" >"$W/marker.txt"
yes "$marker" | head -c $((1 << 20)) >"$W/secret.bin"
truncate -s 48M "$W/secret.bin"
# A VMDK descriptor without its "# Disk DescriptorFile" line: a comment in sector 0, the keys in
# sectors 1-7, newlines up to 4 KiB (no NUL byte: the text probe needs none in its 4 KiB).
{
	printf '# written by a guest\n'
	head -c 600 /dev/zero | tr '\0' '\n'
} | head -c 512 >"$W/vmdk.bin"
{
	printf 'version=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n'
	printf 'RDONLY 2048 FLAT "%s" 0\n' "$W/secret.bin"
	head -c 3584 /dev/zero | tr '\0' '\n'
} | head -c 3584 >>"$W/vmdk.bin"
# What a probe would see if the whole descriptor landed on v (1 MiB: a larger file is too large
# for a descriptor): the test is meaningful.
cp "$W/vmdk.bin" "$W/vmdk.check" && truncate -s 1M "$W/vmdk.check"
check "the guest's descriptor, written whole on a 1 MiB disk, would probe as vmdk" \
	sh -c "'$GT_MINIVMM' img info --output=json '$W/vmdk.check' | grep -q '\"format\": \"vmdk\"'"
qemu-img create -q -f qcow2 -b "$W/secret.bin" -F raw "$W/attack.qcow2" 48M || {
	gt_fail "probe-raw: create the qcow2 image"
	exit 1
}
truncate -s 1M "$W/v.raw" && truncate -s 40M "$W/q.raw" && truncate -s 48M "$W/r.raw" || {
	gt_fail "probe-raw: create the disks"
	exit 1
}
initramfs_build "$W/i.cpio" guest-tests/e2e/probe-init.sh -m "ahci sd_mod" \
	-f "$W/vmdk.bin:/vmdk.bin" -f "$W/attack.qcow2:/attack.qcow2" \
	-f "$W/marker.txt:/marker.txt" || {
	gt_fail "probe-raw: initramfs"
	exit 1
}
head64() { head -c 65536 "$1" | md5sum | cut -d' ' -f1; }
attack_head=$(head64 "$W/attack.qcow2")
st=$W/state
run() { # BOOT PHASE R-FORMAT-OPTION
	GT_RUN_ARGS=(--disk "$W/v.raw" --disk "$W/q.raw" --disk "$W/r.raw$3" --state-dir "$st")
	guest_start "$vm-$1" 1 384 "$W/i.cpio" "gtphase=$2"
	guest_wait "$vm-$1" '^GT: done$' || gt_fail "probe-raw: start $1 ran its script"
	guest_wait_exit "$vm-$1" 300
	[ "$GT_RC" = 0 ] && gt_pass "probe-raw: start $1 powers off with exit 0" ||
		gt_fail "probe-raw: start $1 powers off with exit 0" "exit code $GT_RC"
}
# Every start: each disk reads as its file's bytes, and the host file never shows.
heads() { # BOOT
	local n
	for n in v q r; do
		same "start $1: the guest reads $n.raw's own bytes" \
			"$(guest_value "$vm-$1" "head_$n")" "$(head64 "$W/$n.raw")"
		same "start $1: the guest never reads the host file through $n.raw" \
			"$(guest_value "$vm-$1" "secret_$n")" 0
	done
}

# Start 1: the attacks.
run 1 1 ""
for w in vmdk_tail:ok vmdk_head:refused vmdk_all:refused qcow2_tail:ok qcow2_head:refused \
	qcow2_all:refused; do
	same "start 1: write ${w%%:*} ${w##*:}" "$(guest_value "$vm-1" "${w%%:*}")" "${w##*:}"
done
heads 1
for n in v q r; do
	f=$(realpath "$W/$n.raw")
	check "start 1: $n.raw still probes as raw" \
		sh -c "qemu-img info --output=json '$f' | grep -q '\"format\": \"raw\"'"
	check "start 1: warned once that $n.raw was probed as raw" \
		test "$(grep -c "WARNING: $W/$n.raw: format probed as raw; writes to its first 4096 bytes" \
			"$W/$vm-1.stderr")" = 1
	check "start 1: formats.json records $n.raw as raw" \
		grep -q "\"$f\": *\"raw\"" "$st/formats.json"
done

# Start 2: r with format=raw takes the qcow2 image; no warning for it.
run 2 2 ",format=raw"
same "start 2: write qcow2_raw ok (format=raw: no guard)" "$(guest_value "$vm-2" qcow2_raw)" ok
heads 2
same "start 2: r.raw now holds the qcow2 image" "$(head64 "$W/r.raw")" "$attack_head"
check "start 2: r.raw now probes as qcow2 (a probe would follow its backing file)" \
	sh -c "qemu-img info --output=json '$W/r.raw' | grep -q '\"format\": \"qcow2\"'"
check "start 2: no probe warning for the disk given format=raw" \
	sh -c "! grep -q 'r.raw: format probed' '$W/$vm-2.stderr'"

# Start 3: no format= again: r opens as its recorded raw, says so, and stays raw to the guest.
run 3 3 ""
heads 3
same "start 3: the guest reads its own qcow2 bytes from r.raw" \
	"$(guest_value "$vm-3" head_r)" "$attack_head"
check "start 3: one warning that r.raw opens as its recorded raw though it probes as qcow2" \
	test "$(grep -c "WARNING: $W/r.raw: opened as raw, the format recorded at its first attach, although it now probes as qcow2" \
		"$W/$vm-3.stderr")" = 1
