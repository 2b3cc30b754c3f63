#!/bin/sh
# /init of the demo guest: a shell on the console; leaving it (or `poweroff -f`) powers the guest off.
mkdir -p /etc/acpi/PWRF
printf '#!/bin/sh\npoweroff -f\n' >/etc/acpi/PWRF/00000080
chmod 755 /etc/acpi/PWRF/00000080
acpid -c /etc/acpi
mem=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)
echo
echo "minivmm demo guest: Linux $(uname -r), $(grep -c '^processor' /proc/cpuinfo) CPUs, $((mem / 1024)) MiB."
echo "Type commands; 'exit' or 'poweroff -f' powers the guest off and ends minivmm."
echo "GT: ready"
setsid cttyhack sh
poweroff -f
