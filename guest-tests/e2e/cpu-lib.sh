# Helpers of the execution-cap and weight tests (test_cpu_cap.sh, test_cpu_cap_cgroup.sh,
# test_cpu_weight.sh) and of bench/cpu.sh's cap row, sourced after guest-tests/lib/guest.sh and
# gt_setup.  gq and work need $vm (the guest's name).

gq() { guest_query "$vm" "$1" 600; } # (guest-tests/lib/guest.sh)

# Seconds (guest clock) the guest takes for N iterations of a shell loop (no system calls).
work() {
	gq "a=\$(cut -d' ' -f1 /proc/uptime); i=0; while [ \$i -lt $1 ]; do i=\$((i+1)); done; b=\$(cut -d' ' -f1 /proc/uptime); echo \$a:\$b" |
		awk -F: '{ printf "%.2f\n", $2 - $1 }'
}

# "WALL_NS CPU_NS": this machine's monotonic clock and the CPU time of PID's thread named COMM
# (schedstat's time on a CPU, ns).  What the cap limits is that thread's share of a CPU, and
# this machine accounts its own threads exactly however slowly it runs itself (in level 1 the
# host's load slows level 1 as a whole, not one thread against the others).
thread_sample() { # PID COMM
	local t c u
	for t in /proc/"$1"/task/*; do
		read -r c <"$t/comm" 2>/dev/null || continue
		[ "$c" = "$2" ] || continue
		read -r u _ </proc/uptime # centisecond resolution: 0.25 points over 4 s
		read -r c _ <"$t/schedstat" || return 1
		echo "${u%.*}${u#*.}0000000 $c"
		return 0
	done
	return 1
}

# Share (% of one CPU) PID's thread COMM ran from sample A to sample B ("WALL_NS CPU_NS" each).
sample_share() { # A B
	echo "$1 $2" | awk '{ printf "%.1f\n", ($3 > $1 ? 100 * ($4 - $2) / ($3 - $1) : -1) }'
}
