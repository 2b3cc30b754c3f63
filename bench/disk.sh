#!/bin/bash
# Disk I/O inside the guest, minivmm against QEMU, for AHCI, PIIX IDE, virtio-blk, NVMe and LSI.
#
# The same kernel and initramfs boot under minivmm (--disk IMG,format=raw,cache=none,
# bus=sata|ide|virtio) and under QEMU -accel kvm (-M q35 and its ICH9 AHCI; -M pc and its PIIX IDE;
# -drive ...,cache=none,format=raw -device ide-hd; -M q35 -device virtio-blk-pci, modern only;
# -M q35 -device nvme for bus=nvme; -M q35 -device mptsas1068 with a scsi-hd for bus=sas, the LSI
# SAS1068; bus=scsi, the LSI 53C1030, stands alone: QEMU has no such device), one
# after the other on the same raw image on the same storage.  For virtio-blk the guest also times
# bench/kick.c: one doorbell write (virtqueue notification), under QEMU, under minivmm with its
# ioeventfds and under minivmm with them off (MINIVMM_IOEVENTFD=off: every kick returns to user
# space), which is the kick exit cost with and without ioeventfd.  In the guest, bench/diskio.c (O_DIRECT, timed with clock_gettime) does a sequential
# write then read in 1 MiB blocks and 4 KiB random writes then reads at aligned offsets from a
# fixed seed.  Prints one table: each figure for both VMMs and the ratio minivmm/QEMU (above 1:
# minivmm faster).
#
# No usable /dev/kvm here: the whole run happens inside one level-1 VM (QEMU TCG, nested KVM), where
# tmpfs has no O_DIRECT, so the image sits on an ext4 file system on a loop device made there.
#   BENCH_DISK_SEQ_MB (64)    sequential size in MiB; the image is this plus 16 MiB
#   BENCH_DISK_RAND_OPS (1000) 4 KiB random operations per direction
#   BENCH_DISK_DIR (/var/tmp) where the image goes on a host with KVM (must support O_DIRECT)
#   BENCH_DISK_BUSES ("sata ide virtio") the buses to measure (also: nvme sas scsi)
#   BENCH_DISK_ROUNDS (1)     boots per VMM and bus, the VMMs taking turns; the table shows each
#                             figure's median and a "# round" line every round's
cd "$(dirname "$0")/.." || exit 1
. guest-tests/lib/level1.sh
. guest-tests/lib/guest.sh

SEQ_MB=${BENCH_DISK_SEQ_MB:-64}
RAND_OPS=${BENCH_DISK_RAND_OPS:-1000}
ROUNDS=${BENCH_DISK_ROUNDS:-1}
case "$SEQ_MB$RAND_OPS$ROUNDS" in
*[!0-9]* | "") echo "bench/disk.sh: BENCH_DISK_SEQ_MB, BENCH_DISK_RAND_OPS and BENCH_DISK_ROUNDS must be numbers" >&2; exit 2 ;;
esac
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 20 ] || { echo "bench/disk.sh: BENCH_DISK_ROUNDS must be 1..20" >&2; exit 2; }
[ "$SEQ_MB" -ge 1 ] && [ "$SEQ_MB" -le 4096 ] && [ "$RAND_OPS" -ge 1 ] || {
	echo "bench/disk.sh: BENCH_DISK_SEQ_MB must be 1..4096 and BENCH_DISK_RAND_OPS at least 1" >&2
	exit 2
}
BUSES=${BENCH_DISK_BUSES:-sata ide virtio}
for b in $BUSES; do
	case $b in sata | ide | virtio | nvme | sas | scsi) ;; *) echo "bench/disk.sh: BENCH_DISK_BUSES: unknown bus $b" >&2; exit 2 ;; esac
done
IMG_MB=$((SEQ_MB + 16))
MEM=256

if [ "${GT_LEVEL:-}" != 1 ]; then
	mkdir -p build/bench
	gcc -static -O2 -Wall -Wextra -Werror -o build/bench/diskio bench/diskio.c || exit 1
	gcc -static -O2 -Wall -Wextra -Werror -o build/bench/kick bench/kick.c || exit 1
	[ -x ./minivmm ] || { echo "bench/disk.sh: ./minivmm is not built (run make)" >&2; exit 1; }
	if ! gt_host_kvm_usable; then
		echo "# disk: no usable /dev/kvm here: measuring inside level 1 (QEMU TCG, nested KVM)"
		level1_run ./bench/disk.sh
		rc=$?
		level1_cleanup
		exit $rc
	fi
fi
[ -x build/bench/diskio ] && [ -x build/bench/kick ] || { echo "bench/disk.sh: build/bench/diskio or kick is missing" >&2; exit 1; }

gt_setup
# minivmm keeps each VM's state in a directory of its own: a fresh one here (level 1's home is
# read-only).
export XDG_DATA_HOME=$GT_WORK/state
# Undo the loop mount too (gt_teardown kills the guests and removes $GT_WORK).
MNT="" LOOP=""
disk_teardown() {
	gt_teardown_guests
	[ -n "$MNT" ] && umount "$MNT" 2>/dev/null
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	[ -n "${DIRS_TO_REMOVE:-}" ] && rm -rf "$DIRS_TO_REMOVE"
	[ -n "${GT_WORK:-}" ] && rm -rf "$GT_WORK"
}
gt_teardown_guests() {
	local n
	for n in "${!_gt_pid[@]}"; do
		kill -KILL "${_gt_pid[$n]}" 2>/dev/null
	done
}
trap disk_teardown EXIT

# A directory whose file system takes O_DIRECT (cache=none needs it).
disk_storage() {
	if [ "${GT_LEVEL:-}" = 1 ]; then
		# Level 1 is root on tmpfs: ext4 on a loop device over a tmpfs file.  The kernel's own
		# request_module cannot see the chroot's modules, so crc32c is loaded by name.
		PATH=$PATH:/sbin:/usr/sbin
		modprobe loop && modprobe crc32c_generic && modprobe ext4 || return 1
		truncate -s $((IMG_MB + 64))M "$GT_WORK/fs.img" &&
			mkfs.ext4 -q -F "$GT_WORK/fs.img" &&
			LOOP=$(losetup -f --show "$GT_WORK/fs.img") &&
			MNT=$GT_WORK/mnt && mkdir -p "$MNT" && mount -t ext4 "$LOOP" "$MNT" || return 1
		DIR=$MNT
	else
		DIR=$(mktemp -d "${BENCH_DISK_DIR:-/var/tmp}/minivmm-disk.XXXXXX") || return 1
		MNT="" # nothing to unmount; the directory goes with the image below
		DIRS_TO_REMOVE=$DIR
	fi
	dd if=/dev/zero of="$DIR/probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null || {
		echo "bench/disk.sh: $DIR: the file system has no O_DIRECT (set BENCH_DISK_DIR)" >&2
		return 1
	}
	rm -f "$DIR/probe"
}

# Starts VMM (minivmm|minivmm-noioeventfd|qemu) with the image on BUS (sata|ide|virtio), bookkept
# like guest_start.
disk_guest_start() { # name vmm bus
	local name=$1 vmm=$2 bus=$3 fd kernel append ioeventfd=on
	kernel=$(gt_kernel)
	# iomem=relaxed: bench/kick.c maps the virtio BARs the driver has claimed.
	append="console=ttyS0 quiet panic=-1 iomem=relaxed bench.seq_mb=$SEQ_MB bench.rand_ops=$RAND_OPS bench.region_mb=$SEQ_MB"
	mkfifo "$GT_WORK/$name.in" || return 1
	exec {fd}<>"$GT_WORK/$name.in"
	[ "$vmm" = minivmm-noioeventfd ] && ioeventfd=off
	case $vmm in
	minivmm*)
		MINIVMM_IOEVENTFD=$ioeventfd "$GT_MINIVMM" run --name "$name" --cpus 1 --memory "$MEM" --kernel "$kernel" \
			--initrd "$GT_WORK/disk.cpio" --append "$append" --console stdio \
			--disk "$IMG,format=raw,cache=none,bus=$bus" \
			<"$GT_WORK/$name.in" >"$GT_WORK/$name.console" 2>"$GT_WORK/$name.stderr" &
		;;
	qemu)
		local machine=q35 dev=ide-hd,drive=d,bus=ide.0 extra=()
		[ "$bus" = ide ] && machine=pc
		[ "$bus" = virtio ] && dev=virtio-blk-pci,drive=d,disable-legacy=on,num-queues=1
		[ "$bus" = nvme ] && dev=nvme,drive=d,serial=bench
		[ "$bus" = sas ] && dev=scsi-hd,drive=d,bus=hba.0 extra=(-device mptsas1068,id=hba)
		# bus=ide.0: q35's built-in ICH9 AHCI port 0, or pc's PIIX primary channel.
		qemu-system-x86_64 -accel kvm -M "$machine" -smp 1 -m "$MEM" -nodefaults -display none \
			-no-reboot -serial stdio -kernel "$kernel" -initrd "$GT_WORK/disk.cpio" \
			-append "$append" -drive "file=$IMG,if=none,id=d,cache=none,format=raw" \
			${extra[@]+"${extra[@]}"} -device "$dev" \
			<"$GT_WORK/$name.in" >"$GT_WORK/$name.console" 2>"$GT_WORK/$name.stderr" &
		;;
	esac
	_gt_pid[$name]=$!
	_gt_fd[$name]=$fd
	_gt_last=$name
}

declare -A R=()
# One guest: fills R[vmm,bus,figure]; 1 (with the console's end) if it did not finish.
disk_measure() { # vmm bus
	local vmm=$1 bus=$2 name=disk-$1-$2-$$ mode line ok=0 t0=$SECONDS
	disk_guest_start "$name" "$vmm" "$bus" || return 1
	guest_wait "$name" '^DISK: done' "${BENCH_DISK_WAIT:-900}" && ok=1
	guest_wait_exit "$name" 60
	echo "# disk: $vmm bus=$bus: boot and measurements took $((SECONDS - t0)) s"
	for mode in seqwrite seqread randwrite randread; do
		line=$(grep -a "^DISK: $mode " "$GT_WORK/$name.console" | tail -1)
		R[$vmm,$bus,${mode}_MBps]=$(echo "$line" | sed -n 's/.* MBps=\([0-9.]*\).*/\1/p')
		R[$vmm,$bus,${mode}_IOPS]=$(echo "$line" | sed -n 's/.* IOPS=\([0-9]*\).*/\1/p')
		[ -n "${R[$vmm,$bus,${mode}_MBps]}" ] || ok=0
	done
	if [ "$bus" = virtio ]; then
		R[$vmm,$bus,kick_ns]=$(grep -a '^KICK: ' "$GT_WORK/$name.console" | tail -1 |
			sed -n 's/.* ns_per_kick=\([0-9.]*\).*/\1/p')
		[ -n "${R[$vmm,$bus,kick_ns]}" ] || ok=0
	fi
	if [ $ok = 0 ]; then
		echo "# disk: $vmm bus=$bus did not finish; its console and stderr:"
		tail -15 "$GT_WORK/$name.console" | sed 's/^/#   /'
		tail -5 "$GT_WORK/$name.stderr" | sed 's/^/#   stderr: /'
		return 1
	fi
}

disk_storage || exit 1
IMG=$DIR/disk.raw
# Fully written up front, so neither VMM pays for the host file system allocating blocks.
dd if=/dev/zero of="$IMG" bs=1M count="$IMG_MB" conv=fsync status=none || exit 1
initramfs_build "$GT_WORK/disk.cpio" bench/disk-init -m "ahci ata_piix sd_mod virtio_pci virtio_blk nvme mptspi mptsas" \
	-f build/bench/diskio:/diskio -f build/bench/kick:/kick || exit 1

echo "# disk: kernel $(gt_kernel), 1 vCPU, $MEM MiB, raw image of $IMG_MB MiB, cache=none;" \
	"$SEQ_MB MiB sequential, $RAND_OPS x 4 KiB random$([ "${GT_LEVEL:-}" = 1 ] && echo ', inside level 1')"
echo "# disk: absolute figures from the nested stack are slow and noisy: compare within one run only"
declare -A ALL=() # every round's figures, space-separated, for the medians
# One round of VMM on BUS: measured, then added to ALL (R keeps only the latest round).
disk_round() { # vmm bus
	local k
	disk_measure "$1" "$2" || return 1
	for k in "${!R[@]}"; do
		case $k in "$1,$2,"*) ALL[$k]="${ALL[$k]:-} ${R[$k]}" ;; esac
	done
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
rc=0
for round in $(seq 1 "$ROUNDS"); do
	for bus in $BUSES; do
		disk_round minivmm $bus || rc=1
		[ $bus = scsi ] || disk_round qemu $bus || rc=1
		[ $bus = virtio ] && { disk_round minivmm-noioeventfd virtio || rc=1; }
	done
done
for k in $(printf '%s\n' "${!ALL[@]}" | sort); do
	R[$k]=$(echo "${ALL[$k]}" | median)
	[ "$ROUNDS" -eq 1 ] || echo "# round by round: $k:${ALL[$k]}"
done
printf '%-6s %-16s %10s %10s %7s\n' bus figure minivmm qemu ratio
for bus in $BUSES; do
	figures="seqwrite_MBps seqread_MBps randwrite_IOPS randread_IOPS"
	[ $bus = virtio ] && figures="$figures kick_ns"
	for f in $figures; do
		a=${R[minivmm,$bus,$f]:-NA} b=${R[qemu,$bus,$f]:-NA}
		[ $f = kick_ns ] && { t=$a; a=$b; b=$t; } # a time: lower is better
		r=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "NA" }')
		[ $f = kick_ns ] && { t=$a; a=$b; b=$t; }
		printf '%-6s %-16s %10s %10s %7s\n' "$bus" "$f" "$a" "$b" "$r"
	done
done
echo "# ratio = minivmm / QEMU (higher: minivmm faster; for kick_ns, QEMU's time / minivmm's)"
echo "# virtio kick without ioeventfd (MINIVMM_IOEVENTFD=off): ${R[minivmm-noioeventfd,virtio,kick_ns]:-NA} ns," \
	"with: ${R[minivmm,virtio,kick_ns]:-NA} ns; randread ${R[minivmm-noioeventfd,virtio,randread_IOPS]:-NA}" \
	"against ${R[minivmm,virtio,randread_IOPS]:-NA} IOPS"
exit $rc
