#!/bin/bash
# Before test_mission, on the host: the Debian system image (cached in build/debian-image/).
cd "$(dirname "$0")/../../.." || exit 1
. guest-tests/lib/debian_image.sh
debian_image_build
