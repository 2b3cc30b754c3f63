#!/bin/bash
# The switch's own share of a round trip, without VMs or KVM (runs on any Linux host as root): a
# fake VM port (bench/net-hop.py) pings the host end of a TAP BENCH_HOP_N times (3000), once
# through a minivmm switch with that TAP as its uplink and once writing the TAP itself (the
# path a VM with --nic tap takes).  Prints the median, mean, 90th and 99th percentile round trip
# of each: the difference is what the switch process adds per frame.  The mean counts the waits
# to be scheduled, so it moves with the machine's load.
cd "$(dirname "$0")/.." || exit 1
N=${BENCH_HOP_N:-3000}
case "$N" in *[!0-9]* | "") echo "bench/net-hop.sh: BENCH_HOP_N must be a number" >&2; exit 2 ;; esac
[ -x ./minivmm ] || { echo "bench/net-hop.sh: ./minivmm is not built (run make)" >&2; exit 1; }
W=$(mktemp -d /tmp/net-hop.XXXXXX)
NS1=bhs$$
NS2=bht$$
export XDG_RUNTIME_DIR=$W/run
mkdir -m 700 "$XDG_RUNTIME_DIR"
teardown() {
	./minivmm switch stop hopsw >/dev/null 2>&1
	ip netns del "$NS1" 2>/dev/null
	ip netns del "$NS2" 2>/dev/null
	rm -rf "$W"
}
trap teardown EXIT
PATH=$PATH:/sbin:/usr/sbin
[ -e /dev/net/tun ] || modprobe tun
# The host end answers 169.254.1.1 at the fake port's MAC without asking (no ARP in the loop).
host_end() { # NS IF
	ip netns exec "$1" ip addr add 169.254.50.1/16 dev "$2" && ip netns exec "$1" ip link set "$2" up &&
		ip netns exec "$1" ip neigh replace 169.254.1.1 lladdr 02:00:00:00:01:01 dev "$2" nud permanent
}
mac() { ip netns exec "$1" cat "/sys/class/net/$2/address"; }
ip netns add "$NS1" && ip netns add "$NS2" || exit 1
ip netns exec "$NS1" ./minivmm switch start hopsw --uplink hoptap0 >/dev/null && host_end "$NS1" hoptap0 || exit 1
ip netns exec "$NS2" ip tuntap add hoptap1 mode tap vnet_hdr && host_end "$NS2" hoptap1 || exit 1
echo "# net-hop: $N pings of 98 bytes, round trips in microseconds"
printf '%-8s %s\n' switch "$(python3 bench/net-hop.py "$XDG_RUNTIME_DIR/minivmm/hopsw.switch" "$(mac "$NS1" hoptap0)" "$N" </dev/null)" &&
	printf '%-8s %s\n' tap "$(ip netns exec "$NS2" python3 bench/net-hop.py tap:hoptap1 "$(mac "$NS2" hoptap1)" "$N" </dev/null)"
