#!/bin/bash
# The layer check (scripts/check-layers.sh): the repository passes it, and a tree with an include
# pointing up (a device including vmm/, storage including devices/, lib including storage/) fails
# it, naming the line.
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1${2:+ ($2)}"; }

if out=$(scripts/check-layers.sh 2>&1); then
	pass "the repository's layers point down"
else
	fail "the repository's layers point down" "$(echo "$out" | grep -A3 FAIL | head -8)"
fi

planted() { # name, file, include line: the check must fail and name file and include
	mkdir -p "$tmp/$1/$(dirname "$2")"
	printf '#include <stdio.h>\n#include "%s"\n' "$3" >"$tmp/$1/$2"
	out=$(scripts/check-layers.sh "$tmp/$1" 2>&1)
	rc=$?
	if [ $rc -eq 1 ] && echo "$out" | grep -q "$2:2:#include \"$3\""; then
		pass "$2 including $3 is refused"
	else
		fail "$2 including $3 is refused" "rc=$rc: $out"
	fi
}
planted dev devices/rtc.c vmm/vm_config.h
planted sto storage/core/block.c devices/disk.h
planted lib lib/log.c storage/core/block.h
planted rel net/tap.c ../vmm/vm.h

mkdir -p "$tmp/ok/devices" "$tmp/ok/storage"
printf '#include "storage/core/block.h"\n#include "lib/log.h"\n' >"$tmp/ok/devices/a.c"
printf '#include "lib/endian.h"\n' >"$tmp/ok/storage/b.c"
if scripts/check-layers.sh "$tmp/ok" >/dev/null 2>&1; then
	pass "includes that point down are accepted"
else
	fail "includes that point down are accepted"
fi
