/* Opening a controller's disk the way `minivmm run` does (parse the --disk/--cdrom argument, then
 * disk_open), for the device tests.  Part of tests/lib, linked into every test binary. */
#ifndef MINIVMM_TESTS_LIB_TESTDISK_H
#define MINIVMM_TESTS_LIB_TESTDISK_H

#include <stdbool.h>

#include "devices/disk.h"

/* The opened disk, or NULL after printing the parse or open error on stderr. */
struct disk *test_disk_open(const char *arg, enum disk_media media);

/* werror=stop without a VM: from now on every write to d fails with ENOSPC (the block layer's
 * test fault, while the file `flag` exists) and is parked instead of completed.  0 or -errno. */
int test_disk_stop_writes(struct disk *d, const char *flag);
/* Run d's completions here until `n` writes are parked; false when they were not after a bounded
 * number of polls. */
bool test_disk_wait_parked(struct disk *d, unsigned n);
/* The fault ends: the flag file goes and the variable with it. */
void test_disk_fault_end(const char *flag);

#endif
