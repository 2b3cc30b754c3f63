#!/bin/bash
# Crash safety of the VHDX and Parallels drivers (harness: tests/storage/crash_lib.sh). After a
# kill -9 of the stress writer, a read-write `minivmm img check -r all` replays the VHDX log /
# clears the Parallels in-use flag (what a crash leaves by design), `qemu-img check` must be clean,
# and every write before the last logged flush must read back.
set -u
cd "$(dirname "$0")/../.."
. tests/storage/crash_lib.sh
dir=$CRASH_DIR

check_repaired() { # $1 format, $2 image
	./minivmm img check -f "$1" -r all "$2" || return
	qemu-img check -f "$1" "$2"
}
check_vhdx() { check_repaired vhdx "$1"; }
check_parallels() { check_repaired parallels "$1"; }

round() { # $1 name, $2 format, $3 image-maker command, $4 seed
	crash_round "$1" "$dir/$1.img" "$3" "$4" "check_$2" 0.3 0.8
}

# Small blocks so that the writer allocates (and logs BAT updates) all the time.
for seed in 11 23 37; do
	round "vhdx-qemu-$seed" vhdx "qemu-img create -f vhdx -o block_size=1M '$dir/vhdx-qemu-$seed.img' 400M" "$seed"
done
for seed in 5 29; do
	round "vhdx-minivmm-$seed" vhdx "./minivmm img create -f vhdx -o block_size=1M '$dir/vhdx-minivmm-$seed.img' 400M" "$seed"
done
round "vhdx-fixed-17" vhdx "./minivmm img create -f vhdx -o subformat=fixed,block_size=1M '$dir/vhdx-fixed-17.img' 64M" 17
for seed in 3 41; do
	round "parallels-qemu-$seed" parallels "qemu-img create -f parallels -o cluster_size=64K '$dir/parallels-qemu-$seed.img' 400M" "$seed"
done
round "parallels-minivmm-13" parallels "./minivmm img create -f parallels -o cluster_size=4K '$dir/parallels-minivmm-13.img' 400M" 13

crash_verify_must_fail vhdx parallels
