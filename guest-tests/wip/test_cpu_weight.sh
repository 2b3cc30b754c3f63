#!/bin/bash
# --cpu-weight between two VMs competing for level 1's one CPU: two 1-vCPU guests, --cpu-weight 50
# and 200 (1:4 in cgroup cpu.weight units; nice 3 and -3, CFS weights 526 and 1991), each spin the
# same shell loop for 20 s of its own clock at the same time.  The light VM's share of the two
# loops' iterations must be near CFS's 526 / (526 + 1991) = 21%: accepted 11-31% (the VMMs' other
# threads and the harness's own processes share the CPU too).  Same weights (100 and 100) as the
# control: 40-60%.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
gt_setup
T=cpu_weight
initramfs_build "$GT_WORK/init.cpio" guest-tests/e2e/cpuhotplug-init.sh || {
	gt_fail "$T: build the initramfs"
	exit 1
}
# Both guests spin until their clock passes the start + 20 s, then print their iteration count
# (uptime in centiseconds: the integer and fraction digits run together)
SPIN='read u0 r </proc/uptime; end=$((${u0%.*}${u0#*.} + 2000)); i=0; while :; do i=$((i+1)); if [ $((i % 500)) -eq 0 ]; then read u r </proc/uptime; [ ${u%.*}${u#*.} -ge $end ] && break; fi; done; echo "GT: spun=$i"'
share() { # WEIGHT_A WEIGHT_B LO HI: A's share in % of the iterations, within LO-HI
	local a=gt-wa-$$ b=gt-wb-$$ na nb got
	GT_RUN_ARGS=(--cpu-weight "$1")
	guest_start "$a" 1 256 "$GT_WORK/init.cpio"
	GT_RUN_ARGS=(--cpu-weight "$2")
	guest_start "$b" 1 256 "$GT_WORK/init.cpio"
	if ! guest_wait "$a" '^GT: ready' || ! guest_wait "$b" '^GT: ready'; then
		gt_fail "$T: $1:$2: boot to /init" "no 'GT: ready' on a console"
		return
	fi
	sleep 5 # the guests' last boot work settles
	guest_send "$a" "$SPIN"
	guest_send "$b" "$SPIN"
	guest_wait "$a" '^GT: spun=' 600 && guest_wait "$b" '^GT: spun=' 600
	na=$(guest_value "$a" spun) nb=$(guest_value "$b" spun)
	got=$(awk -v a="$na" -v b="$nb" 'BEGIN { printf "%.1f", (a + b > 0 ? 100 * a / (a + b) : -1) }')
	if awk -v g="$got" -v lo="$3" -v hi="$4" 'BEGIN { exit !(g >= lo && g <= hi) }'; then
		gt_pass "$T: weights $1:$2: the first VM made $got% of the iterations ($na vs $nb; accepted $3-$4)"
	else
		gt_fail "$T: weights $1:$2" "the first VM made $got% of the iterations ($na vs $nb), accepted $3-$4"
	fi
	guest_send "$a" 'poweroff -f'
	guest_send "$b" 'poweroff -f'
	guest_wait_exit "$a" 300
	guest_wait_exit "$b" 300
}
share 100 100 40 60
share 50 200 11 31
