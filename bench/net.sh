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
. bench/net-lib.sh

MB=${BENCH_NET_MB:-64}
PINGS=${BENCH_NET_PINGS:-10}
case "$MB$PINGS" in *[!0-9]* | "") echo "bench/net.sh: BENCH_NET_MB and BENCH_NET_PINGS must be numbers" >&2; exit 2 ;; esac
MEM=$((MB * 2 + 256))
net_bench_level1 ./bench/net.sh
net_bench_setup || exit 1
NSM=bnm$$
NSQ=bnq$$
NET_BRIDGE=qbr0
mkdir -p "$W/www"
dd if=/dev/zero of="$W/www/big" bs=1M count="$MB" status=none

declare -A R=()
# Both guests up: fills R[vmm,figure].
measure() { # VMM
	local vmm=$1 a=bn${1:0:1}A$$ b=bn${1:0:1}B$$ k v
	case $vmm in
	minivmm) net_two_vms minivmm "$a" "$b" "$MEM" "$NSM" switch=bsw switch=bsw || return 1 ;;
	qemu) net_two_vms qemu "$a" "$b" "$MEM" "$NSQ" "q$a" "q$b" || return 1 ;;
	esac
	guest_send "$b" "dd if=/dev/zero of=/www/big bs=1M count=$MB 2>/dev/null; echo GT: big=ready"
	guest_wait "$b" '^GT: big=' 600 || return 1
	for k in vmvm:169.254.1.2:8080 vmhost:169.254.50.1:8081; do
		net_run "$a" "${k%%:*}" "t0=\$(cut -d' ' -f1 /proc/uptime); wget -q -O /dev/null http://${k#*:}/big && t1=\$(cut -d' ' -f1 /proc/uptime) && echo GT: ${k%%:*}=\$(awk -v a=\$t0 -v b=\$t1 -v mb=$MB 'BEGIN { printf \"%.1f\", mb / (b - a) }') || echo GT: ${k%%:*}=NA"
		v=$(guest_value "$a" "${k%%:*}")
		R[$vmm,${k%%:*}_MBps]=${v:-NA}
	done
	v=$(net_ping_avg "$a" pingvm 169.254.1.2 "$PINGS")
	R[$vmm,pingvm_ms]=${v:-NA}
	v=$(net_ping_avg "$a" pinghost 169.254.50.1 "$PINGS")
	R[$vmm,pinghost_ms]=${v:-NA}
	net_poweroff "$a" "$b"
}

rc=0
net_ns_add "$NSM" && net_ns_add "$NSQ" || exit 1
net_switch_start "$NSM" bsw btap0 && net_host_end "$NSM" btap0 "$W/www" || exit 1
ip netns exec "$NSQ" ip link add qbr0 type bridge && net_host_end "$NSQ" qbr0 "$W/www" || exit 1
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
