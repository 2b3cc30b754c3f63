/* Opening a disk from a command-line style argument for the device tests: see testdisk.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "storage/core/block_aio.h"
#include "storage/core/block_fault.h"
#include "tests/lib/testdisk.h"
#include "lib/error.h"

static void on_stopped(void *opaque)
{
	(void)opaque;
}

struct disk *test_disk_open(const char *arg, enum disk_media media)
{
	struct disk_config cfg;
	struct disk *d = NULL;

	if (disk_config_parse(arg, media, &cfg) < 0) {
		fprintf(stderr, "%s\n", error_msg());
		return NULL;
	}
	if (disk_open(&cfg, 0, &d) < 0)
		fprintf(stderr, "%s\n", error_msg());
	disk_config_free(&cfg);
	return d;
}

int test_disk_stop_writes(struct disk *d, const char *flag)
{
	FILE *f = fopen(flag, "w");
	if (!f)
		return -errno;
	fclose(f);
	setenv("MINIVMM_TEST_ENOSPC_WHILE", flag, 1);
	block_fault_reload();
	block_aio_set_stop_on_error(d->aio, on_stopped, NULL);
	return 0;
}

bool test_disk_wait_parked(struct disk *d, unsigned n)
{
	for (int i = 0; i < 20000 && block_aio_stopped_count(d->aio) < n; i++)
		block_aio_poll(d->aio, 1);
	return block_aio_stopped_count(d->aio) >= n;
}

void test_disk_fault_end(const char *flag)
{
	unlink(flag);
	unsetenv("MINIVMM_TEST_ENOSPC_WHILE");
	block_fault_reload();
}
