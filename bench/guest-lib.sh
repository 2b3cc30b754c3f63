# Starting, awaiting and stopping the benchmark guests of bench/cpu.sh and bench/memory.sh: the same
# kernel under minivmm and under QEMU (-accel kvm -M q35 -cpu host), bookkept like guest_start
# (guest-tests/lib/guest.sh), QEMU with a QMP monitor (guest-tests/lib/qmp.sh).  Sourced after both.

# bench_start VMM NAME CPUS MIB INITRD [-- QEMU ARGS...]: minivmm gets $BENCH_MV_ARGS added, QEMU
# -smp $BENCH_QEMU_SMP (default CPUS) and the arguments after --.
bench_start() {
	local vmm=$1 name=$2 cpus=$3 mib=$4 initrd=$5 append="console=ttyS0 quiet panic=-1"
	shift 5
	[ "${1-}" = -- ] && shift
	case $vmm in
	minivmm)
		_gt_spawn "$name" "$GT_MINIVMM" run --name "$name" --cpus "$cpus" --memory "$mib" \
			--kernel "$(gt_kernel)" --initrd "$initrd" --append "$append" --console stdio \
			${BENCH_MV_ARGS[@]+"${BENCH_MV_ARGS[@]}"}
		;;
	qemu)
		qmp_prepare "$name" || return 1
		_gt_spawn "$name" qemu-system-x86_64 -accel kvm -M q35 -cpu host \
			-smp "${BENCH_QEMU_SMP:-$cpus}" -m "$mib" -nodefaults -display none -no-reboot \
			-serial stdio -kernel "$(gt_kernel)" -initrd "$initrd" -append "$append" "$@" \
			"${QMP_ARGS[@]}"
		;;
	esac
}

# bench_ready NAME PATTERN: PATTERN on NAME's console (within 900 s), then its QMP connected; else
# the end of its console and stderr as comment lines, and 1.
bench_ready() {
	guest_wait "$1" "$2" 900 && { [ "${_qmp_in[$1]+set}" != set ] || qmp_connect "$1"; } || {
		echo "# $1 did not come up; its console and stderr:"
		tr -d '\r' <"$GT_WORK/$1.console" | tail -8 | sed 's/^/#   /'
		tail -3 "$GT_WORK/$1.stderr" | sed 's/^/#   stderr: /'
		return 1
	}
}

bench_stop() { # NAME...: power off in the guest, then wait for each VMM to end
	local n
	for n; do guest_send "$n" 'poweroff -f'; done
	for n; do guest_wait_exit "$n" 120; done
}

bench_kill_all() { # at exit: whatever VMM is still running
	local n
	for n in "${!_gt_pid[@]}"; do kill -KILL "${_gt_pid[$n]}" 2>/dev/null; done
}
