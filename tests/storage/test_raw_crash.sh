#!/bin/bash
# Crash safety of raw images (harness: tests/storage/crash_lib.sh), the one format the other
# test_*_crash.sh files leave out: after a kill -9 of the stress writer every write before the
# last logged flush must read back (qemu-img has nothing to check in a raw file: its checker
# here only asks qemu-img to read it whole).  A sparse file and a preallocated one.
set -u
cd "$(dirname "$0")/../.."
. tests/storage/crash_lib.sh
dir=$CRASH_DIR

check_raw() { qemu-img convert -f raw -O raw "$1" "$1.copy" && rm -f "$1.copy"; }

for seed in 7 19 43; do
	crash_round "raw-sparse-$seed" "$dir/raw-sparse-$seed.img" "truncate -s 256M '$dir/raw-sparse-$seed.img'" \
		"$seed" check_raw 0.15 0.6
done
crash_round "raw-falloc-23" "$dir/raw-falloc-23.img" "fallocate -l 64M '$dir/raw-falloc-23.img'" 23 check_raw 0.15 0.6

crash_verify_must_fail raw
