/* Test-only fault injection (block_fault.h).  stat() only: it runs on vCPU threads, whose
 * sandbox role opens no files. */
#include "storage/core/block_fault.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>

static const char *eio_path, *enospc_path;
static pthread_once_t once = PTHREAD_ONCE_INIT;

void block_fault_reload(void)
{
	eio_path = getenv("MINIVMM_TEST_EIO_WHILE");
	enospc_path = getenv("MINIVMM_TEST_ENOSPC_WHILE");
}

int block_fault_injected(bool write)
{
	struct stat st;

	pthread_once(&once, block_fault_reload);
	if (__builtin_expect(!write || (!eio_path && !enospc_path), 1))
		return 0;
	if (eio_path && stat(eio_path, &st) == 0)
		return -EIO;
	if (enospc_path && stat(enospc_path, &st) == 0)
		return -ENOSPC;
	return 0;
}
