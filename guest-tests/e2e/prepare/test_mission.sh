#!/bin/bash
# Before test_mission, on the host: the Debian system image (cached in build/debian-image/) and its
# os.vdi, converted by this tree's minivmm (here in seconds; in level 1, under TCG, minutes).
cd "$(dirname "$0")/../../.." || exit 1
. guest-tests/lib/debian_image.sh
raw=$(debian_image_build) || exit 1
./minivmm img convert -O vdi "$raw" "${raw%.raw}.vdi.new" && mv "${raw%.raw}.vdi.new" "${raw%.raw}.vdi" &&
	echo "${raw%.raw}.vdi"
