#!/bin/bash
# Memory figures of issue 14, minivmm against QEMU (-accel kvm -M q35 -cpu host) booting the same
# kernel and initramfs (guest-tests/e2e/balloon-init.sh: virtio_pci, virtio_balloon) in one run:
#   balloon  a BENCH_MEM_GUEST_MIB (2048) guest fills BENCH_MEM_TOUCH_MIB (1200) of tmpfs and frees
#            it (its RAM is resident in the VMM), then the balloon inflates by BENCH_MEM_BALLOON_MIB
#            (1024) and deflates to 0: the time from the request until the device's `actual`
#            reaches the target (minivmm `control balloon MB` polled with `control balloon`; QEMU
#            -device virtio-balloon-pci, QMP `balloon` polled with `query-balloon`, every 0.1 s),
#            and the VMM's VmRSS given back by the inflation.
#   ksm      four identical idle guests of BENCH_MEM_KSM_GUEST_MIB (512) each, minivmm
#            --pagefusion on against QEMU (mem-merge=on, its default), with the host's KSM running
#            (pages_to_scan BENCH_MEM_KSM_PAGES (1000), sleep_millisecs 20; the settings are put
#            back after): BENCH_MEM_KSM_S (60) s after all four are up, the share of the four VMMs'
#            resident memory that KSM has merged (sum of /proc/PID/ksm_merging_pages over sum of
#            VmRSS) and the memory saved (the host's pages_sharing).  KSM's own pace decides most
#            of this row: it is the same for both.
# Free page reporting is off on both sides (QEMU's default), so RSS moves only with the balloon.
# BENCH_MEM_ROWS ("balloon ksm") picks rows.  Without a usable /dev/kvm the run happens in one
# level 1 (QEMU TCG, one CPU, 4 GiB: hence 4 x 512 MiB guests), where absolute times are slow and
# noisy: compare the two VMMs within one run only.
cd "$(dirname "$0")/.." || exit 1
. guest-tests/lib/level1.sh
. guest-tests/lib/guest.sh
. guest-tests/lib/qmp.sh
. bench/guest-lib.sh

ROWS=${BENCH_MEM_ROWS:-balloon ksm}
GUEST_MIB=${BENCH_MEM_GUEST_MIB:-2048}
TOUCH_MIB=${BENCH_MEM_TOUCH_MIB:-1200}
BALLOON_MIB=${BENCH_MEM_BALLOON_MIB:-1024}
KSM_GUEST_MIB=${BENCH_MEM_KSM_GUEST_MIB:-512}
KSM_PAGES=${BENCH_MEM_KSM_PAGES:-1000}
KSM_S=${BENCH_MEM_KSM_S:-60}
case "$GUEST_MIB$TOUCH_MIB$BALLOON_MIB$KSM_GUEST_MIB$KSM_PAGES$KSM_S" in
*[!0-9]* | "") echo "bench/memory.sh: the BENCH_MEM_ settings must be numbers" >&2; exit 2 ;;
esac
[ "$BALLOON_MIB" -lt "$GUEST_MIB" ] && [ "$TOUCH_MIB" -lt "$GUEST_MIB" ] ||
	{ echo "bench/memory.sh: BENCH_MEM_BALLOON_MIB and _TOUCH_MIB must be below BENCH_MEM_GUEST_MIB" >&2; exit 2; }
for r in $ROWS; do
	case $r in balloon | ksm) ;; *) echo "bench/memory.sh: BENCH_MEM_ROWS: unknown row $r" >&2; exit 2 ;; esac
done

if [ "${GT_LEVEL:-}" != 1 ]; then
	[ -x ./minivmm ] || { echo "bench/memory.sh: ./minivmm is not built (run make)" >&2; exit 1; }
	if ! gt_host_kvm_usable; then
		echo "# memory: no usable /dev/kvm here: measuring inside level 1 (QEMU TCG, nested KVM)"
		level1_run ./bench/memory.sh
		rc=$?
		level1_cleanup
		exit $rc
	fi
fi

gt_setup
W=$GT_WORK
KSM=/sys/kernel/mm/ksm
KSM_SAVED=""
mem_teardown() {
	local f
	bench_kill_all
	if [ -n "$KSM_SAVED" ]; then # run, pages_to_scan and sleep_millisecs as they were
		set -- $KSM_SAVED
		for f in pages_to_scan sleep_millisecs run; do echo "$1" >"$KSM/$f" 2>/dev/null; shift; done
	fi
	rm -rf "$W"
}
trap mem_teardown EXIT

step_n=0
step() { # NAME "ARGS": sh /gt.sh ARGS in the guest, to its end
	step_n=$((step_n + 1))
	guest_send "$1" "sh /gt.sh $2; echo GT: step=$step_n"
	guest_wait "$1" "^GT: step=$step_n\$" 900
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$(guest_pid "$1")/status"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "NA" }'; }
declare -A R=()

# --- balloon ------------------------------------------------------------------------------------
# The balloon's size in MiB as the device sees it (the driver's `actual`).
balloon_actual() { # VMM NAME
	case $1 in
	minivmm) "$GT_MINIVMM" control "$2" balloon 2>/dev/null | awk -F': ' '$1 == "actual_mib" { print $2 }' ;;
	qemu) qmp "$2" '{"execute": "query-balloon"}' | jq -r --argjson g "$GUEST_MIB" '$g - .return.actual / 1048576' ;;
	esac
}
# Sets the balloon to MIB and prints the seconds until `actual` got there (NA: not within 600 s).
balloon_to() { # VMM NAME MIB
	local vmm=$1 name=$2 mib=$3 t0 i
	t0=$EPOCHREALTIME
	case $vmm in
	minivmm) "$GT_MINIVMM" control "$name" balloon "$mib" >"$W/req.out" 2>&1 ;;
	qemu) qmp "$name" "{\"execute\": \"balloon\", \"arguments\": {\"value\": $(((GUEST_MIB - mib) * 1048576))}}" >"$W/req.out" 2>&1 ;;
	esac || { echo "# memory: $vmm balloon $mib refused: $(head -c 200 "$W/req.out")" >&2; echo NA; return 1; }
	for i in $(seq 6000); do
		[ "$(balloon_actual "$vmm" "$name")" = "$mib" ] && {
			awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f\n", b - a }'
			return 0
		}
		sleep 0.1
	done
	echo NA
	return 1
}
row_balloon() {
	local vmm name ok=1 rss0 rss1
	for vmm in minivmm qemu; do
		name=bm-bal-$vmm-$$
		BENCH_MV_ARGS=(--free-page-reporting off)
		bench_start "$vmm" "$name" 1 "$GUEST_MIB" "$W/mem.cpio" -- \
			-device virtio-balloon-pci,disable-legacy=on || return 1
		bench_ready "$name" '^GT: ready' || return 1
		step "$name" "hold $TOUCH_MIB" && step "$name" release || { ok=0; bench_stop "$name"; continue; }
		[ "$(guest_value "$name" "hold_$TOUCH_MIB")" = ok ] || echo "# memory: $vmm: the guest could not fill $TOUCH_MIB MiB"
		rss0=$(rss_kib "$name")
		R[$vmm,inflate_s]=$(balloon_to "$vmm" "$name" "$BALLOON_MIB") || ok=0
		rss1=$(rss_kib "$name")
		R[$vmm,returned_mib]=$(((rss0 - rss1) / 1024))
		R[$vmm,deflate_s]=$(balloon_to "$vmm" "$name" 0) || ok=0
		echo "# memory: $vmm VmRSS $((rss0 / 1024)) MiB before inflating, $((rss1 / 1024)) after, $(($(rss_kib "$name") / 1024)) after deflating"
		bench_stop "$name"
	done
	printf '%-26s %10s %10s %7s\n' figure minivmm qemu ratio
	printf '%-26s %10s %10s %7s\n' "inflate ${BALLOON_MIB} MiB (s)" "${R[minivmm,inflate_s]}" "${R[qemu,inflate_s]}" "$(ratio "${R[minivmm,inflate_s]}" "${R[qemu,inflate_s]}")"
	printf '%-26s %10s %10s %7s\n' "deflate to 0 (s)" "${R[minivmm,deflate_s]}" "${R[qemu,deflate_s]}" "$(ratio "${R[minivmm,deflate_s]}" "${R[qemu,deflate_s]}")"
	printf '%-26s %10s %10s %7s\n' "RSS returned (MiB)" "${R[minivmm,returned_mib]}" "${R[qemu,returned_mib]}" "$(ratio "${R[minivmm,returned_mib]}" "${R[qemu,returned_mib]}")"
	echo "# ratio = minivmm / QEMU (times: below 1 minivmm faster; RSS: above 1 minivmm returns more)"
	[ $ok = 1 ]
}

# --- ksm ----------------------------------------------------------------------------------------
row_ksm() {
	local vmm i names merged rss
	[ -w "$KSM/run" ] || { echo "# memory: $KSM/run is not writable here (not root?): no KSM row"; return 1; }
	KSM_SAVED="$(cat $KSM/pages_to_scan) $(cat $KSM/sleep_millisecs) $(cat $KSM/run)"
	echo "$KSM_PAGES" >$KSM/pages_to_scan && echo 20 >$KSM/sleep_millisecs || return 1
	for vmm in minivmm qemu; do
		echo 2 >$KSM/run # unmerge what is left, so each VMM starts from nothing
		echo 1 >$KSM/run || return 1
		names=()
		for i in 1 2 3 4; do
			names+=("bm-ksm$i-$vmm-$$")
			BENCH_MV_ARGS=(--free-page-reporting off --pagefusion on)
			bench_start "$vmm" "${names[-1]}" 1 "$KSM_GUEST_MIB" "$W/mem.cpio" \
				-- -device virtio-balloon-pci,disable-legacy=on || return 1
		done
		for i in "${names[@]}"; do bench_ready "$i" '^GT: ready' || return 1; done
		sleep "$KSM_S"
		merged=0 rss=0
		for i in "${names[@]}"; do
			merged=$((merged + $(cat "/proc/$(guest_pid "$i")/ksm_merging_pages")))
			rss=$((rss + $(rss_kib "$i")))
		done
		R[$vmm,fraction]=$(awk -v m="$merged" -v r="$rss" 'BEGIN { printf "%.1f", (r > 0 ? 100 * m * 4 / r : 0) }')
		R[$vmm,saved_mib]=$(($(cat $KSM/pages_sharing) * 4 / 1024))
		R[$vmm,rss_mib]=$((rss / 1024))
		echo "# memory: $vmm: $merged pages merged of $((rss / 1024)) MiB resident; host KSM pages_shared $(cat $KSM/pages_shared), pages_sharing $(cat $KSM/pages_sharing), full_scans $(cat $KSM/full_scans)"
		bench_stop "${names[@]}"
	done
	printf '%-26s %10s %10s %7s\n' figure minivmm qemu ratio
	printf '%-26s %10s %10s %7s\n' "4 idle: resident (MiB)" "${R[minivmm,rss_mib]}" "${R[qemu,rss_mib]}" "$(ratio "${R[minivmm,rss_mib]}" "${R[qemu,rss_mib]}")"
	printf '%-26s %10s %10s %7s\n' "4 idle: merged (% of RSS)" "${R[minivmm,fraction]}" "${R[qemu,fraction]}" "$(ratio "${R[minivmm,fraction]}" "${R[qemu,fraction]}")"
	printf '%-26s %10s %10s %7s\n' "4 idle: saved (MiB)" "${R[minivmm,saved_mib]}" "${R[qemu,saved_mib]}" "$(ratio "${R[minivmm,saved_mib]}" "${R[qemu,saved_mib]}")"
	printf '%-26s %10s %10s %7s\n' "4 idle: RSS - saved (MiB)" "$((R[minivmm,rss_mib] - R[minivmm,saved_mib]))" \
		"$((R[qemu,rss_mib] - R[qemu,saved_mib]))" "$(ratio $((R[minivmm,rss_mib] - R[minivmm,saved_mib])) $((R[qemu,rss_mib] - R[qemu,saved_mib])))"
}

initramfs_build "$W/mem.cpio" guest-tests/e2e/balloon-init.sh -m "virtio_pci virtio_balloon" || exit 1
echo "# memory: kernel $(gt_kernel), 1 vCPU per guest$([ "${GT_LEVEL:-}" = 1 ] && echo ", inside level 1 (${GT_L1_MEMORY:-4096} MiB)"); rows: $ROWS"
rc=0
for r in $ROWS; do
	echo "# memory: row $r"
	"row_$r" || { echo "# memory: row $r did not complete"; rc=1; }
done
exit $rc
