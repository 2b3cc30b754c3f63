#!/bin/bash
# Crash safety of the writable sparse VMDK (monolithic, split, stream-optimized) and VHD formats
# (harness: tests/storage/crash_lib.sh). After a kill -9 of the stress writer qemu-img must accept
# the image (`qemu-img check` for VMDK; qemu-img has no check for vpc, so it must read the whole
# image) and every write before the last logged flush must read back.
set -u
cd "$(dirname "$0")/../.."
. tests/storage/crash_lib.sh
dir=$CRASH_DIR

check_vmdk() { qemu-img check -f vmdk "$1"; }
check_vpc() { qemu-img convert -f vpc -O raw "$1" "$1.raw" && rm -f "$1.raw"; }

round() { # $1 name, $2 format, $3 image-maker command, $4 seed
	crash_round "$1" "$dir/$1.img" "$3" "$4" "check_$2" 0.2 0.6
}

for seed in 11 23 37; do
	round "vmdk-sparse-$seed" vmdk "./minivmm img create -f vmdk '$dir/vmdk-sparse-$seed.img' 256M" "$seed"
done
round "vmdk-split-19" vmdk "./minivmm img create -f vmdk -o subformat=twoGbMaxExtentSparse '$dir/vmdk-split-19.img' 256M" 19
round "vmdk-qemu-zeroed-5" vmdk "qemu-img create -f vmdk -o zeroed_grain=on '$dir/vmdk-qemu-zeroed-5.img' 256M" 5
round "vmdk-stream-7" vmdk "./minivmm img create -f vmdk -o subformat=streamOptimized '$dir/vmdk-stream-7.img' 64M" 7
for seed in 13 29 31; do
	round "vpc-dynamic-$seed" vpc "./minivmm img create -f vpc '$dir/vpc-dynamic-$seed.img' 256M" "$seed"
done
round "vpc-qemu-dynamic-3" vpc "qemu-img create -f vpc '$dir/vpc-qemu-dynamic-3.img' 256M" 3

crash_verify_must_fail vmdk vpc
