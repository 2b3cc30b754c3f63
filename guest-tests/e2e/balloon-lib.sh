# shellcheck shell=bash
# Helpers of the balloon e2e tests (sourced after ../lib/guest.sh; needs $W and $vmm).
step_n=0
step() { # VM "ARGS": sh /gt.sh ARGS in the guest, then wait until it has finished
	step_n=$((step_n + 1))
	guest_send "$1" "sh /gt.sh $2; echo GT: step=$step_n"
	guest_wait "$1" "^GT: step=$step_n\$" 600 || gt_fail "balloon: guest $1 ran '$2'"
}
field() { awk -F': ' -v k="$2" '$1 == k { print $2 }' "$1"; } # FILE KEY of a human reply
rss_mib() { awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/$(guest_pid "$1")/status"; }
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
merged() { cat "/proc/$(guest_pid "$1")/ksm_merging_pages" 2>/dev/null; } # VM: its KSM pages
target_mib() {
	"$vmm" control "$1" balloon >"$W/target.out" 2>&1
	field "$W/target.out" target_mib
}
