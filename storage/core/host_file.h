/* A host file under an image: the only place that issues system calls on image files.
 *
 * It hides O_DIRECT's alignment rules (unaligned requests go through an aligned bounce buffer),
 * retries short transfers and EINTR, and maps the cache modes: with cache_unsafe, flush is a no-op.
 * All functions are thread-safe (positional I/O only) and return 0 or -errno; reads past the end of
 * the file return zeroes.
 */
#ifndef MINIVMM_STORAGE_HOST_FILE_H
#define MINIVMM_STORAGE_HOST_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct host_file {
	int fd;
	bool direct;	   /* opened O_DIRECT: I/O must be aligned to `align` */
	bool cache_unsafe; /* flushes are ignored */
	bool read_only;
	uint32_t align;	   /* 1, or the O_DIRECT alignment (512 or 4096) */
};

enum {
	HOST_FILE_RDWR = 1 << 0,
	HOST_FILE_CREATE = 1 << 1, /* create; fail if it exists */
	HOST_FILE_DIRECT = 1 << 2,
	HOST_FILE_DSYNC = 1 << 3,
	HOST_FILE_UNSAFE = 1 << 4,
};

int host_file_open(struct host_file *f, const char *path, int flags);
void host_file_close(struct host_file *f);
int host_file_pread(struct host_file *f, uint64_t offset, void *buf, size_t len);
int host_file_pwrite(struct host_file *f, uint64_t offset, const void *buf, size_t len);
int host_file_preadv(struct host_file *f, uint64_t offset, const struct iovec *iov, int iovcnt);
int host_file_pwritev(struct host_file *f, uint64_t offset, const struct iovec *iov, int iovcnt);
int host_file_flush(struct host_file *f);
int host_file_size(struct host_file *f, uint64_t *size);	  /* bytes in the file */
int host_file_allocated(struct host_file *f, uint64_t *bytes);	  /* blocks actually used, in bytes */
int host_file_truncate(struct host_file *f, uint64_t size);
int host_file_allocate(struct host_file *f, uint64_t offset, uint64_t len); /* fallocate, keep size */
int host_file_punch_hole(struct host_file *f, uint64_t offset, uint64_t len); /* reads zero after */
/* Write zero bytes over a range: every block of it is allocated afterwards. */
int host_file_fill_zeroes(struct host_file *f, uint64_t offset, uint64_t len);
/* Zero a range: punch or FALLOC_FL_ZERO_RANGE where supported, writes otherwise. */
int host_file_write_zeroes(struct host_file *f, uint64_t offset, uint64_t len);
/* SEEK_DATA/SEEK_HOLE: is `offset` in data, and how far does that run go (bounded by len)? */
int host_file_extent(struct host_file *f, uint64_t offset, uint64_t len, bool *is_data, uint64_t *pnum);

#endif
