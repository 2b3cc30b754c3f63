#!/bin/bash
# The mission's three command lines, as written, on a real Debian 12 system:
#     minivmm run --cpus 4 --cpuhotplug --disk os.vdi,immutable --disk data.qcow2,writethrough
#     minivmm control vm1 plugcpu 3
#     minivmm control vm1 balloon 700
# in an empty directory holding os.vdi (lib/debian_image.sh's debootstrap'd system, converted with
# `minivmm img convert`) and data.qcow2 (qemu-img).  Only the environment is the test's: PATH finds
# this tree's minivmm, the console (stdio, the default) is a pipe in and a file out.  Checked: SeaBIOS
# boots os.vdi to systemd and a login prompt on ttyS0; root logs in; CPU 0 online, 0-3 possible;
# `minivmm list` shows vm1; after plugcpu 3 the guest has APIC ID 3 online (udev rule) and taskset
# work runs there; after balloon 700 the guest's MemAvailable and minivmm's RSS fall; a block written to
# the data disk (O_DIRECT, no flush) is in data.qcow2 afterwards, qemu-img check clean; poweroff in the guest ends minivmm with 0; os.vdi is unchanged.
# A systemd boot through SeaBIOS in level 2 takes minutes, hence a bound of its own:
# gt-timeout: 1500
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/guest.sh
. guest-tests/lib/debian_image.sh
gt_setup
T=mission
W=$GT_WORK
vm=vm1
vdi=$(debian_image_path)
vdi=${vdi%.raw}.vdi
# On a host that can write build/ and reach the mirror the test prepares the image itself; in level 1
# run-e2e.sh has run guest-tests/e2e/prepare/test_mission.sh beforehand: the raw image built with
# debootstrap, converted to os.vdi by `minivmm img convert` (on the host: seconds, not minutes).
[ "${GT_LEVEL:-}" = 1 ] || guest-tests/e2e/prepare/test_mission.sh >/dev/null
if [ ! -s "$vdi" ]; then
	gt_fail "$T: the Debian system image" "$vdi missing (debootstrap failed or prepare did not run)"
	exit 1
fi
gt_pass "$T: a debootstrap'd Debian 12 system in os.vdi ($(du -m "$vdi" | cut -f1) MiB)"

mkdir -p "$W/bin" "$W/mission" && ln -s "$(realpath "$GT_MINIVMM")" "$W/bin/minivmm" || exit 1
export PATH=$W/bin:$PATH
cd "$W/mission" || exit 1
# os.vdi is a symbolic link to the prepared image, not a copy: a copy costs level 1 (TCG) reading and
# writing 400 MiB.  Immutable, it must stay byte for byte what prepare's md5 (os.vdi.md5) says.
ln -s "$vdi" os.vdi && qemu-img create -q -f qcow2 data.qcow2 256M || {
	gt_fail "$T: os.vdi and data.qcow2 (qemu-img create) in an empty directory"
	exit 1
}
vdi_md5=$(cat "$vdi.md5" 2>/dev/null)
[ -n "$vdi_md5" ] || vdi_md5=$(gt_md5 os.vdi)

expect() { gt_expect "$T: $1" "$2" "$3"; } # name want got
expect_ge() { # name value min
	[ -n "$2" ] && [ "$2" -ge "$3" ] 2>/dev/null && gt_pass "$T: $1 ($2 >= $3)" ||
		gt_fail "$T: $1" "got '$2', want >= $3"
}
echo 0 >"$W/seq"
gq() { # CMD: runs CMD in the guest's shell, prints its output (one line)
	local seq
	seq=$(($(cat "$W/seq") + 1))
	echo $seq >"$W/seq"
	guest_send_lf "$vm" "echo; echo \"GT: q$seq=\$($1)\"" # (after dash's prompt)
	guest_wait "$vm" "^GT: q$seq=" 180 >/dev/null
	guest_value "$vm" "q$seq"
}
guest_send_lf() { printf '%s\n' "$2" >&"${_gt_fd[$1]}"; }
rss_mib() { awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/$(guest_pid "$vm")/status"; }
balloon_actual() { minivmm control vm1 balloon 2>&1 | awk -F': ' '$1 == "actual_mib" { print $2 }'; }

# --- the first line -------------------------------------------------------------------------------
_gt_spawn "$vm" minivmm run --cpus 4 --cpuhotplug --disk os.vdi,immutable --disk data.qcow2,writethrough
if guest_wait "$vm" 'mission login: ' 800; then
	gt_pass "$T: SeaBIOS boots os.vdi to a login prompt on ttyS0"
else
	gt_fail "$T: SeaBIOS boots os.vdi to a login prompt on ttyS0" "no 'mission login:'"
	exit 1
fi
tr -d '\r' <"$W/$vm.console" | grep -a -q 'SeaBIOS (version' && gt_pass "$T: the firmware was SeaBIOS" ||
	gt_fail "$T: the firmware was SeaBIOS" "no 'SeaBIOS (version' on the console"
expect "the guest is Debian 12 under systemd" "debian-12 systemd" \
	"$(guest_value "$vm" os) $(guest_value "$vm" init)"
# (sda or sdb: the SCSI layer names the two AHCI disks in the order their probes end.)
expect "the root file system is os.vdi's ext4 partition ($(guest_value "$vm" root))" 4d564d4d-02 \
	"$(guest_value "$vm" root_partuuid)"
expect "CPUs 0-3 possible" 0-3 "$(guest_value "$vm" possible)"
expect "CPU 0 alone online" 0 "$(guest_value "$vm" online)"
expect "the CPU-online udev rule is installed" 1 "$(guest_value "$vm" udev_cpu_rule)"
minivmm list >"$W/list" 2>&1
awk '$1 == "vm1" { found = 1 } END { exit !found }' "$W/list" && gt_pass "$T: minivmm list shows vm1" ||
	gt_fail "$T: minivmm list shows vm1" "$(tr '\n' '|' <"$W/list")"

guest_send "$vm" root
if guest_wait "$vm" 'root@mission:~#' 300; then
	gt_pass "$T: root logs in on the serial console"
else
	gt_fail "$T: root logs in on the serial console" "no shell prompt"
	exit 1
fi
# dash without echo: the answers are the only lines starting with "GT: ".  Lines end with LF, not
# guest_send's CR: typed ahead while bash's readline has the tty raw, a CR stays a CR for dash.
guest_send_lf "$vm" "stty -echo; exec sh"
a=$(gq 'echo $((6 * 7))')
expect "a shell answers" 42 "$a"
[ "$a" = 42 ] || exit 1 # every check below asks that shell

# GT_TIMES=1: where the boot's time went, as systemd saw it (the rest of the time to the login
# prompt is SeaBIOS and syslinux loading the kernel and the initrd).
if [ -n "${GT_TIMES:-}" ]; then
	# (gq's answer is one word: spaces travel as "~", lines as ";".)
	echo "# $(gq 'systemd-analyze 2>&1 | head -1 | tr " " "~"' | tr '~' ' ')"
	gq 'systemd-analyze blame 2>&1 | head -12 | tr -s " " | tr " \n" "~;"' | tr ';~' '\n ' | sed 's/^/#   /'
fi

# --- the second line ------------------------------------------------------------------------------
out=$(minivmm control vm1 plugcpu 3 2>&1)
rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q '^guest: added$' && gt_pass "$T: plugcpu 3 answered 'guest: added'" ||
	gt_fail "$T: plugcpu 3" "exit $rc: $out"
# udevadm settle: the rule's action has run once the event queue is empty.
# The rule's action has run once udev's queue is empty and the CPU's event reached it (bounded).
online='c=/sys/devices/system/cpu/online; i=0; while udevadm settle; [ "$(cat $c)" != 0-1 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done; cat $c'
expect "the guest onlined the new CPU (udev rule)" 0-1 "$(gq "$online")"
expect "online CPUs have APIC IDs 0,3" "0,3," "$(gq "awk '/^apicid/ { printf \"%s,\", \$3 }' /proc/cpuinfo")"
l=$(gq "awk '/^processor/ { p = \$3 } /^apicid/ { if (\$3 == 3) print p }' /proc/cpuinfo")
# Field 39 of /proc/PID/stat: the CPU the task last ran on, after some work pinned there.
on=$(gq "taskset -c ${l:-x} sh -c 'i=0; while [ \$i -lt 20000 ]; do i=\$((i+1)); done; cut -d\" \" -f39 /proc/self/stat'")
[ -n "$l" ] && [ "$on" = "$l" ] && gt_pass "$T: taskset work runs on APIC ID 3 (guest CPU $l)" ||
	gt_fail "$T: taskset work runs on APIC ID 3" "guest CPU '$l', ran on '$on'"
expect "control info lists CPUs 0,3 online" "cpus_online: 0,3" \
	"$(minivmm control vm1 info 2>&1 | grep '^cpus_online:')"

# --- the third line -------------------------------------------------------------------------------
# The guest first uses 700 MiB and frees it, so that the host has pages to get back.
expect "the guest fills 700 MiB" ok \
	"$(gq 'mount -t tmpfs -o size=800m gt /mnt && dd if=/dev/zero of=/mnt/hold bs=1M count=700 2>/dev/null && echo ok')"
rss1=$(rss_mib)
expect "and frees it" ok "$(gq 'rm /mnt/hold && umount /mnt && echo ok')"
# MemAvailable, not MemFree: the balloon's pages come from free memory and from reclaimed page
# cache alike (one run: MemFree fell by 572 MiB while the balloon held 700), and neither counts as
# available while the balloon holds them.
meminfo="awk '/^MemTotal:|^MemAvailable:/ { printf \"%d,\", \$2 / 1024 }' /proc/meminfo"
m1=$(gq "$meminfo")
out=$(minivmm control vm1 balloon 700 2>&1)
rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q '^target_mib: 700$' && gt_pass "$T: balloon 700 accepted" ||
	gt_fail "$T: balloon 700" "exit $rc: $out"
for _ in $(seq 600); do # bounded: only stops a hang
	[ "$(balloon_actual)" = 700 ] && break
	sleep 0.5
done
expect "the guest's balloon holds 700 MiB" 700 "$(balloon_actual)"
m2=$(gq "$meminfo")
free1=$(echo "$m1" | cut -d, -f2) free2=$(echo "$m2" | cut -d, -f2)
expect_ge "the guest's MemAvailable fell by about 700 MiB (MemTotal,MemAvailable $m1 -> $m2)" $((free1 - free2)) 600
rss2=$(rss_mib)
expect_ge "minivmm's RSS fell (VmRSS $rss1 -> $rss2 MiB)" $((rss1 - rss2)) 400

# --- the data disk ----------------------------------------------------------------------------------
d=$(gq "lsblk -b -d -n -o NAME,SIZE | awk '\$2 == 268435456 { print \$1 }'")
pattern() { yes MISSION-DATA | head -c 1048576; }
want=$(pattern | md5sum | cut -d' ' -f1)
# O_DIRECT and no flush in the guest: writethrough must still leave it in the file.
expect "the guest writes 1 MiB at 4 MiB of data.qcow2 ($d)" ok \
	"$(gq "yes MISSION-DATA | head -c 1048576 | dd of=/dev/${d:-none} bs=1M seek=4 iflag=fullblock oflag=direct 2>/dev/null && echo ok")"

guest_send_lf "$vm" poweroff
guest_wait_exit "$vm" 300
expect "poweroff in the guest ends minivmm with 0" 0 "$GT_RC"
qemu-img check -q data.qcow2 >"$W/check" 2>&1 && gt_pass "$T: qemu-img check data.qcow2 is clean" ||
	gt_fail "$T: qemu-img check data.qcow2 is clean" "$(head -c 300 "$W/check")"
qemu-img convert -O raw data.qcow2 "$W/data.raw"
expect "the block reads back on the host (qemu-img convert)" "$want" \
	"$(dd if="$W/data.raw" bs=1M skip=4 count=1 status=none | md5sum | cut -d' ' -f1)"
expect "os.vdi is unchanged (immutable)" "$vdi_md5" "$(gt_md5 os.vdi)"
