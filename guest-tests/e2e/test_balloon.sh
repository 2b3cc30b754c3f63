#!/bin/bash
# virtio-balloon, free page reporting and page fusion end to end (Linux's virtio_balloon driver):
#  A (1 GiB, --free-page-reporting off): the guest fills 700 MiB and frees it; `control balloon
#    700` -> the guest's free memory falls >= 600 MiB and minivmm's RSS >= 400 MiB; `stats` shows
#    the target, the actual size and the guest's own figures; more than RAM minus the floor is
#    refused; `balloon 0` -> the guest allocates 800 MiB; with the balloon back at 700 MiB the guest
#    allocates 450 MiB: deflate-on-OOM gives pages back and nothing is OOM-killed.
#  B (1 GiB) and C (512 MiB), both --pagefusion on: free page reporting lowers B's RSS >= 400 MiB
#    after it frees 700 MiB with no balloon target; with the host's KSM switched on (level 1: the
#    test switches it on; elsewhere only if it already runs), 256 MiB of one repeated page in B
#    and in C merge: each has >= 40,000 pages merged, `stats` shows them and the host's totals; A,
#    without the option, has none.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
gt_setup
W=$GT_WORK
vmm=$(realpath "${GT_MINIVMM:-./minivmm}")
A=gt-bal-a-$$
B=gt-bal-b-$$
C=gt-bal-c-$$
KSM=/sys/kernel/mm/ksm
step_n=0

step() { # VM "ARGS": sh /gt.sh ARGS in the guest, then wait until it has finished
	step_n=$((step_n + 1))
	guest_send "$1" "sh /gt.sh $2; echo GT: step=$step_n"
	guest_wait "$1" "^GT: step=$step_n\$" 600 || gt_fail "balloon: guest $1 ran '$2'"
}
field() { awk -F': ' -v k="$2" '$1 == k { print $2 }' "$1"; } # FILE KEY of a human reply
rss_mib() { awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/$(guest_pid "$1")/status"; }
merged() { cat "/proc/$(guest_pid "$1")/ksm_merging_pages" 2>/dev/null; }
actual_mib() {
	"$vmm" control "$1" balloon >"$W/actual.out" 2>&1
	field "$W/actual.out" actual_mib
}
wait_actual() { # VM MIB: until the driver holds MIB (bounded: the bound only stops a hang)
	local i
	for i in $(seq 600); do
		[ "$(actual_mib "$1")" = "$2" ] && return 0
		sleep 0.5
	done
	return 1
}
expect_ge() { # NAME VALUE MIN
	if [ -n "$2" ] && [ "$2" -ge "$3" ] 2>/dev/null; then
		gt_pass "balloon: $1 ($2 >= $3)"
	else
		gt_fail "balloon: $1" "got '$2', want >= $3"
	fi
}
expect_eq() { # NAME VALUE WANT
	if [ "$2" = "$3" ]; then gt_pass "balloon: $1"; else gt_fail "balloon: $1" "got '$2', want '$3'"; fi
}

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
step "$A" "same 256"

# --- B and C: free page reporting and page fusion -------------------------------------------
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
guest_wait "$B" '^GT: ready' && guest_wait "$C" '^GT: ready' || {
	gt_fail "balloon: guests B and C booted"
	exit 1
}
if [ "$ksm_on" = 1 ]; then
	expect_eq "--pagefusion on with the host's KSM off says so, once" \
		"$(grep -c "KSM is off" "$W/$B.stderr")" 1
fi
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
	if [ "$ksm_on" = 1 ]; then
		echo 1000 >"$KSM/pages_to_scan"
		echo 20 >"$KSM/sleep_millisecs"
		echo 1 >"$KSM/run"
	fi
	step "$B" "same 256"
	step "$C" "same 256"
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
	expect_eq "A, without --pagefusion, has no page merged" "$(merged "$A")" 0
fi

for vm in "$A" "$B" "$C"; do
	guest_send "$vm" "poweroff -f"
	guest_wait_exit "$vm" 300
	expect_eq "$vm powered off (exit 0)" "$GT_RC" 0
done
