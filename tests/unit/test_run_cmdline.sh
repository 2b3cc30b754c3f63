#!/bin/bash
# `minivmm run` with a bad command line: exactly one line on stderr naming the problem, nothing on
# stdout, exit code 2, and no guest started (none of these reach KVM, so no /dev/kvm is needed).
cd "$(dirname "$0")/../.." || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. guest-tests/lib/initramfs.sh
kernel=$(gt_kernel)
# A file that is no bzImage but long enough to have a setup header.
head -c 8192 /dev/zero >"$tmp/zeros"
: >"$tmp/empty"

check() { # name pattern-the-line-must-match args...
	local name=$1 pat=$2 rc lines
	shift 2
	timeout 20 ./minivmm run "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" -eq 2 ] && [ "$lines" -eq 1 ] && [ ! -s "$tmp/out" ] && grep -q -i -E "$pat" "$tmp/err"; then
		echo "PASS: run $name"
	else
		echo "FAIL: run $name (exit $rc, $lines stderr lines: $(head -c 200 "$tmp/err" | tr '\n' '|'))"
	fi
}

check "--initrd without --kernel" 'kernel' --memory 64 --initrd "$tmp/zeros"
check "with a missing BIOS file" 'nonexistent' --firmware-file "$tmp/nonexistent"
check "with a BIOS file of a bad size" 'BIOS image' --firmware-file "$tmp/zeros"
check "with a missing kernel file" 'nonexistent' --kernel "$tmp/nonexistent"
check "with a kernel that is not a bzImage" 'bzImage' --kernel "$tmp/zeros"
check "with an empty kernel file" 'bzImage|short|small|empty|truncated' --kernel "$tmp/empty"
if [ -n "$kernel" ]; then
	check "--memory 16 (below 32 MiB)" 'memory' --kernel "$kernel" --memory 16
	check "--memory larger than host RAM" 'memory' --kernel "$kernel" --memory 99999999
	check "--memory not a number" 'memory' --kernel "$kernel" --memory 12abc
	check "--memory overflowing" 'memory' --kernel "$kernel" --memory 184467440737095516160
	check "--cpus 0" 'cpus' --kernel "$kernel" --cpus 0
	check "--cpus 65 (above LAYOUT_MAX_VCPUS)" 'cpus' --kernel "$kernel" --cpus 65
	check "--cpus -1" 'cpus' --kernel "$kernel" --cpus -1
	check "an unknown option" 'bogus' --kernel "$kernel" --bogus
	check "an option without its value" 'memory' --kernel "$kernel" --memory
	check "a missing initrd file" 'nonexistent' --kernel "$kernel" --initrd "$tmp/nonexistent"
	check "a bad --console" 'console' --kernel "$kernel" --console
else
	echo "FAIL: run command-line checks (no /boot/vmlinuz-*-amd64: install linux-image-amd64)"
fi
