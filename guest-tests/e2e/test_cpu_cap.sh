#!/bin/bash
# Execution cap and weight on a running Debian kernel, measured inside the guest: the same CPU-bound
# loop timed by the guest's clock at --cpu-cap 50 (the option), then uncapped (control cpucap 100),
# 30 and 80 (control cpucap while running): its progress rate against the uncapped one.  Inside the
# nested harness level 1 accounts a level-2 guest's CPU time poorly (as the issue warns), so the
# issue's accuracy (30% -> 25-35%) cannot be checked here: four runs gave 33.1, 35.7, 43.5 and 38.0%
# at 30%, 57.1-65.0 / 43.1% at 50%, 58.0-83.8% at 80%.  What is checked is that the cap takes
# effect and moves: 30% well below uncapped (20-50), 50% (35-70), and 80% at least 10 points above
# 30% (and 55 or more).  Accuracy on real KVM is still to be measured.
# --cpu-weight 50 puts every thread of the VMM at nice 3.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
gt_setup
vm=gt-cap-$$
T=cpu_cap
ctl() { "$GT_MINIVMM" control "$vm" "$@" 2>&1; }
. guest-tests/e2e/cpu-lib.sh
within() { # name pct t_uncapped t_capped lo hi
	local got
	got=$(awk -v u="$3" -v c="$4" 'BEGIN { printf "%.1f", (c > 0 ? 100 * u / c : 0) }')
	if awk -v g="$got" -v lo="$5" -v hi="$6" 'BEGIN { exit !(g >= lo && g <= hi) }'; then
		gt_pass "$T: $1: progress $got% of uncapped (${3}s vs ${4}s; accepted $5-$6)"
	else
		gt_fail "$T: $1" "progress $got% of uncapped (${3}s vs ${4}s), accepted $5-$6"
	fi
}

initramfs_build "$GT_WORK/init.cpio" guest-tests/e2e/cpuhotplug-init.sh || {
	gt_fail "$T: build the initramfs"
	exit 1
}
GT_RUN_ARGS=(--cpu-cap 50 --cpu-weight 50)
guest_start "$vm" 1 256 "$GT_WORK/init.cpio"
if ! guest_wait "$vm" '^GT: ready'; then
	gt_fail "$T: boot to /init" "no 'GT: ready' on the console"
	exit 1
fi
pid=$(guest_pid "$vm")
nices=$(for f in /proc/"$pid"/task/*/stat; do sed 's/.*) //' "$f" | cut -d' ' -f17; done | sort -u | tr '\n' ' ')
[ "$nices" = "3 " ] && gt_pass "$T: --cpu-weight 50: every VMM thread at nice 3" ||
	gt_fail "$T: --cpu-weight 50: every VMM thread at nice 3" "nice values: $nices"
cap=$(ctl info | sed -n 's/^cpu_cap: //p')
[ "$cap" = 50 ] && gt_pass "$T: info shows --cpu-cap 50" || gt_fail "$T: info shows --cpu-cap 50" "cpu_cap '$cap'"

# Size the loop for ~3 s uncapped: 6 s at the cap of 50.
t=$(work 20000)
n=$(awk -v t="$t" 'BEGIN { n = int(20000 * 6 / (t > 0.05 ? t : 0.05)); print n < 20000 ? 20000 : n }')
echo "# 20000 iterations at 50%: ${t}s; measuring with $n"
t50=$(work "$n")
ctl cpucap 100 >/dev/null
t100=$(work "$n")
out=$(ctl cpucap 30)
echo "$out" | grep -q '^cpu_cap: 30$' && gt_pass "$T: control cpucap 30 answers" || gt_fail "$T: control cpucap 30" "$out"
t30=$(work "$n")
ctl cpucap 80 >/dev/null
t80=$(work "$n")
within "--cpu-cap 50" 50 "$t100" "$t50" 35 70
within "cpucap 30" 30 "$t100" "$t30" 20 50
p30=$(awk -v u="$t100" -v c="$t30" 'BEGIN { printf "%.1f", (c > 0 ? 100 * u / c : 0) }')
lo80=$(awk -v p="$p30" 'BEGIN { v = p + 10; print (v > 55 ? v : 55) }')
within "cpucap 80 (raised while running)" 80 "$t100" "$t80" "$lo80" 100
out=$(ctl cpucap 0)
[ $? -ne 0 ] && echo "$out" | grep -q 'cpucap PERCENT' && gt_pass "$T: cpucap 0 refused ($out)" ||
	gt_fail "$T: cpucap 0 refused" "$out"

guest_send "$vm" 'poweroff -f'
guest_wait_exit "$vm" 300
[ "$GT_RC" = 0 ] && gt_pass "$T: poweroff ends the VMM with exit 0" || gt_fail "$T: poweroff" "exit code $GT_RC"
