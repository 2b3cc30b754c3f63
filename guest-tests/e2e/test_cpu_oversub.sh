#!/bin/bash
# Oversubscription (issue 13): one guest with 8 vCPUs on this host's cores (in level 1: one CPU)
# runs a parallel CPU load to its end: 8 shell loops of arithmetic and 8 loops of subshells
# (fork, exit, TLB shootdowns across the vCPUs), each a fixed amount of work.  Passes when all 8
# CPUs came up, the load finished, and neither the guest's dmesg nor its console has a soft-lockup,
# RCU-stall or hung-task report.  The bound on the wait only stops a hang.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
gt_setup
vm=gt-oversub-$$
T=cpu_oversub
RE='soft lockup|rcu: INFO|rcu_.*detected stall|hung_task|blocked for more than'
# The same for the guest's grep, spelt so that the typed command line, which the console echoes
# (wrapped at 80 columns), never matches RE itself.
RE_TYPED='soft[ ]lockup|rcu:[ ]INFO|rcu_.*detected[ ]stall|hung[_]task|blocked[ ]for more than'

initramfs_build "$GT_WORK/init.cpio" guest-tests/e2e/cpuhotplug-init.sh || {
	gt_fail "$T: build the initramfs"
	exit 1
}
guest_start "$vm" 8 512 "$GT_WORK/init.cpio"
if ! guest_wait "$vm" '^GT: ready' 600; then
	gt_fail "$T: boot to /init with 8 vCPUs" "no 'GT: ready' on the console"
	exit 1
fi
on=$(guest_value "$vm" online)
[ "$on" = 0-7 ] && gt_pass "$T: the guest has CPUs 0-7 online" || gt_fail "$T: the guest has CPUs 0-7 online" "online '$on'"

guest_send "$vm" "for j in 1 2 3 4 5 6 7 8; do (i=0; while [ \$i -lt 20000 ]; do i=\$((i+1)); done) & (i=0; while [ \$i -lt 150 ]; do i=\$((i+1)); x=\$(echo \$i); done) & done; wait; echo GT: load=done; echo GT: reports=\$(dmesg | grep -c -E '$RE_TYPED')"
if guest_wait "$vm" '^GT: reports=' 1200; then
	gt_pass "$T: 16 parallel loops on 8 vCPUs ran to their end"
	n=$(guest_value "$vm" reports)
	[ "$n" = 0 ] && gt_pass "$T: no soft-lockup, RCU-stall or hung-task report in dmesg" ||
		gt_fail "$T: no soft-lockup, RCU-stall or hung-task report in dmesg" "$n report(s)"
	# The console too: a report the guest's ring buffer lost still shows there.
	c=$(tr -d '\r' <"$GT_WORK/$vm.console" | grep -a -c -E "$RE")
	[ "$c" = 0 ] && gt_pass "$T: no such report on the console" ||
		gt_fail "$T: no such report on the console" "$(tr -d '\r' <"$GT_WORK/$vm.console" | grep -a -E "$RE" | head -2)"
else
	gt_fail "$T: 16 parallel loops on 8 vCPUs ran to their end" "no 'GT: reports=' line"
fi

guest_send "$vm" 'poweroff -f'
guest_wait_exit "$vm" 300
[ "$GT_RC" = 0 ] && gt_pass "$T: poweroff ends the VMM with exit 0" || gt_fail "$T: poweroff" "exit code $GT_RC"
