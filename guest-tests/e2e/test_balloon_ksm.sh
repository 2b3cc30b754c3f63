#!/bin/bash
# Free page reporting, the automatic balloon and page fusion end to end (Linux's virtio_balloon):
#  B (1 GiB) and C (512 MiB), both --pagefusion on: free page reporting lowers B's RSS >= 400 MiB
#    after it frees 700 MiB with no balloon target; with the host's KSM switched on (level 1: the
#    test switches it on; elsewhere only if it already runs), 256 MiB of one repeated page in B
#    and in C merge: each has >= 40,000 pages merged, `stats` shows them and the host's totals.
#  D (--memory 384:768, no --pagefusion): boots with 384 MiB in the balloon; allocating 400 MiB
#    works (the policy deflates, nothing is OOM-killed), the balloon goes back to 384 MiB once the
#    memory is free again; D's 64 MiB of the same page are not merged.
# The balloon itself (inflate, deflate, stats, deflate on OOM): test_balloon.sh.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
gt_setup
W=$GT_WORK
vmm=$(realpath "${GT_MINIVMM:-./minivmm}")
B=gt-bal-b-$$
C=gt-bal-c-$$
D=gt-bal-d-$$
KSM=/sys/kernel/mm/ksm
. guest-tests/e2e/balloon-lib.sh

initramfs_build "$W/init.cpio" guest-tests/e2e/balloon-init.sh -m "virtio_pci virtio_balloon" || {
	gt_fail "balloon: build the initramfs"
	exit 1
}

ksm_on=0
if [ "${GT_LEVEL:-}" = 1 ] && [ -w "$KSM/run" ]; then
	echo 0 >"$KSM/run" # level 1 is ours: start with KSM off, to see the warning
	ksm_on=1
elif [ "$(cat "$KSM/run" 2>/dev/null)" = 1 ]; then
	ksm_on=2
fi
GT_RUN_ARGS=(--pagefusion on)
guest_start "$B" 1 1024 "$W/init.cpio"
guest_start "$C" 1 512 "$W/init.cpio"
GT_RUN_ARGS=(--memory 384:768)
guest_start "$D" 1 768 "$W/init.cpio"
guest_wait "$B" '^GT: ready' && guest_wait "$C" '^GT: ready' && guest_wait "$D" '^GT: ready' || {
	gt_fail "balloon: guests B, C and D booted"
	exit 1
}
if [ "$ksm_on" = 1 ]; then
	expect_eq "--pagefusion on with the host's KSM off says so, once" \
		"$(grep -c "KSM is off" "$W/$B.stderr")" 1
fi
# --- D: --memory 384:768, the automatic balloon -----------------------------------------------
wait_actual "$D" 384
expect_eq "D boots with MAX-MIN = 384 MiB in the balloon" "$(actual_mib "$D")" 384
"$vmm" control "$D" balloon 100 >"$W/d100.out" 2>&1
rc=$?
if [ "$rc" = 1 ] && grep -q "follows --memory MIN:MAX" "$W/d100.out"; then
	gt_pass "balloon: a hand-set target is refused while the balloon is automatic"
else
	gt_fail "balloon: a hand-set target is refused while automatic" "rc=$rc: $(head -c 200 "$W/d100.out")"
fi
step "$D" "hold 400"
expect_eq "D allocates 400 MiB with 384 of its 768 MiB in the balloon" "$(guest_value "$D" hold_400)" ok
step "$D" oom
expect_eq "nothing was OOM-killed in D" "$(guest_value "$D" oom_kills)" 0
for i in $(seq 600); do
	t=$(target_mib "$D")
	[ "${t:-384}" -lt 384 ] && break
	sleep 0.5
done
expect_ge "the policy deflated D's balloon while memory was short (target $t MiB)" $((384 - ${t:-384})) 1
step "$D" release
for i in $(seq 600); do
	t=$(target_mib "$D")
	[ "${t:-0}" = 384 ] && break
	sleep 0.5
done
expect_eq "with memory free again the policy inflates D's balloon back to MAX-MIN" "$t" 384
"$vmm" control "$D" stats >"$W/stats.d" 2>&1
expect_eq "stats: balloon.automatic true for D" "$(field "$W/stats.d" balloon.automatic)" true
# 64 MiB (16,384 pages that would merge with KSM on) are enough to see that D merges none.
step "$D" "same 64"

# --- B: free page reporting; B and C: page fusion --------------------------------------------
step "$B" balloon
f=$(guest_value "$B" balloon_features)
expect_eq "B negotiated free page reporting" "${f:5:1}" 1
step "$B" "hold 700"
expect_eq "B filled 700 MiB" "$(guest_value "$B" hold_700)" ok
rss_full=$(rss_mib "$B")
step "$B" release
for i in $(seq 600); do
	r=$(rss_mib "$B")
	[ $((rss_full - r)) -ge 400 ] && break
	sleep 0.5
done
expect_ge "free page reporting: B's RSS fell by >= 400 MiB with no balloon target ($rss_full -> $r MiB)" \
	$((rss_full - r)) 400
"$vmm" control "$B" stats >"$W/stats.b" 2>&1
expect_ge "stats: free page reporting returned >= 400 MiB" "$(field "$W/stats.b" balloon.reported_mib)" 400
expect_eq "stats: B's balloon target is 0" "$(field "$W/stats.b" balloon.target_mib)" 0

if [ "$ksm_on" = 0 ]; then
	echo "# the host's KSM is off and this is not level 1: page fusion checks skipped"
else
	# KSM needs a few full passes over B's and C's 1.5 GiB before pages merge: in level 1 (ours)
	# it scans 10,000 pages every 10 ms, so that the passes are bounded by scanning, not sleeping.
	# It starts after the guests wrote their pages: no pass is spent on pages still changing.
	step "$B" "same 256"
	step "$C" "same 256"
	if [ "$ksm_on" = 1 ]; then
		echo 10000 >"$KSM/pages_to_scan"
		echo 10 >"$KSM/sleep_millisecs"
		echo 1 >"$KSM/run"
	fi
	for i in $(seq 1200); do
		b=$(merged "$B")
		c=$(merged "$C")
		[ "${b:-0}" -ge 40000 ] && [ "${c:-0}" -ge 40000 ] && break
		sleep 0.5
	done
	expect_ge "page fusion: B's 256 MiB of one page are merged (ksm_merging_pages)" "$b" 40000
	expect_ge "page fusion: C, with the same contents, shares them too" "$c" 40000
	"$vmm" control "$B" stats >"$W/stats.ksm" 2>&1
	expect_ge "stats: vm.shared_pages of B" "$(field "$W/stats.ksm" vm.shared_pages)" 40000
	expect_ge "stats: the host's KSM totals (host_ksm.pages_sharing)" \
		"$(field "$W/stats.ksm" host_ksm.pages_sharing)" 40000
	expect_eq "stats: vm.pagefusion true" "$(field "$W/stats.ksm" vm.pagefusion)" true
	expect_eq "D, without --pagefusion, has no page merged" "$(merged "$D")" 0
fi

for vm in "$B" "$C" "$D"; do
	guest_send "$vm" "poweroff -f"
	guest_wait_exit "$vm" 300
	expect_eq "$vm powered off (exit 0)" "$GT_RC" 0
done
