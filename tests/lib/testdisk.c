/* Opening a disk from a command-line style argument for the device tests: see testdisk.h. */
#include <stdio.h>

#include "tests/lib/testdisk.h"

struct disk *test_disk_open(const char *arg, enum disk_media media)
{
	struct disk_config cfg;
	struct disk *d = NULL;
	char err[256];

	if (disk_config_parse(arg, media, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return NULL;
	}
	if (disk_open(&cfg, 0, &d, err, sizeof(err)) < 0)
		fprintf(stderr, "%s\n", err);
	disk_config_free(&cfg);
	return d;
}
