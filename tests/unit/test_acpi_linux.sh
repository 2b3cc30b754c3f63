#!/bin/bash
# minivmm's ACPI tables read by a real Linux: Debian's kernel boots under QEMU (TCG, no KVM needed)
# on QEMU's PC machine, whose legacy hardware sits at the same ports as minivmm's, with
# acpi_rsdp= pointing at minivmm's tables (loaded into reserved RAM), so Linux uses them instead of
# QEMU's.  The busybox /init prints what Linux made of them and resets the machine.
#
# Two configurations: 2 of 4 CPUs without hot-plug, and the same with the hot-plug methods.  In the
# second, QEMU's PC machine has nothing at the hot-plug ports (reads are all-ones), so every possible
# CPU reads as present and Linux hot-adds CPUs 2 and 3 through their _STA and _MAT; it also has
# nothing at minivmm's GPE0 block, so Linux reports "No handler or method for GPE" for the bits it
# reads as set: those lines are expected there and only there.
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
GPA=0x8000000

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1${2:+ ($2)}"; }
expect() { # name, log, fixed string that must appear
	if grep -qF -- "$3" "$2"; then pass "$1"; else fail "$1" "no '$3'"; fi
}

kernel=$(ls /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -1)
for need in qemu-system-x86_64 cpio gzip; do
	command -v "$need" >/dev/null || { fail "prerequisite $need"; exit 1; }
done
[ -n "$kernel" ] && [ -x /bin/busybox ] || { fail "prerequisites: a Debian kernel and busybox-static"; exit 1; }

mkdir -p "$tmp/root/bin" "$tmp/root/proc" "$tmp/root/sys"
cp /bin/busybox "$tmp/root/bin/"
cat >"$tmp/root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
echo "CHECK cpus-online $(grep -c ^processor /proc/cpuinfo)"
echo "CHECK cpus-possible $(cat /sys/devices/system/cpu/possible)"
echo "CHECK cpus-present $(cat /sys/devices/system/cpu/present)"
for d in /sys/bus/acpi/devices/*; do echo "CHECK acpi $(basename $d)"; done
for p in /sys/bus/pnp/devices/*; do echo "CHECK pnp $(cat $p/id) $(cat $p/resources | tr '\n' ' ')"; done
grep -E ' 9: .* acpi' /proc/interrupts | sed 's/^/CHECK sci /'
echo "CHECK done"
reboot -f
EOF
chmod +x "$tmp/root/init"
(cd "$tmp/root" && find . | cpio -o -H newc 2>/dev/null | gzip >"$tmp/initrd.gz")

boot() { # name, acpi-dump options...
	local name=$1
	shift
	mkdir -p "$tmp/$name"
	if ! ./minivmm acpi-dump "$@" --gpa $GPA "$tmp/$name" >/dev/null 2>&1; then
		fail "$name: acpi-dump"
		return 1
	fi
	# The upper time limit only stops a hung boot; a normal one takes 10-40 s under TCG.
	# no_timer_check: Linux's check that the 8254 timer ticks through the IO-APIC counts ticks in
	# a few milliseconds of busy wait; under TCG on a loaded host (tests run two at a time) it
	# missed them and panicked, "IO-APIC + timer doesn't work!".  No check here is about it.
	timeout 600 qemu-system-x86_64 -accel tcg -machine pc -smp 2,maxcpus=4 -m 512 \
		-nographic -no-reboot -kernel "$kernel" -initrd "$tmp/initrd.gz" \
		-device loader,file="$tmp/$name/tables.bin",addr=$GPA,force-raw=on \
		-append "console=ttyS0 acpi_rsdp=$GPA memmap=128K\$$GPA panic=-1 no_timer_check" \
		>"$tmp/$name/boot.log" 2>&1 </dev/null
	tr -d '\r' <"$tmp/$name/boot.log" >"$tmp/$name/log"
	if grep -q '^CHECK done' "$tmp/$name/log"; then
		pass "$name: Linux boots on the tables"
	else
		fail "$name: Linux boots on the tables" "$(grep -iE 'panic|error' "$tmp/$name/log" | head -1)"
		return 1
	fi
}

check_common() { # name
	local n=$1 log="$tmp/$1/log"
	expect "$n: RSDP found where given" "$log" "ACPI: RSDP 0x0000000008000000 000024 (v02 MINVMM)"
	expect "$n: MADT used for SMP" "$log" "ACPI: Using ACPI (MADT) for SMP configuration information"
	expect "$n: possible CPUs from MADT" "$log" "smpboot: Allowing 4 CPUs, 2 hotplug CPUs"
	expect "$n: two CPUs online" "$log" "CHECK cpus-online 2"
	expect "$n: SCI override level/high" "$log" "INT_SRC_OVR (bus 0 bus_irq 9 global_irq 9 high level)"
	expect "$n: DSDT loaded" "$log" "ACPI: 1 ACPI AML tables successfully acquired and loaded"
	expect "$n: S5 supported" "$log" "ACPI: PM: (supports S0 S5)"
	expect "$n: PCI root bridge" "$log" "ACPI: PCI Root Bridge [PCI0] (domain 0000 [bus 00-ff])"
	expect "$n: I/O window below CF8" "$log" "root bus resource [io  0x0000-0x0cf7 window]"
	expect "$n: I/O window above CFF" "$log" "root bus resource [io  0x0d00-0xffff window]"
	expect "$n: 32-bit MMIO window" "$log" "root bus resource [mem 0xc0000000-0xfebfffff window]"
	expect "$n: _PRT used" "$log" "PCI: Using ACPI for IRQ routing"
	expect "$n: COM1 from the DSDT" "$log" "CHECK pnp PNP0501 state = active io 0x3f8-0x3ff irq 4"
	expect "$n: RTC from the DSDT" "$log" "CHECK pnp PNP0b00 state = active io 0x70-0x71 irq 8"
	expect "$n: i8042 from the DSDT" "$log" "i8042: PNP: PS/2 Controller [PNP0303:KBD] at 0x60,0x64 irq 1"
	expect "$n: processor container" "$log" "CHECK acpi ACPI0010:00"
	expect "$n: fixed power button" "$log" "CHECK acpi LNXPWRBN:00"
	expect "$n: SCI is a level interrupt" "$log" "fasteoi   acpi"
	local cpus
	cpus=$(grep -c '^CHECK acpi ACPI0007:' "$log")
	if [ "$cpus" -eq 4 ]; then pass "$n: four processor devices"; else fail "$n: four processor devices" "$cpus"; fi
}

no_acpi_errors() { # name, log, [pattern of expected lines to ignore]
	local bad
	bad=$(grep -E 'ACPI (BIOS )?(Error|Warning|Exception)|ACPI BIOS Bug|[Ff]irmware [Bb]ug' "$2" |
		grep -vE "${3:-^$}" | head -1)
	if [ -z "$bad" ]; then pass "$1: no ACPI errors"; else fail "$1: no ACPI errors" "$bad"; fi
}

if boot cold --cpus 2 --possible 4; then
	check_common cold
	no_acpi_errors cold "$tmp/cold/log"
	expect "cold: only boot CPUs present" "$tmp/cold/log" "CHECK cpus-present 0-1"
fi
if boot hotplug --cpus 2 --possible 4 --hotplug; then
	check_common hotplug
	no_acpi_errors hotplug "$tmp/hotplug/log" 'No handler or method for GPE'
	expect "hotplug: CPU 2 added from _STA/_MAT" "$tmp/hotplug/log" "CPU2 has been hot-added"
	expect "hotplug: CPU 3 added from _STA/_MAT" "$tmp/hotplug/log" "CPU3 has been hot-added"
	expect "hotplug: register block reserved" "$tmp/hotplug/log" "CHECK pnp PNP0c02 state = active io 0xcd8-0xce3"
fi
