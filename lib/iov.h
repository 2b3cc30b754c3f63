/* Scatter/gather helpers on iovecs: requests arrive as iovecs (guest memory mapped piecewise) and
 * drivers split them at cluster boundaries, so every user needs the same few operations. */
#ifndef MINIVMM_LIB_IOV_H
#define MINIVMM_LIB_IOV_H

#include <stddef.h>
#include <sys/uio.h>

size_t iov_size(const struct iovec *iov, int iovcnt);
void iov_memset(const struct iovec *iov, int iovcnt, size_t offset, int c, size_t len);
size_t iov_to_buf(const struct iovec *iov, int iovcnt, size_t offset, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, int iovcnt, size_t offset, const void *buf,
		    size_t len);
/* Describe the sub-range [offset, offset+len) of iov in out (at most out_max entries); returns the
 * number of entries used or -EINVAL when out_max is too small. */
int iov_slice(const struct iovec *iov, int iovcnt, size_t offset, size_t len, struct iovec *out,
	      int out_max);
/* Room for an iov_slice() of an iovcnt-entry vector: `local` (IOV_SCRATCH_MAX entries) when it is
 * big enough, else a heap array returned in *heap too (free it; NULL when local was used). NULL
 * when out of memory. */
#define IOV_SCRATCH_MAX 64
struct iovec *iov_scratch(struct iovec *local, int iovcnt, struct iovec **heap);

#endif
