/* Scatter/gather helpers: requests arrive as iovecs (guest memory mapped piecewise), and drivers
 * split them at cluster boundaries, so every driver needs the same few operations on them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/iov.h"

size_t iov_size(const struct iovec *iov, int iovcnt)
{
	size_t n = 0;

	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return n;
}

/* Run body on each contiguous piece (base, n) of the bytes [offset, offset+len) of iov; afterwards
 * len holds the bytes visited (fewer when iov is shorter). */
#define IOV_FOR_RANGE(iov, iovcnt, offset, len, base, n, body)                                     \
	do {                                                                                       \
		size_t skip_ = (offset), left_ = (len), done_ = 0;                                 \
		for (int i_ = 0; i_ < (iovcnt) && left_; i_++) {                                   \
			if (skip_ >= (iov)[i_].iov_len) {                                          \
				skip_ -= (iov)[i_].iov_len;                                        \
				continue;                                                          \
			}                                                                          \
			char *base = (char *)(iov)[i_].iov_base + skip_;                           \
			size_t n = (iov)[i_].iov_len - skip_;                                      \
			if (n > left_)                                                             \
				n = left_;                                                         \
			body;                                                                      \
			done_ += n;                                                                \
			left_ -= n;                                                                \
			skip_ = 0;                                                                 \
		}                                                                                  \
		(len) = done_;                                                                     \
	} while (0)

void iov_memset(const struct iovec *iov, int iovcnt, size_t offset, int c, size_t len)
{
	IOV_FOR_RANGE(iov, iovcnt, offset, len, p, n, memset(p, c, n));
}

size_t iov_to_buf(const struct iovec *iov, int iovcnt, size_t offset, void *buf, size_t len)
{
	char *out = buf;
	IOV_FOR_RANGE(iov, iovcnt, offset, len, p, n, (memcpy(out, p, n), out += n));
	return len;
}

size_t iov_from_buf(const struct iovec *iov, int iovcnt, size_t offset, const void *buf, size_t len)
{
	const char *in = buf;
	IOV_FOR_RANGE(iov, iovcnt, offset, len, p, n, (memcpy(p, in, n), in += n));
	return len;
}

int iov_slice(const struct iovec *iov, int iovcnt, size_t offset, size_t len, struct iovec *out,
	      int out_max)
{
	size_t want = len;
	int used = 0;
	int err = 0;

	IOV_FOR_RANGE(iov, iovcnt, offset, len, p, n, {
		if (used >= out_max) {
			err = -EINVAL;
			break;
		}
		out[used].iov_base = p;
		out[used].iov_len = n;
		used++;
	});
	if (!err && len != want)
		err = -EINVAL; /* the range runs past the end of iov */
	return err ? err : used;
}

struct iovec *iov_scratch(struct iovec *local, int iovcnt, struct iovec **heap)
{
	*heap = NULL;
	if (iovcnt <= IOV_SCRATCH_MAX)
		return local;
	*heap = malloc(sizeof(**heap) * (size_t)iovcnt);
	return *heap;
}
