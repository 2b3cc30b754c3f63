#!/bin/bash
# Where a frame's time goes: two minivmm guests on a switch with a TAP uplink (the bench/net.sh
# setup), ping latency VM->VM and VM->host, then the same pings under `strace -c -f` of the switch
# and of VM A's minivmm (syscalls per frame), and the same two guests with --nic tap on a Linux
# bridge (no switch process) for comparison.  Inside level 1 when there is no usable /dev/kvm.
cd "$(dirname "$0")/.." || exit 1
. guest-tests/lib/level1.sh
. guest-tests/lib/guest.sh
PINGS=${BENCH_NET_PINGS:-20}
if [ "${GT_LEVEL:-}" != 1 ] && ! gt_host_kvm_usable; then
	level1_run ./bench/net-profile.sh
	rc=$?
	level1_cleanup
	exit $rc
fi
gt_setup
W=$GT_WORK
NS=bnp$$
export XDG_RUNTIME_DIR=$W/run
mkdir -m 700 "$XDG_RUNTIME_DIR"
prof_teardown() {
	local n
	for n in "${!_gt_pid[@]}"; do kill -KILL "${_gt_pid[$n]}" 2>/dev/null; done
	"$GT_MINIVMM" switch stop psw >/dev/null 2>&1
	ip netns del "$NS" 2>/dev/null
	rm -rf "$W"
}
trap prof_teardown EXIT
PATH=$PATH:/sbin:/usr/sbin
[ -e /dev/net/tun ] || modprobe tun
modprobe bridge 2>/dev/null
initramfs_build "$W/net.cpio" guest-tests/e2e/net-init.sh -m "virtio_pci virtio_net" || exit 1
ip netns add "$NS" || exit 1

start_vm() { # NAME IP MAC NIC
	local name=$1 fd
	mkfifo "$W/$name.in" || return 1
	exec {fd}<>"$W/$name.in"
	ip netns exec "$NS" "$GT_MINIVMM" run --name "$name" --memory 256 --kernel "$(gt_kernel)" --initrd "$W/net.cpio" \
		--append "console=ttyS0 quiet panic=-1 gt_net=eth0:$2/16" --console stdio --nic "$4,mac=$3" \
		<"$W/$name.in" >"$W/$name.console" 2>"$W/$name.stderr" &
	_gt_pid[$name]=$!
	_gt_fd[$name]=$fd
	_gt_last=$name
}
run_in() { guest_send "$1" "$3"; guest_wait "$1" "^GT: $2=" 600; }
ping_avg() { # VM KEY DEST
	run_in "$1" "$2" "echo GT: $2=\$(ping -c $PINGS -i 0.2 $3 | sed -n 's|.*= [0-9.]*/\\([0-9.]*\\)/.*|\\1|p')"
	echo "$2: $(guest_value "$1" "$2") ms"
}
twovms() { # TAG NICA NICB
	start_vm "$1A" 169.254.1.1 02:00:00:00:01:01 "$2" || return 1
	start_vm "$1B" 169.254.1.2 02:00:00:00:01:02 "$3" || return 1
}

echo "# kernel $(gt_kernel)"
ip netns exec "$NS" "$GT_MINIVMM" switch start psw --uplink ptap0 >/dev/null || exit 1
ip netns exec "$NS" ip addr add 169.254.50.1/16 dev ptap0 && ip netns exec "$NS" ip link set ptap0 up
twovms sw switch=psw switch=psw
guest_wait swA '^GT: ready' && guest_wait swB '^GT: ready' || { _gt_tail; exit 1; }
run_in swA warm 'ping -c 2 169.254.1.2 >/dev/null; ping -c 2 169.254.50.1 >/dev/null; echo GT: warm=1'
ping_avg swA sw_pingvm 169.254.1.2
ping_avg swA sw_pinghost 169.254.50.1
SWPID=$(pgrep -f "switch start psw" | head -1)
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
	run_in swA "tl_${k%%:*}" "echo GT: tl_${k%%:*}=\$(ping -c 3 -i 0.5 ${k#*:} | tr '\n' ' ' | tr ' ' _)"
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
for t in swA swB; do guest_send "$t" 'poweroff -f'; guest_wait_exit "$t" 120; done
ip netns exec "$NS" "$GT_MINIVMM" switch stop psw >/dev/null

# The same guests, each on its own TAP, on a Linux bridge holding the host end.
ip netns exec "$NS" ip link del ptap0 2>/dev/null
ip netns exec "$NS" ip link add pbr0 type bridge
ip netns exec "$NS" ip addr add 169.254.50.1/16 dev pbr0 && ip netns exec "$NS" ip link set pbr0 up
for t in pta pttb; do ip netns exec "$NS" ip tuntap add "$t" mode tap vnet_hdr; ip netns exec "$NS" ip link set "$t" master pbr0 up; done
twovms br tap=pta tap=pttb
guest_wait brA '^GT: ready' && guest_wait brB '^GT: ready' || { _gt_tail; exit 1; }
run_in brA warm 'ping -c 2 169.254.1.2 >/dev/null; ping -c 2 169.254.50.1 >/dev/null; echo GT: warm=1'
ping_avg brA br_pingvm 169.254.1.2
ping_avg brA br_pinghost 169.254.50.1
for t in brA brB; do guest_send "$t" 'poweroff -f'; guest_wait_exit "$t" 120; done
exit 0
