# shellcheck shell=bash
# Builds BIOS-bootable disk and CD images without loop devices or root (sourced, bash).

# The (ISO|SYS)LINUX configuration both images use: boot /vmlinuz with /initrd.img and APPEND at
# once, the loader's own messages on the serial port too.
syslinux_cfg() {
	cat <<CFG
SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND $1
CFG
}

#   bootdisk_build OUT KERNEL INITRD APPEND [MIB]
#       OUT: a raw image of MIB MiB (default 48) with an MBR partition table (sfdisk), one active
#       FAT16 partition from 1 MiB (mkfs.fat on a separate file, filled with mtools), syslinux
#       installed in it (`syslinux --install`, the mtools installer) and syslinux's MBR code in
#       sector 0; syslinux.cfg boots KERNEL with INITRD and APPEND at once, its own messages on
#       the serial port too.
bootdisk_build() {
	local out=$1 kernel=$2 initrd=$3 append=$4 mib=${5:-48} part cfg
	local mbr=/usr/lib/syslinux/mbr/mbr.bin
	[ -r "$mbr" ] || { echo "bootdisk_build: $mbr missing (syslinux-common)" >&2; return 1; }
	part=$out.part
	cfg=$out.cfg
	rm -f "$out" "$part"
	truncate -s "${mib}M" "$out" || return 1
	printf 'label: dos\nstart=2048, type=6, bootable\n' | sfdisk -q "$out" >/dev/null || return 1
	# The partition as its own file: (MIB - 1) MiB, in KiB for mkfs.fat -C.
	mkfs.fat -F 16 -n GTBOOT -C "$part" $(((mib - 1) * 1024)) >/dev/null || return 1
	syslinux_cfg "$append" >"$cfg" || return 1
	mcopy -i "$part" "$kernel" ::/vmlinuz &&
		mcopy -i "$part" "$initrd" ::/initrd.img &&
		mcopy -i "$part" "$cfg" ::/syslinux.cfg || return 1
	syslinux --install "$part" || return 1
	dd if="$part" of="$out" bs=1M seek=1 conv=notrunc status=none || return 1
	dd if="$mbr" of="$out" bs=440 count=1 conv=notrunc status=none || return 1
	rm -f "$part" "$cfg"
}

#   bootiso_build OUT KERNEL INITRD APPEND
#       OUT: an El Torito ISO (xorriso, no emulation) booting KERNEL with INITRD and APPEND
#       through ISOLINUX.
bootiso_build() {
	local out=$1 kernel=$2 initrd=$3 append=$4 tree
	local isolinux=/usr/lib/ISOLINUX/isolinux.bin ldlinux=/usr/lib/syslinux/modules/bios/ldlinux.c32
	[ -r "$isolinux" ] && [ -r "$ldlinux" ] ||
		{ echo "bootiso_build: $isolinux or $ldlinux missing (isolinux, syslinux-common)" >&2; return 1; }
	tree=$out.tree
	rm -rf "$tree"
	mkdir -p "$tree/isolinux" || return 1
	cp "$isolinux" "$ldlinux" "$tree/isolinux/" && cp "$kernel" "$tree/vmlinuz" &&
		cp "$initrd" "$tree/initrd.img" || return 1
	syslinux_cfg "$append" >"$tree/isolinux/isolinux.cfg" || return 1
	xorriso -as mkisofs -quiet -V GTBOOTCD -o "$out" -b isolinux/isolinux.bin -c isolinux/boot.cat \
		-no-emul-boot -boot-load-size 4 -boot-info-table "$tree" 2>/dev/null || return 1
	rm -rf "$tree"
}

#   efidisk_build OUT KERNEL INITRD APPEND [MIB]
#       OUT: a raw image of MIB MiB (default 64) with a GPT (sfdisk) holding one EFI system
#       partition from 1 MiB (FAT, mkfs.fat on a separate file, filled with mtools) whose
#       \EFI\BOOT\BOOTX64.EFI is a unified kernel image: systemd's EFI stub (systemd-boot-efi)
#       with KERNEL, INITRD and APPEND as its sections (objcopy), so UEFI firmware boots it from
#       the removable-media path with no boot entry and no shell.
efidisk_build() {
	local out=$1 kernel=$2 initrd=$3 append=$4 mib=${5:-64} part uki osrel cmdline
	local stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
	[ -r "$stub" ] || { echo "efidisk_build: $stub missing (systemd-boot-efi)" >&2; return 1; }
	part=$out.part
	uki=$out.efi
	osrel=$out.osrel
	cmdline=$out.cmdline
	rm -f "$out" "$part" "$uki"
	printf 'ID=gt\nNAME="minivmm guest test"\n' >"$osrel"
	printf '%s' "$append" >"$cmdline"
	# The sections' addresses as systemd 252's documentation places them: apart, in this order.
	objcopy --add-section .osrel="$osrel" --change-section-vma .osrel=0x20000 \
		--add-section .cmdline="$cmdline" --change-section-vma .cmdline=0x30000 \
		--add-section .linux="$kernel" --change-section-vma .linux=0x2000000 \
		--add-section .initrd="$initrd" --change-section-vma .initrd=0x3000000 \
		"$stub" "$uki" || return 1
	truncate -s "${mib}M" "$out" || return 1
	printf 'label: gpt\nstart=2048, size=%d, type=uefi\n' $(((mib - 2) * 2048)) |
		sfdisk -q "$out" >/dev/null || return 1
	mkfs.fat -F 16 -n GTESP -C "$part" $(((mib - 2) * 1024)) >/dev/null || return 1
	mmd -i "$part" ::/EFI ::/EFI/BOOT &&
		mcopy -i "$part" "$uki" ::/EFI/BOOT/BOOTX64.EFI || return 1
	dd if="$part" of="$out" bs=1M seek=1 conv=notrunc status=none || return 1
	rm -f "$part" "$uki" "$osrel" "$cmdline"
}
