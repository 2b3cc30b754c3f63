#!/bin/bash
# PCI hot-plug of a NIC on a running Debian guest (ACPI slots driven by Linux's acpiphp), network
# namespace and link-local addresses only:
#  - switch sw0 with its TAP uplink gtap0 in a namespace (169.254.50.1 there); the VM boots with
#    one NIC on switch sw1 (eth0) and acpiphp's slots for the empty ones;
#  - `control nic-add switch=sw0` answers once the guest's driver runs the NIC; eth1 appears and
#    pings the uplink through it; `nic-hotplugged` lists it;
#  - `control nic-remove ID` answers after the guest's _EJ0: eth1 is gone and minivmm's thread
#    and fd counts are back where they were;
#  - refusals: an unknown ID, the boot NIC, a bad spec, a switch that does not exist;
#  - five more plug/ping/unplug cycles leave no thread or fd behind, no new ACPI error in dmesg.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
. guest-tests/e2e/net-lib.sh
gt_setup
W=$GT_WORK
T=pcihp
vm=gtpcihp$$
NS=gtpcihp$$
net_setup

ctl() { "$GT_MINIVMM" control "$vm" "$@" 2>&1; }
pid() { guest_pid "$vm"; }
threads() { ls "/proc/$(pid)/task" | wc -l; }
fds() { ls "/proc/$(pid)/fd" | wc -l; }
expect() { gt_expect "$T: $1" "$2" "$3"; } # name want got
gq() { guest_query "$vm" "$1" 120; } # (guest-tests/lib/guest.sh)
refused() { gt_refused "$T: $1" "$2" ctl "${@:3}"; } # name pattern verb args...
# Plug a NIC on sw0; print its ID.
plug() {
	local out rc
	out=$(ctl nic-add switch=sw0)
	rc=$?
	echo "$out" >"$W/plug.out"
	[ $rc -eq 0 ] || return 1
	echo "$out" | sed -n 's/^id: //p'
}
# In the guest: wait for eth1, address it, ping the uplink.
ping_eth1() {
	gq 'i=0; while [ ! -e /sys/class/net/eth1 ] && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done; ip link set eth1 up && ip addr add 169.254.1.1/16 dev eth1 && ping -c 2 -i 0.3 -W 5 169.254.50.1 >/dev/null && echo ok || echo bad'
}
eth1_gone() {
	gq 'i=0; while [ -e /sys/class/net/eth1 ] && [ $i -lt 30 ]; do sleep 1; i=$((i+1)); done; [ -e /sys/class/net/eth1 ] && echo present || echo gone'
}

initramfs_build "$W/init.cpio" guest-tests/e2e/pcihp-init.sh -m "virtio_pci virtio_net" || {
	gt_fail "$T: build the initramfs"
	exit 1
}
net_uplink_start "$NS" sw0 gtap0 169.254.50.1/16 ||
	{ gt_fail "$T: switch sw0 starts" "$(cat "$W/sw0.out")"; exit 1; }
net_switch_start sw1 || { gt_fail "$T: switch sw1 starts" "$(cat "$W/sw1.out")"; exit 1; }

GT_RUN_ARGS=(--nic switch=sw1)
guest_start "$vm" 1 256 "$W/init.cpio"
if ! guest_wait "$vm" '^GT: ready'; then
	gt_fail "$T: boot to /init" "$(tail -3 "$W/$vm.console" "$W/$vm.stderr" | tr '\n' ' ')"
	exit 1
fi
slots=$(guest_value "$vm" slots)
[ -n "$slots" ] && gt_pass "$T: acpiphp registered the empty slots ($slots)" ||
	gt_fail "$T: acpiphp registered the empty slots" "none in /sys/bus/pci/slots"
pat='ACPI Error|ACPI BIOS Error|BUG:|WARNING:'
dm0=$(gq "dmesg | grep -c -E '$pat'")
t0=$(threads)
f0=$(fds)

id=$(plug)
[ -n "$id" ] && gt_pass "$T: nic-add answers once the driver runs it ($(tr '\n' ' ' <"$W/plug.out"))" ||
	gt_fail "$T: nic-add" "$(cat "$W/plug.out")"
expect "eth1 appears and pings the uplink through sw0" ok "$(ping_eth1)"
ctl nic-hotplugged | grep -q "\"id\":$id," && gt_pass "$T: nic-hotplugged lists it" ||
	gt_fail "$T: nic-hotplugged lists it" "$(ctl nic-hotplugged | tr '\n' ' ')"
expect "info lists it" "nics_hotplugged: $id" "$(ctl info | grep '^nics_hotplugged:')"
out=$(ctl nic-remove "$id")
rc=$?
[ $rc -eq 0 ] && gt_pass "$T: nic-remove answers after the eject ($out)" || gt_fail "$T: nic-remove" "exit $rc: $out"
expect "eth1 disappears" gone "$(eth1_gone)"
expect "thread count back after the removal" "$t0" "$(threads)"
expect "fd count back after the removal" "$f0" "$(fds)"

refused "nic-remove of an unknown ID" "no hot-plugged NIC" nic-remove 29
bdf=$(gq 'basename $(readlink -f /sys/class/net/eth0/device/..)') # the virtio device's PCI parent, 0000:00:SS.0
boot_slot=$(printf "%d" "0x$(echo "$bdf" | cut -d: -f3 | cut -d. -f1)" 2>/dev/null)
refused "nic-remove of the boot NIC (slot $boot_slot, $bdf)" "no hot-plugged NIC" nic-remove "$boot_slot"
refused "nic-remove without an ID" "usage: nic-remove" nic-remove x
refused "nic-add with a bad spec" "bogus=1" nic-add bogus=1
refused "nic-add on a switch that does not exist" "nosuch" nic-add switch=nosuch

bad=""
for i in 1 2 3 4 5; do
	id=$(plug) || { bad="$bad plug#$i"; continue; }
	[ "$(ping_eth1)" = ok ] || bad="$bad ping#$i"
	ctl nic-remove "$id" >/dev/null || bad="$bad remove#$i"
	[ "$(eth1_gone)" = gone ] || bad="$bad gone#$i"
done
[ -z "$bad" ] && gt_pass "$T: five plug/ping/unplug cycles" || gt_fail "$T: five plug/ping/unplug cycles" "failed:$bad"
expect "no thread left behind by the cycles" "$t0" "$(threads)"
expect "no fd left behind by the cycles" "$f0" "$(fds)"
dm1=$(gq "dmesg | grep -c -E '$pat'")
[ -n "$dm0" ] && [ "$dm1" = "$dm0" ] && gt_pass "$T: no new ACPI errors or kernel warnings ($dm0 from boot)" ||
	gt_fail "$T: no new ACPI errors or kernel warnings" "$dm0 at boot, $dm1 at the end"
guest_send "$vm" "dmesg | grep -i -E 'acpiphp|pci 0000:00:0|virtio' | tail -20 | sed 's/^/GT-DMESG: /'"
sleep 2
guest_send "$vm" 'poweroff -f'
guest_wait_exit "$vm" 300
expect "poweroff ends the VMM with exit 0" 0 "$GT_RC"
