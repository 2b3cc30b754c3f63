#!/bin/bash
# Firmware boot time, minivmm against QEMU (issue 17): no --kernel; SeaBIOS (Debian's
# /usr/share/seabios/bios-256k.bin on both sides: minivmm's default, QEMU's -bios) boots the same
# raw disk on AHCI (minivmm's default bus; QEMU -M q35's ICH9 AHCI), built by
# guest-tests/lib/bootdisk.sh: an MBR, a FAT partition with syslinux, the stock Debian kernel and a
# busybox initramfs whose /init prints a marker and powers off.  The figure is the wall time from
# starting the VMM to the marker on the serial console (read line by line as it arrives, so the
# reading adds no polling delay).  The two VMMs take turns, BENCH_FWBOOT_ROUNDS (3) boots each;
# each prints its median and range and the ratio of the medians (minivmm / QEMU, below 1: minivmm
# faster).  Inside level 1 (no usable /dev/kvm here) absolute times are slow and noisy.
# BENCH_FWBOOT_BASE=PATH (a minivmm binary under the checkout, e.g. one built from an older commit)
# boots a third VMM in the same turns, so a change is measured before and after in one run.
cd "$(dirname "$0")/.." || exit 1
. guest-tests/lib/level1.sh
. guest-tests/lib/guest.sh
. guest-tests/lib/bootdisk.sh

ROUNDS=${BENCH_FWBOOT_ROUNDS:-3}
case $ROUNDS in '' | *[!0-9]*) echo "bench/fwboot.sh: BENCH_FWBOOT_ROUNDS must be a number" >&2; exit 2 ;; esac
[ "$ROUNDS" -ge 1 ] || { echo "bench/fwboot.sh: BENCH_FWBOOT_ROUNDS must be at least 1" >&2; exit 2; }
BIOS=/usr/share/seabios/bios-256k.bin
BASE=${BENCH_FWBOOT_BASE:-}
[ -z "$BASE" ] || [ -x "$BASE" ] || { echo "bench/fwboot.sh: BENCH_FWBOOT_BASE=$BASE is not executable" >&2; exit 2; }
MEM=512

if [ "${GT_LEVEL:-}" != 1 ]; then
	[ -x ./minivmm ] || { echo "bench/fwboot.sh: ./minivmm is not built (run make)" >&2; exit 1; }
	if ! gt_host_kvm_usable; then
		echo "# fwboot: no usable /dev/kvm here: measuring inside level 1 (QEMU TCG, nested KVM)"
		level1_run ./bench/fwboot.sh
		rc=$?
		level1_cleanup
		exit $rc
	fi
fi
[ -r "$BIOS" ] || { echo "bench/fwboot.sh: $BIOS missing (seabios)" >&2; exit 1; }

gt_setup
export XDG_DATA_HOME=$GT_WORK/state # minivmm's VM state (level 1's home is read-only)
W=$GT_WORK
initramfs_build "$W/fw.cpio" bench/fwboot-init -z || exit 1
bootdisk_build "$W/os.raw" "$(gt_kernel)" "$W/fw.cpio" "console=ttyS0 quiet panic=-1" || exit 1

# KVM's exit counters of PID's VMs (debugfs, summed over the vCPUs) as "exits io mmio": read when
# the marker arrives, so they count the boot to /init (firmware, syslinux's loading, the kernel).
[ -d /sys/kernel/debug/kvm ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null
kvm_exits() { # PID: NA when debugfs shows no VM of PID
	local d f n v out="" seen=0
	for f in exits io_exits mmio_exits; do
		n=0
		for d in /sys/kernel/debug/kvm/"$1"-*; do
			v=$(cat "$d/$f" 2>/dev/null) || continue
			case $v in '' | *[!0-9]*) continue ;; esac
			n=$((n + v)) seen=1
		done
		out="$out$n "
	done
	[ $seen = 1 ] && echo "$out" || echo "NA NA NA"
}

# One boot: prints the seconds from the VMM's start to the marker, or NA.
boot_once() { # vmm round
	local vmm=$1 name=fw-$1-$2-$$ fd t0 t1 vpid rpid
	mkfifo "$W/$name.in" "$W/$name.out" || return 1
	exec {fd}<>"$W/$name.in" # held open: the VMM never sees EOF on its console
	# The console, line by line as it comes: the marker's time is taken when it arrives.
	(
		while IFS= read -r line; do
			case $line in *"FWBOOT: init"*)
				[ -e "$W/$name.t1" ] || {
					date +%s.%N >"$W/$name.t1"
					kvm_exits "$(cat "$W/$name.pid")" >"$W/$name.kvm"
				} ;;
			esac
			printf '%s\n' "$line" >>"$W/$name.console"
		done <"$W/$name.out"
	) &
	rpid=$!
	t0=$(date +%s.%N)
	local bin=$GT_MINIVMM
	[ "$vmm" = base ] && bin=$BASE
	case $vmm in
	minivmm | base)
		"$bin" run --name "$name" --cpus 1 --memory "$MEM" --console stdio \
			--disk "$W/os.raw,format=raw" <"$W/$name.in" >"$W/$name.out" 2>"$W/$name.stderr" &
		;;
	qemu)
		qemu-system-x86_64 -accel kvm -M q35 -smp 1 -m "$MEM" -nodefaults -display none \
			-no-reboot -serial stdio -bios "$BIOS" \
			-drive "file=$W/os.raw,if=none,id=d,format=raw" -device ide-hd,drive=d,bus=ide.0 \
			<"$W/$name.in" >"$W/$name.out" 2>"$W/$name.stderr" &
		;;
	esac
	vpid=$!
	echo $vpid >"$W/$name.pid"
	# Bounded (15 min): a VMM that never powers off is killed; without the marker the figure is NA.
	for _ in $(seq 1800); do
		kill -0 $vpid 2>/dev/null || break
		sleep 0.5
	done
	kill -KILL $vpid 2>/dev/null
	wait $vpid 2>/dev/null
	wait $rpid 2>/dev/null
	exec {fd}>&-
	if [ -s "$W/$name.t1" ]; then
		t1=$(cat "$W/$name.t1")
		awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", b - a }'
	else
		echo "# fwboot: $vmm round $2 did not reach /init; console and stderr:" >&2
		tail -5 "$W/$name.console" 2>/dev/null | sed 's/^/#   /' >&2
		tail -5 "$W/$name.stderr" | sed 's/^/#   stderr: /' >&2
		echo NA
	fi
}

# median and range of the numbers given
stats() { printf '%s\n' "$@" | grep -v NA | sort -n | awk '{ v[NR] = $1 } END {
	if (NR == 0) { print "NA NA NA"; exit }
	m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
	printf "%.2f %.2f %.2f\n", m, v[1], v[NR] }'; }

echo "# fwboot: kernel $(gt_kernel), 1 vCPU, $MEM MiB, SeaBIOS $BIOS, raw disk on AHCI, $ROUNDS boots each, taking turns$([ "${GT_LEVEL:-}" = 1 ] && echo ', inside level 1')"
m=() q=() b=()
for ((r = 1; r <= ROUNDS; r++)); do
	m+=("$(boot_once minivmm $r)")
	q+=("$(boot_once qemu $r)")
	echo "# fwboot: round $r: minivmm ${m[-1]} s, QEMU ${q[-1]} s;" \
		"KVM exits, io, mmio to /init: minivmm $(cat "$W/fw-minivmm-$r-$$.kvm" 2>/dev/null)," \
		"QEMU $(cat "$W/fw-qemu-$r-$$.kvm" 2>/dev/null)"
	if [ -n "$BASE" ]; then
		b+=("$(boot_once base $r)")
		echo "# fwboot: round $r: base ($BASE) ${b[-1]} s;" \
			"KVM exits, io, mmio to /init: $(cat "$W/fw-base-$r-$$.kvm" 2>/dev/null)"
	fi
done
# Exits per sector: the exits of the median boot over the sectors syslinux loads (kernel + initrd).
sectors=$((($(stat -c %s "$(gt_kernel)") + $(stat -c %s "$W/fw.cpio") + 511) / 512))
exits_row() { # vmm: "exits io mmio" per sector of its first boot that reached /init
	local vmm=$1 r best=
	for ((r = 1; r <= ROUNDS; r++)); do
		grep -q "^[0-9]" "$W/fw-$vmm-$r-$$.kvm" 2>/dev/null && best=$r && break
	done
	[ -n "$best" ] || { echo "NA NA NA"; return; }
	awk -v s="$sectors" '{ printf "%.1f %.1f %.1f\n", $1 / s, $2 / s, $3 / s }' "$W/fw-$vmm-$best-$$.kvm"
}
# (no process substitution: level 1 has no /dev/fd)
set -- $(stats "${m[@]}") $(stats "${q[@]}")
mm=$1 mlo=$2 mhi=$3 qm=$4 qlo=$5 qhi=$6
printf '%-28s %18s %18s %7s\n' figure minivmm qemu ratio
printf '%-28s %18s %18s %7s\n' "firmware boot to /init (s)" "$mm ($mlo-$mhi)" "$qm ($qlo-$qhi)" \
	"$(awk -v a="$mm" -v b="$qm" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "NA" }')"
set -- $(exits_row minivmm) $(exits_row qemu)
printf '%-28s %18s %18s %7s\n' "KVM exits per sector" "$1" "$4" \
	"$(awk -v a="$1" -v b="$4" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "NA" }')"
printf '%-28s %18s %18s\n' "  of which io, mmio" "$2, $3" "$5, $6"
if [ -n "$BASE" ]; then
	set -- $(stats "${b[@]}")
	printf '%-28s %18s %18s %7s\n' "base: boot to /init (s)" "$1 ($2-$3)" "$qm ($qlo-$qhi)" \
		"$(awk -v a="$1" -v b="$qm" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "NA" }')"
	set -- $(exits_row base)
	printf '%-28s %18s\n' "base: KVM exits per sector" "$1 (io $2, mmio $3)"
fi
echo "# median (range) of $ROUNDS boots; ratio of the medians, minivmm / QEMU (below 1: minivmm faster)"
echo "# exits: KVM's counters (debugfs) from the VMM's start to /init, first round, over the $sectors sectors of kernel and initrd"
case "${m[*]} ${q[*]} ${b[*]}" in *NA*) exit 1 ;; esac
exit 0
