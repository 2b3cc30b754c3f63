/* Opening a controller's disk the way `minivmm run` does (parse the --disk/--cdrom argument, then
 * disk_open), for the device tests.  Part of tests/lib, linked into every test binary. */
#ifndef MINIVMM_TESTS_LIB_TESTDISK_H
#define MINIVMM_TESTS_LIB_TESTDISK_H

#include "devices/disk.h"

/* The opened disk, or NULL after printing the parse or open error on stderr. */
struct disk *test_disk_open(const char *arg, enum disk_media media);

#endif
