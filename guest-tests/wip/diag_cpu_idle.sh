#!/bin/bash
# Diagnosis (not a test): what an idle 4-vCPU guest costs under minivmm and under QEMU in the same
# level 1, and what wakes each: the guest's clocksource and CPU flags, its interrupts per second by
# source (/proc/interrupts), the VMM's CPU ticks by thread, KVM's exit counters per second
# (debugfs) and the VMM's system calls (strace -f -c).  DIAG_IDLE_S (20) s per window.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
gt_setup
S=${DIAG_IDLE_S:-20}
initramfs_build "$GT_WORK/init.cpio" guest-tests/e2e/cpuhotplug-init.sh || exit 1
[ -d /sys/kernel/debug/kvm ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null
ticks() { # PID: "NAME TICKS" per thread name
	for t in /proc/"$1"/task/*; do
		printf '%s %s\n' "$(tr -d ' ' <"$t/comm" | tr '0-9' '#')" "$(sed 's/.*) //' "$t/stat" | cut -d' ' -f12,13 | tr ' ' +)"
	done | awk '{ split($2, a, "+"); t[$1] += a[1] + a[2] } END { for (n in t) print n, t[n] }' | sort
}
kvm() { # PID: "COUNTER VALUE" summed over the VM's debugfs directory (all vCPUs)
	for d in /sys/kernel/debug/kvm/"$1"-*; do
		for f in "$d"/*; do [ -f "$f" ] && [ -r "$f" ] && echo "${f##*/} $(cat "$f" 2>/dev/null)"; done
	done | awk 'NF == 2 && $2 ~ /^[0-9]+$/ { t[$1] += $2 } END { for (n in t) print n, t[n] }' | sort
}
irqs='awk '"'"'NR > 1 { s = 0; for (i = 2; i <= 5; i++) if ($i ~ /^[0-9]+$/) s += $i; if (s > 0) printf "%s%d,", $1, s }'"'"' /proc/interrupts'
diff_rate() { # BEFORE AFTER: nonzero per-second differences of "NAME VALUE" lines
	join "$1" "$2" | awk -v s="$S" '$3 != $2 { printf "%s=%.1f ", $1, ($3 - $2) / s } END { print "" }'
}
for GT_VMM in minivmm qemu; do
	vm=idle-$GT_VMM
	guest_start "$vm" 4 256 "$GT_WORK/init.cpio" || continue
	guest_wait "$vm" '^GT: ready' 600 || { echo "# $GT_VMM: no GT: ready"; continue; }
	pid=$(guest_pid "$vm")
	sleep 10
	echo "# $GT_VMM: clocksource $(guest_query "$vm" 'cat /sys/devices/system/clocksource/clocksource0/current_clocksource')"
	echo "# $GT_VMM: flags $(guest_query "$vm" "grep -m1 -o -w 'hypervisor\|tsc_deadline_timer\|constant_tsc\|nonstop_tsc\|tsc_known_freq\|x2apic\|kvmclock\|kvm_pv[a-z_]*' /proc/cpuinfo | tr '\n' ,")"
	echo "# $GT_VMM: kvm guest features $(guest_query "$vm" "dmesg | grep -o 'kvm-[a-z-]*\|KVM setup [a-z ]*\|clocksource: Switched to [a-z_-]*\|pv[a-z_ ]*enabled' | sort -u | tr ' \n' _,")"
	a=$(guest_query "$vm" "$irqs")
	ticks "$pid" >"$GT_WORK/t0"
	kvm "$pid" >"$GT_WORK/k0"
	sleep "$S"
	ticks "$pid" >"$GT_WORK/t1"
	kvm "$pid" >"$GT_WORK/k1"
	b=$(guest_query "$vm" "$irqs")
	echo "# $GT_VMM: VMM ticks by thread in $S s: $(join "$GT_WORK/t0" "$GT_WORK/t1" | awk '$3 > $2 { printf "%s=%d ", $1, $3 - $2 }')"
	echo "# $GT_VMM: KVM per second: $(diff_rate "$GT_WORK/k0" "$GT_WORK/k1")"
	echo "$a" | tr ',' '\n' | sed 's/:/ /' | sort >"$GT_WORK/i0"
	echo "$b" | tr ',' '\n' | sed 's/:/ /' | sort >"$GT_WORK/i1"
	echo "# $GT_VMM: guest interrupts per second (4 CPUs; includes two console queries): $(diff_rate "$GT_WORK/i0" "$GT_WORK/i1")"
	timeout -s INT "$S" strace -f -c -p "$pid" -o "$GT_WORK/strace" 2>/dev/null
	echo "# $GT_VMM: system calls in $S s under strace:"
	head -25 "$GT_WORK/strace" | sed 's/^/#   /'
	guest_send "$vm" 'poweroff -f'
	guest_wait_exit "$vm" 300
done
gt_pass "diag_cpu_idle: done"
