#!/bin/bash
# Crash safety of the VDI driver (harness: tests/storage/crash_lib.sh): after a kill -9 of the
# stress writer, `qemu-img check` must be clean and every write before the last logged flush must
# read back.
set -u
cd "$(dirname "$0")/../.."
. tests/storage/crash_lib.sh
dir=$CRASH_DIR

round() { # $1 name, $2 image-maker command, $3 seed, $4 checker (default qemu-img check)
	crash_round "$1" "$dir/$1.vdi" "$2" "$3" "${4:-qemu-img check -f vdi}" 0.15 0.6
}

for seed in 11 23 37 41; do
	round "qemu-dynamic-$seed" "qemu-img create -f vdi '$dir/qemu-dynamic-$seed.vdi' 400M" "$seed"
done
for seed in 5 17; do
	round "qemu-static-$seed" "qemu-img create -f vdi -o static=on '$dir/qemu-static-$seed.vdi' 32M" "$seed"
done

for seed in 3 29; do
	round "minivmm-dynamic-$seed" "./minivmm img create -f vdi '$dir/minivmm-dynamic-$seed.vdi' 400M" "$seed"
done
# A differencing image over an empty base: every new block is filled from the parent first.
# QEMU cannot open differencing VDIs, so minivmm's own check judges it.
round "minivmm-diff-29" "./minivmm img create -f vdi '$dir/base.vdi' 400M && ./minivmm img create -f vdi -b base.vdi -F vdi '$dir/minivmm-diff-29.vdi'" 29 "./minivmm img check"

crash_verify_must_fail vdi
