#!/bin/bash
# LSI Logic Fusion-MPT end to end: a Linux guest with mptspi (bus=scsi, 53C1030) and mptsas
# (bus=sas, SAS1068) finds its drives: on each HBA a 4 MiB pattern written and read back with
# O_DIRECT lands in a qcow2, a VDI and a VMDK image (compared on the host after qemu-img convert,
# each image qemu-img check clean); a read-only SCSI disk reads and refuses writes (image
# unchanged); mkfs.ext4 + e2fsck on a qcow2 SCSI disk whose space fstrim gives back (qemu-img map);
# a SCSI CD-ROM (sr) reads its medium.
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
gt_setup
vm=gt-lsi-$$
W=$GT_WORK

lsi_guest_start() {
	local name=$1 initrd=$2 fd
	shift 2
	mkfifo "$W/$name.in" || return 1
	exec {fd}<>"$W/$name.in"
	"$GT_MINIVMM" run --name "$name" --cpus 2 --memory 512 --kernel "$(gt_kernel)" \
		--initrd "$initrd" --append "console=ttyS0 quiet panic=-1" --console stdio "$@" \
		<"$W/$name.in" >"$W/$name.console" 2>"$W/$name.stderr" &
	_gt_pid["$name"]=$!
	_gt_fd["$name"]=$fd
	_gt_last=$name
}

head -c $((4 << 20)) /dev/urandom >"$W/pattern"
cp "$W/pattern" "$W/cd.iso"
declare -A size=([spi_qcow2]=64 [spi_vdi]=65 [spi_vmdk]=66 [sas_qcow2]=68 [sas_vdi]=69 [sas_vmdk]=70)
for n in "${!size[@]}"; do
	fmt=${n#*_}
	qemu-img create -q -f "$fmt" "$W/$n.$fmt" "${size[$n]}M"
done
head -c $((67 << 20)) /dev/urandom >"$W/ro.raw"
cp "$W/ro.raw" "$W/ro.orig"
qemu-img create -q -f qcow2 "$W/ext4.qcow2" 256M

files=(-f "$W/pattern:/pattern")
for b in /sbin/mke2fs /sbin/e2fsck; do
	files+=(-f "$b:/usr/local/sbin/$(basename "$b")")
	for lib in $(ldd "$b" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
		files+=(-f "$(readlink -f "$lib"):$lib")
	done
done
initramfs_build "$W/init.cpio" guest-tests/e2e/lsi-init.sh \
	-m "mptspi mptsas sd_mod sr_mod ext4 crc32c_generic" "${files[@]}" || {
	gt_fail "lsi: build the initramfs"
	exit 1
}

lsi_guest_start "$vm" "$W/init.cpio" \
	--disk "$W/spi_qcow2.qcow2,bus=scsi,format=qcow2" --disk "$W/spi_vdi.vdi,bus=scsi,format=vdi" \
	--disk "$W/spi_vmdk.vmdk,bus=scsi,format=vmdk" --disk "$W/ro.raw,readonly,bus=scsi,format=raw" \
	--disk "$W/ext4.qcow2,bus=scsi,format=qcow2" --cdrom "$W/cd.iso,bus=scsi" \
	--disk "$W/sas_qcow2.qcow2,bus=sas,format=qcow2" --disk "$W/sas_vdi.vdi,bus=sas,format=vdi" \
	--disk "$W/sas_vmdk.vmdk,bus=sas,format=vmdk"
if ! guest_wait "$vm" '^GT: done'; then
	gt_fail "lsi: guest ran its checks" "no 'GT: done' on the console: $(tail -3 "$W/$vm.console" "$W/$vm.stderr" | tr '\n' ' ')"
	exit 1
fi
guest_wait_exit "$vm" 300
if [ "$GT_RC" = 0 ]; then gt_pass "lsi: guest powered off (exit 0)"; else gt_fail "lsi: guest powered off" "exit $GT_RC"; fi

v() { guest_value "$vm" "$1"; }
check() { # NAME, DETAIL, CONDITION-COMMAND...
	local name=$1 detail=$2
	shift 2
	if "$@"; then gt_pass "lsi: $name"; else gt_fail "lsi: $name" "$detail"; fi
}
check "eight disks and a CD-ROM probed" "disks=$(v disks) cdrom=$(v cdrom)" \
	test "$(v disks)" = 8 -a "$(v cdrom)" = present
if [ "$(v disks)" != 8 ]; then # what the drivers said, for the post-mortem
	tr -d '\r' <"$W/$vm.console" | grep -a '^GT-dmesg: ' | sed 's/^/#   /'
	tr -d '\r' <"$W/$vm.console" | grep -aiE 'mpt|ioc[0-9]|fusion|BUG|Oops|RIP' |
		grep -v GT-dmesg | head -40 | sed 's/^/#   console: /'
fi

head -c $((1 << 20)) /dev/zero >"$W/lead"
cat "$W/lead" "$W/pattern" >"$W/expect"
for n in spi_qcow2 spi_vdi spi_vmdk sas_qcow2 sas_vdi sas_vmdk; do
	fmt=${n#*_}
	drv=mpt${n%%_*}
	qemu-img convert -f "$fmt" -O raw "$W/$n.$fmt" "$W/$n.out.raw"
	check "$drv, $fmt: O_DIRECT pattern out and back, lands in the image (qemu-img convert)" \
		"guest rw=$(v rw_$n) driver=$(v drv_$n)" test "$(v rw_$n)" = ok -a "$(v drv_$n)" = "$drv" -a \
		"$(head -c 5M "$W/$n.out.raw" | md5sum)" = "$(md5sum <"$W/expect")"
	check "$drv, $fmt: image is qemu-img check clean" "$(qemu-img check -f "$fmt" "$W/$n.$fmt" 2>&1 | tail -1)" \
		qemu-img check -q -f "$fmt" "$W/$n.$fmt"
done
check "read-only SCSI disk: marked ro, reads, refuses writes, image unchanged" \
	"ro=$(v ro_flag) read=$(v ro_read) write=$(v ro_write)" \
	bash -c "[ '$(v ro_flag)' = 1 ] && [ '$(v ro_read)' = ok ] && [ '$(v ro_write)' = refused ] && cmp -s '$W/ro.raw' '$W/ro.orig'"
alloc=$(qemu-img map -f qcow2 --output=json "$W/ext4.qcow2" | python3 -c '
import json, sys
print(sum(e["length"] for e in json.load(sys.stdin) if e.get("data")))')
check "mkfs.ext4, 48 MiB written and removed, fstrim, e2fsck (guest and host)" "guest ext4=$(v ext4)" \
	bash -c "[ '$(v ext4)' = ok ] && qemu-img convert -f qcow2 -O raw '$W/ext4.qcow2' '$W/ext4.raw' && e2fsck -f -n '$W/ext4.raw' >/dev/null 2>&1"
check "fstrim gave the space back to the qcow2 image (qemu-img map: $((alloc >> 20)) MiB allocated)" \
	"allocated=$alloc discard_max=$(v discard_max)" test "$alloc" -lt $((32 << 20))
check "ext4 qcow2 is qemu-img check clean" "$(qemu-img check "$W/ext4.qcow2" 2>&1 | tail -1)" \
	qemu-img check -q "$W/ext4.qcow2"
check "write cache follows the cache mode (writeback)" "cache_type=$(v wce)" test "$(v wce)" = "write_back"
check "SCSI CD-ROM on mptspi reads its medium" "read=$(v cdrom_read) driver=$(v cdrom_driver)" \
	test "$(v cdrom_read)" = ok -a "$(v cdrom_driver)" = mptspi
check "interrupts delivered" "mpt_irqs=$(v mpt_irqs)" test "$(v mpt_irqs)" -ge 2

# MSI: mptbase turns it on only when asked (mpt_msi_enable_spi/_sas); one disk on each HBA.
kver=$(gt_kernel_version "$(gt_kernel)")
head -c $((1 << 20)) /dev/urandom >"$W/msi.pattern"
msi_files=(-f "$W/msi.pattern:/pattern")
for m in mptbase mptscsih mptspi mptsas; do
	msi_files+=(-f "/lib/modules/$kver/kernel/drivers/message/fusion/$m.ko:/lib/mpt/$m.ko")
done
truncate -s 32M "$W/msi_spi.raw" "$W/msi_sas.raw"
vm=gt-lsi-msi-$$
if initramfs_build "$W/msi.cpio" guest-tests/e2e/lsi-msi-init.sh \
	-m "sd_mod scsi_transport_spi scsi_transport_sas" "${msi_files[@]}"; then
	lsi_guest_start "$vm" "$W/msi.cpio" --disk "$W/msi_spi.raw,bus=scsi,format=raw" \
		--disk "$W/msi_sas.raw,bus=sas,format=raw"
	guest_wait "$vm" '^GT: done' || gt_fail "lsi msi: guest ran its checks" \
		"no 'GT: done': $(tail -3 "$W/$vm.console" "$W/$vm.stderr" | tr '\n' ' ')"
	guest_wait_exit "$vm" 300
else
	gt_fail "lsi msi: build the initramfs"
fi
tr -d '\r' <"$W/$vm.console" 2>/dev/null | grep -a '^GT-irq: ' | sed 's/^/#   /'
check "MSI on (mpt_msi_enable_spi/_sas=1): both IOCs on PCI-MSI in /proc/interrupts, interrupts taken" \
	"ioc lines=$(v ioc_lines) on MSI=$(v ioc_msi) MSI interrupts=$(v msi_count)" \
	test "$(v ioc_lines)" = 2 -a "$(v ioc_msi)" = 2 -a "$(v msi_count)" -ge 2
for drv in mptspi mptsas; do
	img=$W/msi_${drv#mpt}.raw
	check "MSI on, $drv: O_DIRECT pattern out and back, lands in the raw image" \
		"guest rw=$(v rw_$drv)" test "$(v rw_$drv)" = ok -a \
		"$(dd if="$img" bs=1M skip=1 count=1 2>/dev/null | md5sum)" = "$(md5sum <"$W/msi.pattern")"
done
