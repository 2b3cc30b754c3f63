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
# The action reports the fixed-event count too: proof the press came as an ACPI SCI.
printf '#!/bin/sh\necho "GT: power-button ff_pwr_btn=$(cat /sys/firmware/acpi/interrupts/ff_pwr_btn)"\npoweroff -f\n' \
	>/etc/acpi/PWRF/00000080
chmod 755 /etc/acpi/PWRF/00000080
# -d: busybox acpid otherwise daemonizes (stdio to /dev/null) and then opens /var/log/acpid.log,
# which this initramfs lacks: it died at once, and its actions' output could never reach the console.
# In the foreground with -d it logs to stderr and its children write on the console.
acpid -d -c /etc/acpi &
acpid_pid=$!
sleep 1 # diagnostic only: an acpid that cannot start has died by now
kill -0 "$acpid_pid" 2>/dev/null && echo "GT: acpid=running" || echo "GT: acpid=died"
echo "GT: acpi_irq=$(grep -c acpi /proc/interrupts) ff_pwr_btn=$(cat /sys/firmware/acpi/interrupts/ff_pwr_btn 2>/dev/null | tr ' ' _)"
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
