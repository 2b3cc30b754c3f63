#!/bin/bash
# Before the firmware tests, on the host: their syslinux disk and initramfs (fwboot_disk_build) in
# build/fwboot/, built once for all of them and again only when what makes them changed.
cd "$(dirname "$0")/../../.." || exit 1
. guest-tests/lib/guest.sh
. guest-tests/lib/bootdisk.sh
. guest-tests/lib/fwboot.sh
stamp=$(fwboot_stamp)
[ "$(cat "$FWBOOT_CACHE/stamp" 2>/dev/null)" = "$stamp" ] && [ -r "$FWBOOT_CACHE/os.raw" ] && exit 0
rm -rf "$FWBOOT_CACHE.new" && mkdir -p "$FWBOOT_CACHE.new" &&
	fwboot_disk_make "$FWBOOT_CACHE.new" && echo "$stamp" >"$FWBOOT_CACHE.new/stamp" &&
	rm -rf "$FWBOOT_CACHE" && mv "$FWBOOT_CACHE.new" "$FWBOOT_CACHE" && echo "$FWBOOT_CACHE/os.raw"
