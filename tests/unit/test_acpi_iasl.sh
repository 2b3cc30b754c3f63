#!/bin/bash
# ACPI tables checked by an independent implementation: ACPICA's iasl (Debian acpica-tools).
# For several machine configurations, `minivmm acpi-dump` writes the tables; each one must
# disassemble with `iasl -d` without errors or warnings, the DSDT must compile back cleanly, and the
# disassembly must describe the expected devices, CPUs and fixed-hardware ports.
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1${2:+ ($2)}"; }
check() { # name, then a command that must succeed
	local name=$1
	shift
	if "$@" >/dev/null 2>&1; then pass "$name"; else fail "$name"; fi
}
count() { # file, fixed string: how many lines contain it
	grep -cF -- "$2" "$1"
}

if ! command -v iasl >/dev/null; then
	fail "iasl-installed" "install acpica-tools"
	exit 1
fi

run_config() { # name, ncpus, possible, then acpi-dump options
	local name=$1 ncpus=$2 possible=$3
	shift 3
	local d="$tmp/$name"
	mkdir -p "$d"
	if ! ./minivmm acpi-dump --cpus "$ncpus" --possible "$possible" "$@" "$d" >"$d/dump.log" 2>&1; then
		fail "$name: acpi-dump" "$(head -1 "$d/dump.log")"
		return
	fi
	pass "$name: acpi-dump"
	local t
	for t in dsdt facp apic facs xsdt rsdt; do
		if [ ! -s "$d/$t.dat" ]; then
			fail "$name: $t written"
			continue
		fi
		(cd "$d" && iasl -d "$t.dat" >"$t.iasl.log" 2>&1)
		local rc=$?
		if [ $rc -ne 0 ] || grep -qiE '(error|warning)' "$d/$t.iasl.log" || [ ! -s "$d/$t.dsl" ]; then
			fail "$name: iasl -d $t" "$(grep -iE 'error|warning' "$d/$t.iasl.log" | head -1)"
		else
			pass "$name: iasl -d $t"
		fi
	done
	# The DSDT's disassembly must compile back without errors, warnings or remarks.
	(cd "$d" && iasl -p recompiled dsdt.dsl >recompile.log 2>&1)
	if grep -q 'Compilation successful. 0 Errors, 0 Warnings, 0 Remarks' "$d/recompile.log"; then
		pass "$name: dsdt recompiles cleanly"
	else
		fail "$name: dsdt recompiles cleanly" "$(grep -E 'Error|Warning|Remark' "$d/recompile.log" | head -1)"
	fi

	local dsl="$d/dsdt.dsl" apic="$d/apic.dsl" facp="$d/facp.dsl"
	[ -f "$dsl" ] && [ -f "$apic" ] && [ -f "$facp" ] || return
	check "$name: PCI0 is a PCIe/PCI host bridge" grep -q 'EisaId ("PNP0A08")' "$dsl"
	check "$name: _PRT routes every slot and pin" test "$(grep -c '0x[0-9A-F]*FFFF, *$' "$dsl")" -eq 128
	check "$name: _S5 package" grep -q 'Name (\\_S5, Package' "$dsl"
	check "$name: RTC" grep -q 'EisaId ("PNP0B00")' "$dsl"
	check "$name: keyboard controller" grep -q 'EisaId ("PNP0303")' "$dsl"
	check "$name: one processor device per possible CPU" \
		test "$(count "$dsl" 'Name (_HID, "ACPI0007"')" -eq "$possible"
	check "$name: MADT Local APIC per possible CPU" \
		test "$(count "$apic" '[Processor Local APIC]')" -eq "$possible"
	check "$name: MADT enabled CPUs" test "$(count "$apic" 'Processor Enabled : 1')" -eq "$ncpus"
	check "$name: MADT online-capable CPUs" \
		test "$(count "$apic" 'Runtime Online Capable : 1')" -eq $((possible - ncpus))
	check "$name: MADT I/O APIC" grep -q 'Address : FEC00000' "$apic"
	check "$name: FADT SCI 9" grep -q 'SCI Interrupt : 0009' "$facp"
	check "$name: FADT PM1a event block" grep -q 'PM1A Event Block Address : 00000600' "$facp"
	check "$name: FADT reset register" grep -q 'Address : 0000000000000CF9' "$facp"
}

run_config one 1 1
run_config four 4 4
run_config hotplug 2 8 --hotplug
run_config max 1 64 --hotplug --no-com1
run_config pcihp 2 2 --pci-hotplug 0xFFFFFF00
d="$tmp/pcihp/dsdt.dsl"
check "pcihp: GPE handler" grep -q 'Method (_E01' "$d"
check "pcihp: one slot device per hot-pluggable slot" test "$(count "$d" 'Method (_EJ0')" -eq 24
check "pcihp: no slot device for a boot slot" bash -c "! grep -q 'Device (SL07)' '$d'"
check "pcihp: slot 8's address and number" grep -A2 -F 'Device (SL08)' "$d"
check "pcihp: register block" grep -q 'OperationRegion (PCST, SystemIO, 0x0CC0, 0x10)' "$d"
check "four: no PCI hot-plug" bash -c "! grep -q PCNT '$tmp/four/dsdt.dsl'"
d="$tmp/hotplug/dsdt.dsl"
check "hotplug: GPE handler" grep -q 'Method (_E02' "$d"
check "hotplug: scan method" grep -q 'Method (CSCN' "$d"
check "hotplug: _EJ0 on hot-pluggable CPUs" test "$(count "$d" 'Method (_EJ0')" -eq 7
check "hotplug: register block" grep -q 'OperationRegion (PRST, SystemIO, 0x0CD8, 0x0C)' "$d"
check "four: COM1 present" grep -q 'Device (COM1)' "$tmp/four/dsdt.dsl"
check "four: no hot-plug methods" bash -c "! grep -q CSCN '$tmp/four/dsdt.dsl'"

# Bad arguments give a one-line error and a failure status.
check "rejects --cpus 0" bash -c "! ./minivmm acpi-dump --cpus 0 '$tmp/x' 2>/dev/null"
check "rejects --cpus 65" bash -c "! ./minivmm acpi-dump --cpus 65 '$tmp/x' 2>/dev/null"
check "rejects --possible < --cpus" bash -c "! ./minivmm acpi-dump --cpus 4 --possible 2 '$tmp/x' 2>/dev/null"
check "rejects a missing directory" bash -c "! ./minivmm acpi-dump '$tmp/does/not/exist' 2>/dev/null"

# ACPICA's interpreter (acpiexec) loads each DSDT and runs its methods.  It simulates the hot-plug
# I/O region as plain memory, so hot-pluggable CPUs read as absent there.
acpi_exec() { # config dir, case name, then "PATH ARGS=EXPECTED" items (EXPECTED: hex integer or -)
	local dir=$1 name=$2 cmds="" item
	shift 2
	for item in "$@"; do cmds+="evaluate ${item%%=*}; "; done
	(cd "$dir" && timeout 60 acpiexec -b "$cmds" dsdt.dat >acpiexec.log 2>&1)
	local log="$dir/acpiexec.log"
	if grep -qE 'ACPI (Error|Exception|Warning)|failed with status' "$log"; then
		fail "$name" "$(grep -E 'ACPI (Error|Exception|Warning)|failed with status' "$log" | head -1)"
		return
	fi
	for item in "$@"; do
		local path=${item%%=*} want=${item#*=}
		path=${path%% *}
		[ "$want" = - ] && continue
		# "Evaluation of PATH returned object ..." is followed by "[Integer] = 000...0F".
		local got
		got=$(grep -A1 -F "Evaluation of $path returned" "$log" | sed -n 's/.*\[Integer\] = \([0-9A-F]*\).*/\1/p')
		if [ -z "$got" ] || [ $((16#$got)) -ne $((want)) ]; then
			fail "$name" "$path returned '${got:-nothing}', expected $want"
			return
		fi
	done
	pass "$name"
}
acpi_exec "$tmp/four" "acpiexec: four CPUs present" '\_SB.CPUS.C000._STA=0xF' '\_SB.CPUS.C003._STA=0xF' \
	'\_SB.PCI0._CRS=-' '\_SB.PCI0._PRT=-' '\_S5=-' '\_SB.COM1._CRS=-' '\_SB.KBD._CRS=-'
acpi_exec "$tmp/hotplug" "acpiexec: hot-plug methods run" '\_SB.CPUS.C000._STA=0xF' \
	'\_SB.CPUS.C001._STA=0' '\_SB.CPUS.C007._STA=0' '\_GPE._E02=-' '\_SB.CPUS.C005._EJ0 1=-' \
	'\_SB.CPUS.C001._MAT=-'
acpi_exec "$tmp/max" "acpiexec: 64 possible CPUs" '\_SB.CPUS.C000._STA=0xF' '\_SB.CPUS.C03F._STA=0' \
	'\_GPE._E02=-' '\_SB.CPUS.C03F._MAT=-'
acpi_exec "$tmp/pcihp" "acpiexec: PCI hot-plug methods run" '\_GPE._E01=-' \
	'\_SB.PCI0.SL08._EJ0 1=-' '\_SB.PCI0.SL1F._SUN=0x1F' '\_SB.PCI0.SL08._ADR=0x80000'
mkdir -p "$tmp/cold"
./minivmm acpi-dump --cpus 2 --possible 4 "$tmp/cold" >/dev/null 2>&1
acpi_exec "$tmp/cold" "acpiexec: possible CPUs absent without hot-plug" '\_SB.CPUS.C001._STA=0xF' \
	'\_SB.CPUS.C002._STA=0' '\_SB.CPUS.C003._STA=0'
