#!/bin/bash
# Diagnosis of the firmware-boot freeze (run inside level 1 by level1_run): builds the disk of
# test_firmware_reboot and boots it once per case of GT_DIAG_CASES ("bus:format:cpus:ENV=V,...:VMM:SECONDS"),
# each for at most GT_DIAG_LIMIT s; the level-2 console, minivmm's stderr and KVM's exit counters
# go straight into $GT_SHARE so that they survive a frozen level 1.
cd "$(dirname "$0")/../.."
. guest-tests/lib/guest.sh
. guest-tests/lib/bootdisk.sh
W=$(mktemp -d /tmp/diag.XXXXXX)
real_vmm=$(realpath ./minivmm)
initramfs_build "$W/init.cpio" guest-tests/e2e/fwboot-init.sh -m "virtio_pci virtio_blk" -z || exit 1
bootdisk_build "$W/os.raw" "$(gt_kernel)" "$W/init.cpio" "console=ttyS0 quiet panic=-1 gt_fwboot" || exit 1
mount -t debugfs none /sys/kernel/debug 2>/dev/null
limit=${GT_DIAG_LIMIT:-200}
for c in ${GT_DIAG_CASES:-virtio:raw:2: sata:vmdk:2: virtio:vmdk:2:MINIVMM_IOEVENTFD=off}; do
	IFS=: read -r bus fmt cpus envs vmm climit <<<"$c"
	vmm=${vmm:-$real_vmm}
	climit=${climit:-$limit}
	tag=$bus-$fmt-$cpus${envs:+-$(echo "$envs" | tr '=,' '__')}${vmm:+-$(basename "$vmm")}
	if [ "$fmt" = raw ]; then cp "$W/os.raw" "$W/os.img"; else "$real_vmm" img convert -O "$fmt" "$W/os.raw" "$W/os.img" || exit 1; fi
	printf GTMARK00 >"$W/marker.raw"
	truncate -s 1M "$W/marker.raw"
	echo "diag: $tag start at uptime $(cut -d' ' -f1 /proc/uptime)"
	mkdir -p /tmp/xdg
	# shellcheck disable=SC2046
	env $(echo "$envs" | tr ',' ' ') XDG_DATA_HOME=/tmp/xdg "$vmm" run --name "diag$$" --cpus "$cpus" --memory 512 \
		--console stdio --disk "$W/os.img,format=$fmt,bus=$bus" --disk "$W/marker.raw,format=raw,bus=$bus" \
		--reboot restart </dev/null >"$GT_SHARE/$tag.console" 2>"$GT_SHARE/$tag.stderr" &
	pid=$!
	i=0
	start=$SECONDS
	while kill -0 $pid 2>/dev/null && [ $((SECONDS - start)) -lt "$climit" ]; do
		sleep 1
		i=$((SECONDS - start))
		{
			printf 't=%s up=%s load=%s' $i "$(cut -d' ' -f1 /proc/uptime)" "$(cut -d' ' -f1 /proc/loadavg)"
			for f in exits io_exits mmio_exits halt_exits irq_exits irq_window_exits; do
				printf ' %s=%s' $f "$(cat /sys/kernel/debug/kvm/$f 2>/dev/null)"
			done
			echo
		} >>"$GT_SHARE/$tag.trace"
		# A remote hand: a script the host drops into the share runs once here (ftrace, perf...).
		if [ -f "$GT_SHARE/hook.sh" ]; then
			mv "$GT_SHARE/hook.sh" "$GT_SHARE/hook.run"
			VMM_PID=$pid sh "$GT_SHARE/hook.run" >"$GT_SHARE/hook.out" 2>&1 &
		fi
	done
	kill -TERM $pid 2>/dev/null && echo "diag: $tag stopped after $climit s"
	wait $pid
	echo "diag: $tag exit $? after $i s (uptime $(cut -d' ' -f1 /proc/uptime)), marker $(head -c 8 "$W/marker.raw")," \
		"GT lines: $(tr -d '\r' <"$GT_SHARE/$tag.console" | grep -a -c '^GT:')"
done
