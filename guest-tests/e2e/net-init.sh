#!/bin/sh
# /init of the network e2e guests: addresses from the kernel command line (gt_net=IF:ADDR/LEN,...
# e.g. gt_net=eth0:169.254.1.1/16,eth1:169.254.10.1/24), each interface's MAC printed, an HTTP
# server on port 8080 serving /www/blob (4 MiB of random bytes, its md5 printed; none with
# gt_noblob), then a shell on the console for the host's commands.  arp_ignore=1: an interface answers ARP only for its own
# addresses, so a VLAN test cannot pass through another NIC of the same guest.
echo "GT: booted"
ip link set lo up
echo 1 >/proc/sys/net/ipv4/conf/all/arp_ignore
net=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^gt_net=//p')
for item in $(echo "$net" | tr ',' ' '); do
	ifc=${item%%:*}
	addr=${item#*:}
	i=0
	while [ ! -e /sys/class/net/$ifc ] && [ $i -lt 60 ]; do
		sleep 1
		i=$((i + 1))
	done
	ip link set "$ifc" up && ip addr add "$addr" dev "$ifc" || echo "GT: setup_$ifc=failed"
	echo "GT: mac_$ifc=$(cat /sys/class/net/$ifc/address)"
done
mkdir -p /www
if ! grep -q -w gt_noblob /proc/cmdline; then # a guest that only fetches skips the work
	dd if=/dev/urandom of=/www/blob bs=64k count=64 2>/dev/null
	echo "GT: blob_md5=$(md5sum </www/blob | cut -d' ' -f1)"
fi
httpd -p 8080 -h /www
echo "GT: ready"
exec sh
