#!/bin/bash
# --cpu-weight between two VMs competing for level 1's one CPU: two 1-vCPU guests, --cpu-weight 50
# and 200 (1:4 in cgroup cpu.weight units; nice 3 and -3, CFS weights 526 and 1991), both spinning.
# Measured where the weight acts: the CPU time of each VMM's vcpu0 thread over the same 10 s of
# level 1's clock (cpu-lib.sh; level 1 accounts its own threads exactly however slowly the host
# runs it).  The light VM's share of the two must be near CFS's 526 / (526 + 1991) = 21%: accepted
# 11-31% (the VMMs' other threads and the harness's own processes share the CPU too).  Same
# weights (100 and 100) as the control: 40-60%.  Each VMM runs in a session of its own (setsid),
# as two VMs started from two terminals or two services do: with autogroups (Debian's default)
# nice compares threads only within a session, so this checks that the weight reaches the
# session's group too.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
gt_setup
T=cpu_weight
. guest-tests/e2e/cpu-lib.sh
initramfs_build "$GT_WORK/init.cpio" guest-tests/e2e/cpuhotplug-init.sh || {
	gt_fail "$T: build the initramfs"
	exit 1
}
printf '#!/bin/sh\nexec setsid %s "$@"\n' "$GT_MINIVMM" >"$GT_WORK/minivmm-setsid"
chmod 755 "$GT_WORK/minivmm-setsid"
share() { # WEIGHT_A WEIGHT_B LO HI: A's share in % of the two vCPU threads' CPU time, within LO-HI
	local a=gt-wa$1-$$ b=gt-wb$2-$$ pa pb a0 b0 a1 b1 got
	GT_RUN_ARGS=(--cpu-weight "$1")
	GT_MINIVMM=$GT_WORK/minivmm-setsid guest_start "$a" 1 256 "$GT_WORK/init.cpio"
	GT_RUN_ARGS=(--cpu-weight "$2")
	GT_MINIVMM=$GT_WORK/minivmm-setsid guest_start "$b" 1 256 "$GT_WORK/init.cpio"
	if ! guest_wait "$a" '^GT: ready' || ! guest_wait "$b" '^GT: ready'; then
		gt_fail "$T: $1:$2: boot to /init" "no 'GT: ready' on a console"
		return
	fi
	pa=$(guest_pid "$a") pb=$(guest_pid "$b")
	echo "# $1:$2: sessions' groups: $(cat /proc/"$pa"/autogroup 2>/dev/null) / $(cat /proc/"$pb"/autogroup 2>/dev/null)"
	guest_send "$a" 'while :; do :; done &'
	guest_send "$b" 'while :; do :; done &'
	sleep 2 # both spin
	a0=$(thread_sample "$pa" vcpu0) b0=$(thread_sample "$pb" vcpu0)
	sleep 10
	a1=$(thread_sample "$pa" vcpu0) b1=$(thread_sample "$pb" vcpu0)
	if [ -z "$a0" ] || [ -z "$b0" ] || [ -z "$a1" ] || [ -z "$b1" ]; then
		gt_fail "$T: weights $1:$2" "no vcpu0 thread with a schedstat in /proc/$pa/task or /proc/$pb/task"
	else
		got=$(echo "$a0 $a1 $b0 $b1" | awk '{ a = $4 - $2; b = $8 - $6; printf "%.1f", (a + b > 0 ? 100 * a / (a + b) : -1) }')
		echo "# weights $1:$2: vcpu0 of A ran $(sample_share "$a0" "$a1")% of level 1's CPU, of B $(sample_share "$b0" "$b1")%"
		if awk -v g="$got" -v lo="$3" -v hi="$4" 'BEGIN { exit !(g >= lo && g <= hi) }'; then
			gt_pass "$T: weights $1:$2: the first VM's vCPU had $got% of the two vCPUs' CPU time (accepted $3-$4)"
		else
			gt_fail "$T: weights $1:$2" "the first VM's vCPU had $got% of the two vCPUs' CPU time, accepted $3-$4"
		fi
	fi
	guest_send "$a" 'poweroff -f'
	guest_send "$b" 'poweroff -f'
	guest_wait_exit "$a" 300
	guest_wait_exit "$b" 300
}
share 100 100 40 60
share 50 200 11 31
