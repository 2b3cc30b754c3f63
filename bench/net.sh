#!/bin/bash
# Networking inside the guest, minivmm against QEMU, in one run: VM<->VM and VM->host TCP
# throughput and ping latency.
#
# minivmm: two VMs (one vCPU each) with --nic switch=bsw, the switch's TAP uplink inside a network
# namespace holding the host end (169.254.50.1).  QEMU (-accel kvm -M q35): the same two guests with
# -netdev tap (QEMU's default: no vhost) and virtio-net-pci (modern only) on a Linux bridge in a
# namespace of its own, the host end on the bridge.  Same kernel and initramfs
# (guest-tests/e2e/net-init.sh), link-local addresses only.
#   throughput: A fetches BENCH_NET_MB MiB (64) over HTTP (busybox httpd/wget) from B, then from
#               the host (busybox httpd in the namespace); timed in A with /proc/uptime (10 ms)
#   latency:    ping -c BENCH_NET_PINGS (10) from A to B and to the host: the average RTT
# Ratios are minivmm / QEMU for throughput (higher: minivmm faster) and QEMU / minivmm for latency.
# Without a usable /dev/kvm the whole run happens inside one level 1: compare within one run only.
cd "$(dirname "$0")/.." || exit 1
. guest-tests/lib/level1.sh
. guest-tests/lib/guest.sh

MB=${BENCH_NET_MB:-64}
PINGS=${BENCH_NET_PINGS:-10}
case "$MB$PINGS" in *[!0-9]* | "") echo "bench/net.sh: BENCH_NET_MB and BENCH_NET_PINGS must be numbers" >&2; exit 2 ;; esac
MEM=$((MB * 2 + 256))

if [ "${GT_LEVEL:-}" != 1 ]; then
	[ -x ./minivmm ] || { echo "bench/net.sh: ./minivmm is not built (run make)" >&2; exit 1; }
	if ! gt_host_kvm_usable; then
		echo "# net: no usable /dev/kvm here: measuring inside level 1 (QEMU TCG, nested KVM)"
		level1_run ./bench/net.sh
		rc=$?
		level1_cleanup
		exit $rc
	fi
fi

gt_setup
W=$GT_WORK
NSM=bnm$$
NSQ=bnq$$
export XDG_RUNTIME_DIR=$W/run
mkdir -m 700 "$XDG_RUNTIME_DIR"
HTTPD_PIDS=()
net_teardown() {
	local n p
	for n in "${!_gt_pid[@]}"; do kill -KILL "${_gt_pid[$n]}" 2>/dev/null; done
	for p in "${HTTPD_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	"$GT_MINIVMM" switch stop bsw >/dev/null 2>&1
	ip netns del "$NSM" 2>/dev/null
	ip netns del "$NSQ" 2>/dev/null
	rm -rf "$W"
}
trap net_teardown EXIT
PATH=$PATH:/sbin:/usr/sbin
[ -e /dev/net/tun ] || modprobe tun
modprobe bridge 2>/dev/null

initramfs_build "$W/net.cpio" guest-tests/e2e/net-init.sh -m "virtio_pci virtio_net" || exit 1
mkdir -p "$W/www"
dd if=/dev/zero of="$W/www/big" bs=1M count="$MB" status=none

# The host end in namespace NS on interface IF: the address and an HTTP server.
host_end() { # NS IF
	ip netns exec "$1" ip addr add 169.254.50.1/16 dev "$2" && ip netns exec "$1" ip link set "$2" up || return 1
	ip netns exec "$1" busybox httpd -f -p 8081 -h "$W/www" &
	HTTPD_PIDS+=($!)
}

start_vm() { # VMM NAME IP MAC
	local vmm=$1 name=$2 ip=$3 mac=$4 fd append
	append="console=ttyS0 quiet panic=-1 gt_net=eth0:$ip/16"
	mkfifo "$W/$name.in" || return 1
	exec {fd}<>"$W/$name.in"
	case $vmm in
	minivmm)
		"$GT_MINIVMM" run --name "$name" --memory "$MEM" --kernel "$(gt_kernel)" --initrd "$W/net.cpio" \
			--append "$append" --console stdio --nic "switch=bsw,mac=$mac" \
			<"$W/$name.in" >"$W/$name.console" 2>"$W/$name.stderr" &
		;;
	qemu)
		ip netns exec "$NSQ" qemu-system-x86_64 -accel kvm -M q35 -cpu host -smp 1 -m "$MEM" \
			-nodefaults -display none -no-reboot -serial stdio -kernel "$(gt_kernel)" \
			-initrd "$W/net.cpio" -append "$append" \
			-netdev "tap,id=n0,ifname=q$name,script=no,downscript=no" \
			-device "virtio-net-pci,netdev=n0,mac=$mac,disable-legacy=on" \
			<"$W/$name.in" >"$W/$name.console" 2>"$W/$name.stderr" &
		;;
	esac
	_gt_pid[$name]=$!
	_gt_fd[$name]=$fd
	_gt_last=$name
}

run_in() { # NAME KEY COMMAND
	guest_send "$1" "$3"
	guest_wait "$1" "^GT: $2=" 600
}

declare -A R=()
# Both guests up: fills R[vmm,figure].
measure() { # VMM
	local vmm=$1 a=bn${1:0:1}A$$ b=bn${1:0:1}B$$ k v t
	start_vm "$vmm" "$a" 169.254.1.1 02:00:00:00:01:01 || return 1
	start_vm "$vmm" "$b" 169.254.1.2 02:00:00:00:01:02 || return 1
	if [ "$vmm" = qemu ]; then
		for t in "q$a" "q$b"; do # QEMU made its TAPs: onto the bridge
			for k in $(seq 100); do ip netns exec "$NSQ" ip link show "$t" >/dev/null 2>&1 && break; sleep 0.2; done
			ip netns exec "$NSQ" ip link set "$t" master qbr0 up || return 1
		done
	fi
	guest_wait "$a" '^GT: ready' && guest_wait "$b" '^GT: ready' || {
		echo "# net: $vmm: guests did not come up"; tail -5 "$W/$a.console" "$W/$a.stderr" | sed 's/^/#   /'; return 1; }
	guest_send "$b" "dd if=/dev/zero of=/www/big bs=1M count=$MB 2>/dev/null; echo GT: big=ready"
	guest_wait "$b" '^GT: big=' 600 || return 1
	# warm-up (ARP, TCP slow start on a short transfer)
	run_in "$a" warm 'ping -c 2 169.254.1.2 >/dev/null; ping -c 2 169.254.50.1 >/dev/null; echo GT: warm=1'
	for k in vmvm:169.254.1.2:8080 vmhost:169.254.50.1:8081; do
		run_in "$a" "${k%%:*}" "t0=\$(cut -d' ' -f1 /proc/uptime); wget -q -O /dev/null http://${k#*:}/big && t1=\$(cut -d' ' -f1 /proc/uptime) && echo GT: ${k%%:*}=\$(awk -v a=\$t0 -v b=\$t1 -v mb=$MB 'BEGIN { printf \"%.1f\", mb / (b - a) }') || echo GT: ${k%%:*}=NA"
		v=$(guest_value "$a" "${k%%:*}")
		R[$vmm,${k%%:*}_MBps]=${v:-NA}
	done
	for k in pingvm:169.254.1.2 pinghost:169.254.50.1; do
		run_in "$a" "${k%%:*}" "echo GT: ${k%%:*}=\$(ping -c $PINGS ${k#*:} | sed -n 's|.*= [0-9.]*/\\([0-9.]*\\)/.*|\\1|p')"
		v=$(guest_value "$a" "${k%%:*}")
		R[$vmm,${k%%:*}_ms]=${v:-NA}
	done
	for t in "$a" "$b"; do
		guest_send "$t" 'poweroff -f'
		guest_wait_exit "$t" 120
	done
}

rc=0
ip netns add "$NSM" && ip netns add "$NSQ" || exit 1
ip netns exec "$NSM" "$GT_MINIVMM" switch start bsw --uplink btap0 >/dev/null || exit 1
host_end "$NSM" btap0 || exit 1
ip netns exec "$NSQ" ip link add qbr0 type bridge || exit 1
host_end "$NSQ" qbr0 || exit 1
echo "# net: kernel $(gt_kernel), 1 vCPU and $MEM MiB per guest, $MB MiB per transfer, $PINGS pings$([ "${GT_LEVEL:-}" = 1 ] && echo ', inside level 1')"
measure minivmm || rc=1
measure qemu || rc=1
printf '%-16s %10s %10s %7s\n' figure minivmm qemu ratio
for f in vmvm_MBps vmhost_MBps pingvm_ms pinghost_ms; do
	a=${R[minivmm,$f]:-NA} b=${R[qemu,$f]:-NA}
	case $f in
	*_ms) r=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", b / a; else print "NA" }') ;;
	*) r=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "NA" }') ;;
	esac
	printf '%-16s %10s %10s %7s\n' "$f" "$a" "$b" "$r"
done
echo "# ratio: throughput minivmm/QEMU, latency QEMU/minivmm (above 1: minivmm better)"
exit $rc
