#!/bin/bash
# virtio-balloon, free page reporting and page fusion end to end (Linux's virtio_balloon driver):
#  A (1 GiB, --free-page-reporting off): the guest fills 700 MiB and frees it; `control balloon
#    700` -> the guest's free memory falls >= 600 MiB and minivmm's RSS >= 400 MiB; `stats` shows
#    the target, the actual size and the guest's own figures; more than RAM minus the floor is
#    refused; `balloon 0` -> the guest allocates 800 MiB; with the balloon back at 700 MiB the guest
#    allocates 450 MiB: deflate-on-OOM gives pages back and nothing is OOM-killed.
# Free page reporting, --memory MIN:MAX and page fusion: test_balloon_ksm.sh.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
gt_setup
W=$GT_WORK
vmm=$(realpath "${GT_MINIVMM:-./minivmm}")
A=gt-bal-a-$$
. guest-tests/e2e/balloon-lib.sh

initramfs_build "$W/init.cpio" guest-tests/e2e/balloon-init.sh -m "virtio_pci virtio_balloon" || {
	gt_fail "balloon: build the initramfs"
	exit 1
}

# --- A: the balloon ------------------------------------------------------------------------
GT_RUN_ARGS=(--free-page-reporting off)
guest_start "$A" 1 1024 "$W/init.cpio"
guest_wait "$A" '^GT: ready' || {
	gt_fail "balloon: guest A booted"
	exit 1
}
step "$A" balloon
f=$(guest_value "$A" balloon_features)
expect_eq "A negotiated STATS_VQ and DEFLATE_ON_OOM, not REPORTING (--free-page-reporting off)" \
	"${f:1:1}${f:2:1}${f:5:1}" 110
step "$A" "hold 700"
expect_eq "A filled 700 MiB" "$(guest_value "$A" hold_700)" ok
rss_full=$(rss_mib "$A")
step "$A" release
step "$A" mem
free1=$(guest_value "$A" memfree)

"$vmm" control "$A" balloon 700 >"$W/b700.out" 2>&1
expect_eq "control balloon 700 is accepted" "$(field "$W/b700.out" target_mib)" 700
wait_actual "$A" 700
expect_eq "the guest's balloon reaches 700 MiB (config actual)" "$(actual_mib "$A")" 700
step "$A" mem
free2=$(guest_value "$A" memfree)
expect_ge "A's free memory fell by >= 600 MiB (MemFree $free1 -> $free2 MiB)" $((free1 - free2)) 600
rss_b=$(rss_mib "$A")
expect_ge "minivmm's RSS fell by >= 400 MiB ($rss_full -> $rss_b MiB)" $((rss_full - rss_b)) 400

"$vmm" control "$A" stats >"$W/stats.a" 2>&1
expect_eq "stats: balloon target, actual and held 700 MiB" \
	"$(field "$W/stats.a" balloon.target_mib)/$(field "$W/stats.a" balloon.actual_mib)/$(field "$W/stats.a" balloon.held_mib)" \
	700/700/700
sfree=$(field "$W/stats.a" guest.free_mib)
if [ -n "$sfree" ] && [ "$sfree" -le $((free2 + 64)) ] && [ "$sfree" -ge $((free2 - 64)) ]; then
	gt_pass "balloon: stats: the guest's free memory ($sfree MiB) agrees with its MemFree ($free2)"
else
	gt_fail "balloon: stats: the guest's free memory agrees with its MemFree" "stats '$sfree', MemFree $free2"
fi
missing=""
for k in guest.total_mib guest.available_mib guest.cached_mib guest.swap_in_kib guest.swap_out_kib \
	guest.major_faults balloon.oom_deflated_pages vm.rss_mib vm.shared_pages; do
	[ -n "$(field "$W/stats.a" $k)" ] || missing="$missing $k"
done
expect_eq "stats shows every figure${missing:+ (missing:$missing)}" "${missing:-}" ""
check_json() { "$vmm" control "$A" stats --json | jq -e '.ok and .result.vm.rss_mib > 0 and .result.balloon.target_mib == 700' >/dev/null; }
gt_check "balloon: stats --json is one JSON reply for scripts" check_json

"$vmm" control "$A" balloon 1000 >"$W/big.out" 2>&1
rc=$?
if [ "$rc" = 1 ] && grep -q "at most 896" "$W/big.out"; then
	gt_pass "balloon: balloon 1000 on a 1024 MiB VM is refused, naming the limit"
else
	gt_fail "balloon: balloon 1000 is refused" "rc=$rc: $(head -c 200 "$W/big.out")"
fi

"$vmm" control "$A" balloon 0 >/dev/null 2>&1
wait_actual "$A" 0
expect_eq "balloon 0: the guest takes every page back" "$(actual_mib "$A")" 0
step "$A" "hold 800"
expect_eq "after balloon 0 the guest allocates 800 MiB" "$(guest_value "$A" hold_800)" ok
step "$A" release

"$vmm" control "$A" balloon 700 >/dev/null 2>&1
wait_actual "$A" 700
step "$A" "hold 450"
expect_eq "balloon at 700 MiB: the guest still allocates 450 MiB (deflate on OOM)" \
	"$(guest_value "$A" hold_450)" ok
step "$A" oom
expect_eq "nothing was OOM-killed" "$(guest_value "$A" oom_kills)" 0
"$vmm" control "$A" stats >"$W/stats.oom" 2>&1
expect_ge "stats counts the pages deflated on OOM" "$(field "$W/stats.oom" balloon.oom_deflated_pages)" 1
act=$(actual_mib "$A")
expect_ge "the balloon gave pages back (actual $act MiB, target 700)" $((700 - ${act:-700})) 1
step "$A" release

for vm in "$A"; do
	guest_send "$vm" "poweroff -f"
	guest_wait_exit "$vm" 300
	expect_eq "$vm powered off (exit 0)" "$GT_RC" 0
done
