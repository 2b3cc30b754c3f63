#!/bin/bash
# Where a frame's time goes: two minivmm guests on a switch with a TAP uplink (the bench/net.sh
# setup), ping latency VM->VM and VM->host, then the same pings under `strace -c -f` of the switch
# and of VM A's minivmm (syscalls per frame), and the same two guests with --nic tap on a Linux
# bridge (no switch process) for comparison.  Inside level 1 when there is no usable /dev/kvm.
cd "$(dirname "$0")/.." || exit 1
. guest-tests/lib/level1.sh
. guest-tests/lib/guest.sh
. bench/net-lib.sh
PINGS=${BENCH_NET_PINGS:-20}
net_bench_level1 ./bench/net-profile.sh
net_bench_setup || exit 1
NS=bnp$$
net_ns_add "$NS" || exit 1
ping_avg() { # VM KEY DEST
	echo "$2: $(net_ping_avg "$1" "$2" "$3" "$PINGS" 0.2) ms"
}

echo "# kernel $(gt_kernel)"
net_switch_start "$NS" psw ptap0 && net_host_end "$NS" ptap0 || exit 1
net_two_vms minivmm swA swB 256 "$NS" switch=psw switch=psw || exit 1
ping_avg swA sw_pingvm 169.254.1.2
ping_avg swA sw_pinghost 169.254.50.1
SWPID=$(pgrep -f "switch start psw" | head -1)
# The switch is one more process to wake on every frame: does its scheduling wait count?  The same
# pings with the switch at nice -10, then back at 0.
renice -n -10 -p "$SWPID" >/dev/null
ping_avg swA sw_nice_pingvm 169.254.1.2
ping_avg swA sw_nice_pinghost 169.254.50.1
renice -n 0 -p "$SWPID" >/dev/null
ping_avg swA sw_pinghost_again 169.254.50.1
for k in pingvm:169.254.1.2 pinghost:169.254.50.1; do
	strace -c -f -o "$W/st.switch.$k" -p "$SWPID" &
	s1=$!
	strace -c -f -o "$W/st.vma.$k" -p "${_gt_pid[swA]}" &
	s2=$!
	sleep 2
	ping_avg swA "sw_strace_${k%%:*}" "${k#*:}"
	kill -INT $s1 $s2
	wait $s1 $s2
	echo "## $k: switch syscalls ($PINGS pings)"; head -25 "$W/st.switch.$k"
	echo "## $k: VM A's minivmm syscalls ($PINGS pings)"; head -25 "$W/st.vma.$k"
done
# One round trip's timeline: the switch and VM A's minivmm, to the host and to VM B.
for k in pinghost:169.254.50.1 pingvm:169.254.1.2; do
	strace -f -tt -T -e trace=sendmsg,recvfrom,writev,read,write,epoll_wait -o "$W/tl.$k" -p "$SWPID" -p "${_gt_pid[swA]}" &
	s1=$!
	sleep 2
	net_run swA "tl_${k%%:*}" "echo GT: tl_${k%%:*}=\$(ping -c 3 -i 0.5 ${k#*:} | tr '\n' ' ' | tr ' ' _)"
	kill -INT $s1
	wait $s1
	echo "## $k timeline (pings: $(guest_value swA "tl_${k%%:*}"))"
	tail -80 "$W/tl.$k"
done
# Exits of both guests to the kernel and to minivmm, by reason, while idle and during the pings.
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
exits_start() { # TAG
	perf record -q -o "$W/perf.$1" -e kvm:kvm_exit -e kvm:kvm_userspace_exit -e kvm:kvm_pio -e kvm:kvm_mmio -a >/dev/null 2>&1 &
	PERF_PID=$!
	sleep 1
}
exits_stop() { # TAG
	kill -INT $PERF_PID
	wait $PERF_PID
	echo "## $1: exits by event and reason"
	perf script -i "$W/perf.$1" -F event,trace 2>/dev/null | sed -E 's/(kvm_exit:) .*reason ([A-Za-z_]+).*/\1 \2/; s/(kvm_pio:) (pio_[a-z]+) at (0x[0-9a-f]+).*/\1 \2 \3/; s/(kvm_mmio:) mmio ([a-z]+) len [0-9]+ gpa (0x[0-9a-f]+).*/\1 \2 \3/; s/(kvm_userspace_exit:) reason ([A-Z_]+).*/\1 \2/' | sort | uniq -c | sort -rn | head -25
}
exits_start idle
sleep 5
exits_stop idle
exits_start ping
ping_avg swA sw_perf_pingvm 169.254.1.2
exits_stop ping
net_poweroff swA swB
ip netns exec "$NS" "$GT_MINIVMM" switch stop psw >/dev/null

# The same guests, each on its own TAP, on a Linux bridge holding the host end.
ip netns exec "$NS" ip link del ptap0 2>/dev/null
ip netns exec "$NS" ip link add pbr0 type bridge && net_host_end "$NS" pbr0 || exit 1
for t in pta pttb; do ip netns exec "$NS" ip tuntap add "$t" mode tap vnet_hdr; ip netns exec "$NS" ip link set "$t" master pbr0 up; done
net_two_vms minivmm brA brB 256 "$NS" tap=pta tap=pttb || exit 1
ping_avg brA br_pingvm 169.254.1.2
ping_avg brA br_pinghost 169.254.50.1
net_poweroff brA brB
exit 0
