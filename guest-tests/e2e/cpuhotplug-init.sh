#!/bin/sh
# /init of the CPU hot-plug guest: what the guest sees of its CPUs, then a shell on the console.
# cpu_online_rule does what guest-tests/udev/80-minivmm-cpu-online.rules does on a guest with udev
# (this busybox guest has none): write 1 to `online` of every CPU that is still offline.
echo "GT: possible=$(cat /sys/devices/system/cpu/possible)"
echo "GT: present=$(cat /sys/devices/system/cpu/present)"
echo "GT: online=$(cat /sys/devices/system/cpu/online)"
cat >/bin/cpu_online_rule <<'RULE'
#!/bin/sh
for f in /sys/devices/system/cpu/cpu[0-9]*/online; do
	[ "$(cat "$f")" = 0 ] && echo 1 >"$f"
done
RULE
chmod 755 /bin/cpu_online_rule
echo "GT: ready"
exec sh
