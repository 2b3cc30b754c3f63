/* Test-only fault injection for the asynchronous block layer.  With MINIVMM_TEST_EIO_WHILE=PATH
 * (or MINIVMM_TEST_ENOSPC_WHILE=PATH) in the environment, every write, write-zeroes, discard and
 * flush submitted while PATH exists fails with -EIO (or -ENOSPC) without touching the image, as a
 * failing disk or a full file system would answer; reads are unaffected.  Without the variables
 * (every real run) the check is one predicted branch.  A test creates and removes PATH to start
 * and end the fault while the guest runs. */
#ifndef MINIVMM_STORAGE_BLOCK_FAULT_H
#define MINIVMM_STORAGE_BLOCK_FAULT_H

#include <stdbool.h>

/* The error to inject into a request that writes (write = true), or 0. */
int block_fault_injected(bool write);
/* Read the variables again (unit tests that set them after the first request). */
void block_fault_reload(void);

#endif
