# shellcheck shell=bash
# Checks shared by the foundation tests (sourced after ../lib/guest.sh).

# MemTotal is RAM minus what the kernel keeps for itself before the page allocator sees it: its own
# image (Debian 6.1: ~15 MiB of code and data), the memmap (struct page: 64 B per 4 KiB page, 1.6%),
# the firmware areas below 1 MiB and the ISA hole, and early allocations (page tables, per-CPU areas,
# the swiotlb bounce buffer only above 4 GiB).  Measured under QEMU q35: 55 MiB less at 512 MiB,
# 63 MiB less at 1 GiB.  So we accept [RAM - 2% - 64 MiB, RAM]: never more than asked, and never a
# loss that means a missing or truncated e820 range.
check_memtotal() { # name mib
	local kb want_kb low
	kb=$(guest_value "$1" memtotal_kb)
	want_kb=$(($2 * 1024))
	low=$((want_kb - want_kb * 2 / 100 - 64 * 1024))
	if [ -n "$kb" ] && [ "$kb" -le "$want_kb" ] && [ "$kb" -ge "$low" ]; then
		gt_pass "$GT_T: MemTotal $kb kB for --memory $2 (accepted $low..$want_kb)"
	else
		gt_fail "$GT_T: MemTotal for --memory $2" "got '${kb}' kB, accepted $low..$want_kb"
	fi
}

check_cpus() { # name n
	local n
	n=$(guest_value "$1" cpus)
	[ "$n" = "$2" ] && gt_pass "$GT_T: /proc/cpuinfo shows $2 CPUs" ||
		gt_fail "$GT_T: /proc/cpuinfo shows $2 CPUs" "got '$n'"
}

check_acpi() { # name
	local t missing=""
	t=,$(guest_value "$1" acpi_tables)
	for want in DSDT FACP APIC; do
		case $t in *,$want,*) ;; *) missing="$missing $want" ;; esac
	done
	[ -z "$missing" ] && gt_pass "$GT_T: ACPI tables DSDT, FACP, APIC in /sys/firmware/acpi/tables" ||
		gt_fail "$GT_T: ACPI tables in /sys/firmware/acpi/tables" "missing$missing; has ${t#,}"
}

check_dmesg() { # name
	local n
	n=$(guest_value "$1" dmesg_errors)
	if [ "$n" = 0 ]; then
		gt_pass "$GT_T: no ACPI/IRQ errors in the kernel log"
	else
		gt_fail "$GT_T: no ACPI/IRQ errors in the kernel log" "$n error lines"
		grep -a '^GT-DMESG: ' "$GT_WORK/$1.console" | sed 's/^/    /'
	fi
}

check_console() { # name: a computed answer proves the guest ran what the host typed
	guest_send "$1" 'echo GT-ECHO-$((6 * 7))-$((1000 + 1))'
	guest_wait "$1" '^GT-ECHO-42-1001' && gt_pass "$GT_T: console carries input and output" ||
		gt_fail "$GT_T: console carries input and output" "typed command's output not seen"
}
