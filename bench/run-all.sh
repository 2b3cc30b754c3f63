#!/bin/bash
# `make bench`: minivmm against QEMU (-accel kvm -M q35 -kernel) booting the same kernel and
# initramfs, in one level-1 run when the host has no usable /dev/kvm (or on the host when it has):
#   boot_s     wall time from the VMM's start to the marker the guest's /init prints first
#   outb_ns    mean cost of one `outb` to port 0x80 (an exit to the VMM and back), timed in the guest
#   extra_kib  the VMM's resident memory beyond guest RAM once the guest idles: VmRSS minus the Rss
#              of the guest-RAM mapping (the mapping at least half the guest's size), so the figure
#              does not depend on how much RAM the guest happened to touch
# Ratios are minivmm / QEMU; inside level 1 absolute numbers are slow and noisy, ratios from the same
# run are what to compare.  Then runs every other bench/*.sh (storage rows, in-guest disk I/O ...).
cd "$(dirname "$0")/.." || exit 1
. guest-tests/lib/level1.sh
. guest-tests/lib/guest.sh

if [ "${GT_LEVEL:-}" != 1 ]; then
	mkdir -p build/bench
	gcc -static -O2 -Wall -Wextra -Werror -o build/bench/pio-loop bench/pio-loop.c || exit 1
	# bench/disk.sh's guest program: level 1 sees the tree read-only, so it is built here.
	gcc -static -O2 -Wall -Wextra -Werror -o build/bench/diskio bench/diskio.c || exit 1
	gcc -static -O2 -Wall -Wextra -Werror -o build/bench/kick bench/kick.c || exit 1
	# bench/cpu.sh's guest programs.
	for p in cpu-watch cpu-spin; do
		gcc -static -O2 -Wall -Wextra -Werror -pthread -o build/bench/$p bench/$p.c || exit 1
	done
	[ -x ./minivmm ] || { echo "bench: ./minivmm is not built (run make)" >&2; exit 1; }
	if ! gt_host_kvm_usable; then
		echo "# bench: no usable /dev/kvm here: measuring inside level 1 (QEMU TCG, nested KVM)"
		# Every row in one level 1: more than the default 30 min (the rows print as they go).
		level1_run -t "${GT_L1_TIMEOUT:-7200}" ./bench/run-all.sh
		rc=$?
		level1_cleanup
		exit $rc
	fi
fi

MEM=${BENCH_MEMORY:-512}
rss_extra_kib() { # pid guest-MiB
	awk -v half=$(($2 * 512)) '
	/^Size:/ { size = $2 }
	/^Rss:/ { total += $2; if (size >= half) guest += $2 }
	END { printf "%d\n", total - guest }' "/proc/$1/smaps"
}

measure() { # vmm -> sets boot_s outb_ns extra_kib
	local vmm=$1 name=bench-$1-$$ t0 t1
	boot_s=NA outb_ns=NA extra_kib=NA
	GT_VMM=$vmm
	t0=$(date +%s.%N)
	guest_start "$name" 1 "$MEM" "$GT_WORK/bench.cpio"
	if guest_wait "$name" '^BENCH: marker'; then
		t1=$(date +%s.%N)
		boot_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	fi
	if guest_wait "$name" '^BENCH: idle'; then
		outb_ns=$(grep -a -o 'BENCH: outb_ns=[0-9]*' "$GT_WORK/$name.console" | cut -d= -f2)
		[ -n "$outb_ns" ] || outb_ns=NA
		extra_kib=$(rss_extra_kib "$(guest_pid "$name")" "$MEM")
	fi
	guest_send "$name" ""
	guest_wait_exit "$name" 300
	if [ "$boot_s" = NA ] || [ "$outb_ns" = NA ] || [ "$extra_kib" = NA ]; then
		echo "# bench: $vmm did not finish; its console:"
		tail -20 "$GT_WORK/$name.console" | sed 's/^/#   /'
		return 1
	fi
}

gt_setup
export XDG_DATA_HOME=$GT_WORK/state # minivmm's VM state (level 1's home is read-only)
initramfs_build "$GT_WORK/bench.cpio" bench/guest-init -f build/bench/pio-loop:/pio-loop || exit 1
echo "# bench: kernel $(gt_kernel), 1 vCPU, $MEM MiB$([ "${GT_LEVEL:-}" = 1 ] && echo ', inside level 1')"
measure minivmm
m=("$boot_s" "$outb_ns" "$extra_kib")
measure qemu
q=("$boot_s" "$outb_ns" "$extra_kib")
printf '%-12s %12s %12s %8s\n' figure minivmm qemu ratio
row() { # label a b
	printf '%-12s %12s %12s %8s\n' "$1" "$2" "$3" \
		"$(awk -v a="$2" -v b="$3" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "NA" }')"
}
row boot_s "${m[0]}" "${q[0]}"
row outb_ns "${m[1]}" "${q[1]}"
row extra_kib "${m[2]}" "${q[2]}"

rc=0
for f in bench/*.sh; do
	[ "$f" = bench/run-all.sh ] && continue
	echo "# $f"
	bash "$f" || rc=1
done
case "${m[*]} ${q[*]}" in *NA*) rc=1 ;; esac
exit $rc
