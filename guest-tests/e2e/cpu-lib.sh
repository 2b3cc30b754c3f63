# Guest helpers of the execution-cap tests (test_cpu_cap.sh, test_cpu_cap_cgroup.sh), sourced after
# guest-tests/lib/guest.sh and gt_setup.  They need $vm (the guest's name) and ctl (its control).

gq() { guest_query "$vm" "$1" 600; } # (guest-tests/lib/guest.sh)

# Seconds (guest clock) the guest takes for N iterations of a shell loop (no system calls).
work() {
	gq "a=\$(cut -d' ' -f1 /proc/uptime); i=0; while [ \$i -lt $1 ]; do i=\$((i+1)); done; b=\$(cut -d' ' -f1 /proc/uptime); echo \$a:\$b" |
		awk -F: '{ printf "%.2f\n", $2 - $1 }'
}
