#!/bin/bash
# The execution cap through a delegated cgroup v2 (cpu/cpu_cgroup.h): the test (root in level 1)
# mounts cgroup2 if need be, makes a cgroup with the cpu controller and starts minivmm in it, as a
# user would in a cgroup delegated to them.  minivmm then puts each vCPU thread in a threaded
# child with cpu.max; checked: `info` names the cgroup, the vCPU thread is in its child, cpu.max
# follows --cpu-cap and `cpucap`, and the children are gone after poweroff; the guest's progress at
# 30% against uncapped is printed (level 1 under load is too noisy to check it).  Without a delegated cgroup the cap stays in
# the VMM (test_cpu_cap.sh).
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
gt_setup
vm=gt-capcg-$$
T=cpu_cap_cgroup
root=/sys/fs/cgroup
if [ ! -f $root/cgroup.controllers ]; then
	mount -t cgroup2 none $root 2>/dev/null || { gt_fail "$T: mount cgroup2 on $root"; exit 1; }
fi
grep -qw cpu $root/cgroup.subtree_control || echo +cpu >$root/cgroup.subtree_control 2>/dev/null
CG=$root/gt-deleg-$$
if ! grep -qw cpu $root/cgroup.subtree_control || ! mkdir "$CG"; then
	gt_fail "$T: a cgroup with the cpu controller" "$(cat $root/cgroup.subtree_control)"
	exit 1
fi
trap 'rmdir "$CG" 2>/dev/null' EXIT
# minivmm started inside $CG, as from a shell of a delegated cgroup
real=$(readlink -f "$GT_MINIVMM")
printf '#!/bin/sh\necho $$ >"%s/cgroup.procs" || exit 97\nexec "%s" "$@"\n' "$CG" "$real" >"$GT_WORK/in-cgroup"
chmod +x "$GT_WORK/in-cgroup"
GT_MINIVMM=$GT_WORK/in-cgroup
ctl() { "$real" control "$vm" "$@" 2>&1; }
. guest-tests/e2e/cpu-lib.sh

initramfs_build "$GT_WORK/init.cpio" guest-tests/e2e/cpuhotplug-init.sh || {
	gt_fail "$T: build the initramfs"
	exit 1
}
GT_RUN_ARGS=(--cpu-cap 50)
guest_start "$vm" 1 256 "$GT_WORK/init.cpio"
if ! guest_wait "$vm" '^GT: ready'; then
	gt_fail "$T: boot to /init" "no 'GT: ready' on the console"
	exit 1
fi
pid=$(guest_pid "$vm")
child=$CG/minivmm-$pid-vcpu0
by=$(ctl info | sed -n 's/^cpu_cap_by: //p')
[ "$by" = "$CG" ] && gt_pass "$T: info: cpu_cap_by $CG" || gt_fail "$T: info names the cgroup" "cpu_cap_by '$by'"
[ "$(cat "$child/cgroup.type" 2>/dev/null)" = threaded ] && gt_pass "$T: $child is threaded" ||
	gt_fail "$T: the vCPU cgroup" "$(ls "$CG" | tr '\n' ' ')"
tids=$(cat "$child/cgroup.threads" 2>/dev/null)
[ -n "$tids" ] && [ "$(cat /proc/"$pid"/task/"$tids"/comm 2>/dev/null)" = vcpu0 ] &&
	gt_pass "$T: the vcpu0 thread ($tids) is in it" || gt_fail "$T: the vcpu0 thread in its cgroup" "threads '$tids'"
[ "$(cat "$child/cpu.max")" = "50000 100000" ] && gt_pass "$T: --cpu-cap 50: cpu.max 50000 100000" ||
	gt_fail "$T: --cpu-cap 50: cpu.max" "$(cat "$child/cpu.max")"

t=$(work 20000) # size the loop for ~6 s at the cap of 50
n=$(awk -v t="$t" 'BEGIN { n = int(20000 * 6 / (t > 0.05 ? t : 0.05)); print n < 20000 ? 20000 : n }')
ctl cpucap 100 >/dev/null
[ "$(cat "$child/cpu.max")" = "max 100000" ] && gt_pass "$T: cpucap 100: cpu.max max" || gt_fail "$T: cpucap 100" "$(cat "$child/cpu.max")"
t100=$(work "$n")
ctl cpucap 30 >/dev/null
[ "$(cat "$child/cpu.max")" = "30000 100000" ] && gt_pass "$T: cpucap 30: cpu.max 30000 100000" ||
	gt_fail "$T: cpucap 30" "$(cat "$child/cpu.max")"
t30=$(work "$n")
got=$(awk -v u="$t100" -v c="$t30" 'BEGIN { printf "%.1f", (c > 0 ? 100 * u / c : 0) }')
# Reported, not checked: inside level 1 the kernel's own cpu.max gave 41.4% and 16.5% at 30% in two
# runs under load; the mechanics above are what this test checks.
echo "# cpucap 30 through cpu.max: progress $got% of uncapped (${t100}s vs ${t30}s)"

guest_send "$vm" 'poweroff -f'
guest_wait_exit "$vm" 300
[ "$GT_RC" = 0 ] && gt_pass "$T: poweroff ends the VMM with exit 0" || gt_fail "$T: poweroff" "exit code $GT_RC"
[ ! -d "$child" ] && gt_pass "$T: the vCPU cgroups are removed at exit" || gt_fail "$T: cleanup" "$child is still there"
