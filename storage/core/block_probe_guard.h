/* The probe-window guard of a raw image whose format was probed (see block_probe_window in
 * storage/core/block.h). Internal to the block core: storage/core/block.c calls it around every
 * write, write-zeroes and discard.
 */
#ifndef MINIVMM_STORAGE_BLOCK_PROBE_GUARD_H
#define MINIVMM_STORAGE_BLOCK_PROBE_GUARD_H

#include <stdint.h>
#include <sys/uio.h>

struct block_device;

/* Give bs (a probed raw image, just opened read-write) its guard. */
int block_probe_guard_open(struct block_device *bs);
/* Free it (nothing when bs has none). */
void block_probe_guard_close(struct block_device *bs);

/* Before writing [offset, offset+len) of bs: iov the data, or NULL for zeroes (write-zeroes and
 * discard). Returns 0 when the range misses the window or bs has no guard (nothing held), 1 when
 * the write may go ahead with the guard's lock held (call block_probe_guard_end after the write,
 * whatever its result), or -errno with a error_set() message: -EPERM when the head would then
 * probe as another format (nothing held). */
int block_probe_guard_begin(struct block_device *bs, uint64_t offset, uint64_t len,
			    const struct iovec *iov, int iovcnt);
/* After the write: `held` is what block_probe_guard_begin returned. */
void block_probe_guard_end(struct block_device *bs, int held);
/* How many times this process found another process holding an image's guard and waited. */
unsigned long block_probe_guard_waits(void);

#endif
