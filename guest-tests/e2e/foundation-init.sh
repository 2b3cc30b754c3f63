#!/bin/sh
# /init of the foundation guests: reports what the guest sees as "GT: key=value" lines, starts a tick
# counter (proof of progress for pause/resume) and busybox acpid (power button -> power off), then
# runs a shell on the console so the host can type commands.
echo "GT: booted"
echo "GT: cpus=$(grep -c '^processor' /proc/cpuinfo)"
echo "GT: memtotal_kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
echo "GT: acpi_tables=$(ls /sys/firmware/acpi/tables 2>/dev/null | tr '\n' ',')"
pattern='ACPI Error|ACPI BIOS Error|irq [0-9]+: nobody cared|Spurious'
echo "GT: dmesg_errors=$(dmesg | grep -c -E "$pattern")"
dmesg | grep -E "$pattern" | head -5 | sed 's/^/GT-DMESG: /'
mkdir -p /etc/acpi/PWRF
printf '#!/bin/sh\necho "GT: power-button"\npoweroff -f\n' >/etc/acpi/PWRF/00000080
chmod 755 /etc/acpi/PWRF/00000080
acpid -c /etc/acpi && echo "GT: acpid=started"
# Which input devices acpid listens to: no "Power Button" here explains a power-off that never comes.
echo "GT: input_devices=$(cat /sys/class/input/*/name 2>/dev/null | tr ' \n' '_,')"
(
	i=0
	while :; do
		i=$((i + 1))
		echo "GT-TICK $i"
		sleep 1
	done
) &
echo "GT: ready"
exec sh
