#!/bin/bash
# Before test_mission, on the host: the Debian system image (cached in build/debian-image/) and its
# os.vdi, converted by this tree's minivmm (here in seconds; in level 1, under TCG, minutes), and its md5.
cd "$(dirname "$0")/../../.." || exit 1
. guest-tests/lib/debian_image.sh
raw=$(debian_image_build) || exit 1
# Its md5 beside it (os.vdi.md5): the test checks the file is unchanged against it, without reading
# the 400 MiB once more in level 1 before the boot.
vdi=${raw%.raw}.vdi
./minivmm img convert -O vdi "$raw" "$vdi.new" && md5sum <"$vdi.new" | cut -d' ' -f1 >"$vdi.md5.new" &&
	mv "$vdi.new" "$vdi" && mv "$vdi.md5.new" "$vdi.md5" && echo "$vdi"
