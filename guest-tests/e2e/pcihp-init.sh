#!/bin/sh
# /init of the PCI hot-plug guest: eth0 (a boot NIC) up, then a shell on the console for the
# host's commands (the hot-plugged NIC is configured from there).
echo "GT: booted"
ip link set lo up
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 60 ]; do
	sleep 1
	i=$((i + 1))
done
ip link set eth0 up && ip addr add 169.254.99.1/24 dev eth0 || echo "GT: setup_eth0=failed"
echo "GT: slots=$(ls /sys/bus/pci/slots 2>/dev/null | tr '\n' ',')"
echo "GT: ready"
exec sh
