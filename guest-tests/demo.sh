#!/bin/bash
# `make demo`: boots the stock Debian kernel with a busybox shell under ./minivmm on this terminal.
# Without a usable /dev/kvm it first boots level 1 (QEMU TCG with nested KVM) and runs the guest
# inside.  With no terminal (CI) it runs a scripted session instead: a few commands, then power-off.
cd "$(dirname "$0")/.." || exit 1
. guest-tests/lib/level1.sh
. guest-tests/lib/guest.sh

if [ -z "${GT_DEMO_SCRIPTED:-}" ]; then
	if [ -t 0 ] && [ -t 1 ]; then GT_DEMO_SCRIPTED=0; else GT_DEMO_SCRIPTED=1; fi
	export GT_DEMO_SCRIPTED
fi
[ -x ./minivmm ] || { echo "demo: ./minivmm is not built (run make)" >&2; exit 1; }

if [ "${GT_LEVEL:-}" != 1 ] && ! gt_host_kvm_usable; then
	echo "demo: no usable /dev/kvm here, so the guest runs inside level 1 (QEMU TCG with nested KVM): slow but real."
	if [ "$GT_DEMO_SCRIPTED" = 0 ]; then
		level1_run -i ./guest-tests/demo.sh
	else
		level1_run ./guest-tests/demo.sh
	fi
	rc=$?
	level1_cleanup
	exit $rc
fi

gt_setup
initramfs_build "$GT_WORK/demo.cpio" guest-tests/demo-init.sh -m "button evdev" || exit 1
if [ "$GT_DEMO_SCRIPTED" = 0 ]; then
	echo "demo: booting; the console is yours (Ctrl-C goes to the guest; 'poweroff -f' ends)."
	"$GT_MINIVMM" run --name "demo-$$" --cpus 2 --memory 512 --kernel "$(gt_kernel)" \
		--initrd "$GT_WORK/demo.cpio" --append "console=ttyS0 quiet panic=-1" --console stdio
	exit $?
fi

echo "demo: no terminal: a scripted session (the guest's console follows)"
vm=demo-$$
guest_start "$vm" 2 512 "$GT_WORK/demo.cpio"
tail -n +1 -f "$GT_WORK/$vm.console" --pid "$(guest_pid "$vm")" &
if guest_wait "$vm" '^GT: ready'; then
	guest_send "$vm" 'uname -a; grep -c ^processor /proc/cpuinfo; free -m; ls /sys/firmware/acpi/tables'
	guest_send "$vm" 'echo demo-done-$((40 + 2))'
	guest_wait "$vm" '^demo-done-42'
	"$GT_MINIVMM" control "$vm" info
	guest_send "$vm" 'poweroff -f'
fi
guest_wait_exit "$vm" 300
wait
echo "demo: minivmm exited with code $GT_RC"
exit "$GT_RC"
