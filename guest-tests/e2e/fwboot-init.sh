#!/bin/sh
# /init of the firmware-boot guests: proves the kernel came up from the disk through SeaBIOS and
# reports what the firmware handed on (CPUs, memory, minivmm's ACPI tables), then powers off.
# A virtio disk starting with "GTMARK00" asks for one reboot first: the guest writes "GTMARK01"
# there and reboots (SeaBIOS runs again); the next boot sees "GTMARK01" and goes on as usual.
echo "GT: fwboot=up"
for d in /dev/vd?; do
	[ -b "$d" ] || continue
	case $(dd if="$d" bs=8 count=1 2>/dev/null) in
	GTMARK00)
		printf GTMARK01 | dd of="$d" bs=8 count=1 conv=notrunc,fsync 2>/dev/null
		echo "GT: rebooting"
		reboot -f
		;;
	GTMARK01) echo "GT: rebooted=1" ;;
	esac
done
echo "GT: cpus=$(grep -c '^processor' /proc/cpuinfo)"
echo "GT: memtotal_kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
# OEM ID of the DSDT and the MADT: minivmm's own tables ("MINVMM"), not SeaBIOS's ("BOCHS ").
oem() { dd if="/sys/firmware/acpi/tables/$1" bs=1 skip=10 count=6 2>/dev/null | tr ' ' _; }
echo "GT: dsdt_oem=$(oem DSDT)"
echo "GT: madt_oem=$(oem APIC)"
echo "GT: facp_oem=$(oem FACP)"
echo "GT: smbios=$(cat /sys/class/dmi/id/sys_vendor 2>/dev/null | tr ' ' _)"
echo "GT: cmdline_ok=$(grep -c gt_fwboot /proc/cmdline)"
echo "GT: fromcd=$(grep -c gt_fromcd /proc/cmdline)"
echo "GT: efi=$([ -d /sys/firmware/efi ] && echo 1 || echo 0)"
echo "GT: done"
poweroff -f
