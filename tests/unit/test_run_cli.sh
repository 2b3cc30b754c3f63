#!/bin/bash
# `minivmm run` rejects bad command lines with exit code 2 and exactly one line on stderr,
# before touching KVM.
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | head -1)

printf 'not a kernel at all' >"$tmp/notbz"
# A header that passes the magic checks but claims boot protocol 2.06.
python3 - "$tmp/oldbz" <<'PY'
import sys
b = bytearray(8192)
b[0x1F1] = 4
b[0x1FE:0x200] = b'\x55\xaa'
b[0x202:0x206] = b'HdrS'
b[0x206:0x208] = (0x0206).to_bytes(2, 'little')
open(sys.argv[1], 'wb').write(b)
PY
[ -n "$kernel" ] && head -c 1000 "$kernel" >"$tmp/truncated"

check() { # name, expected stderr substring, args...
	local name=$1 want=$2
	shift 2
	./minivmm run "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	local rc=$? lines
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" -eq 2 ] && [ "$lines" -eq 1 ] && grep -q -- "$want" "$tmp/err"; then
		echo "PASS: $name"
	else
		echo "FAIL: $name (rc=$rc, stderr: $(head -c 300 "$tmp/err"))"
	fi
}

check firmware-not-found "No such file" --firmware-file "$tmp/nope"
check firmware-not-bios "not a BIOS image" --firmware-file "$tmp/notbz"
check firmware-with-kernel "for firmware boot" --kernel "$tmp/notbz" --boot disk
check efi-not-flash "not a flash image" --firmware efi --firmware-file "$tmp/notbz"
check kernel-not-found "No such file" --kernel "$tmp/nope"
check kernel-not-bzimage "not a bzImage" --kernel "$tmp/notbz"
check kernel-too-old "too old" --kernel "$tmp/oldbz"
check kernel-directory "not a regular file" --kernel "$tmp"
check cpus-zero "bad --cpus" --kernel "$tmp/notbz" --cpus 0
check cpus-too-many "bad --cpus" --kernel "$tmp/notbz" --cpus 65
check memory-small "too small" --kernel "$tmp/notbz" --memory 31
host_mib=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024))
check memory-over-host "more than the host" --kernel "$tmp/notbz" --memory $((host_mib + 1024))
check memory-over-machine "more than the machine" --kernel "$tmp/notbz" --memory 2000000
check memory-garbage "bad --memory" --kernel "$tmp/notbz" --memory lots
check unknown-option "unknown option '--frobnicate'" --kernel "$tmp/notbz" --frobnicate
check missing-value "needs a value" --kernel
check bad-name "bad --name" --kernel "$tmp/notbz" --name "a/b"
if [ -n "$kernel" ] && [ -r "$kernel" ]; then
	check kernel-truncated "truncated" --kernel "$tmp/truncated"
	check initrd-missing "$tmp/nope.cpio" --kernel "$kernel" --initrd "$tmp/nope.cpio"
	check console-unwritable "--console $tmp/no/dir" --kernel "$kernel" --console "$tmp/no/dir"
fi

./minivmm run --help >"$tmp/out" 2>&1
if [ $? -eq 0 ] && grep -q "usage: minivmm run" "$tmp/out"; then
	echo "PASS: help"
else
	echo "FAIL: help"
fi
