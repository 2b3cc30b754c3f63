#!/bin/bash
# Crash safety of qcow2 images with an external data file (harness: tests/storage/crash_lib.sh):
# after a kill -9 of the stress writer, `qemu-img check` must be clean and every write before the
# last logged flush must read back; a raw data file must still read as the disk itself.
set -u
cd "$(dirname "$0")/../.."
. tests/storage/crash_lib.sh
dir=$CRASH_DIR

# qemu-img 7.2 resolves data file names against its working directory: check from the images'.
qcheck() { (cd "$dir" && qemu-img check "$1"); }
# raw_matches IMG: qcheck, and the raw data file IMG.data equals the disk as qemu reads it
raw_matches() {
	(cd "$dir" && qemu-img check -q "$1" && qemu-img convert -O raw "$1" "$1.whole" &&
		cmp "$1.whole" "$1.data")
}

round() { # $1 name, $2 image-maker command (run in $dir), $3 seed, $4 checker
	crash_round "$1" "$dir/$1.qcow2" "(cd '$dir' && $2)" "$3" "${4:-qcheck}" 0.15 0.6
}

for seed in 7 19; do
	round "qemu-raw-$seed" "qemu-img create -q -f qcow2 -o data_file=qemu-raw-$seed.qcow2.data,data_file_raw=on qemu-raw-$seed.qcow2 64M" \
		"$seed" raw_matches
	round "qemu-$seed" "qemu-img create -q -f qcow2 -o data_file=qemu-$seed.data qemu-$seed.qcow2 64M" "$seed"
done
round "minivmm-raw-31" "$PWD/minivmm img create -f qcow2 -o data_file=minivmm-raw-31.qcow2.data,data_file_raw=on minivmm-raw-31.qcow2 64M" \
	31 raw_matches
round "minivmm-13" "$PWD/minivmm img create -f qcow2 -o data_file=minivmm-13.data minivmm-13.qcow2 64M" 13
