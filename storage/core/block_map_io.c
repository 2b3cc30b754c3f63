/* Mapped I/O: the request loop every table-mapped format shares.
 *
 * A driver knows only its map ("for offset O, how far does one mapping go, and is it in a host
 * file, zeroes, or the backing file?"); cutting the request into runs, slicing the iovec for each
 * and doing the plain cases live here once. Runs the driver must handle itself (compressed data,
 * allocation on write) go back to it through ops->io.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/core/block.h"

/* Every run of a write that is not in a host file needs the driver (it allocates). */
static int block_map_run(struct block_device *bs, const struct block_map_ops *ops, void *opaque,
			 uint64_t offset, const struct block_map *m, const struct iovec *part,
			 int n, bool write)
{
	struct host_file *f = m->file ? m->file : &bs->file;
	int ret;

	if (m->kind == BLOCK_MAP_HOST) {
		ret = write ? host_file_pwritev(f, m->host, part, n)
			    : host_file_preadv(f, m->host, part, n);
		if (ret < 0)
			return error_set(ret, "%s: %s at offset %llu failed: %s",
					 m->name ? m->name : bs->filename, write ? "write" : "read",
					 (unsigned long long)m->host, strerror(-ret));
		return 0;
	}
	if (m->kind == BLOCK_MAP_DRIVER || write) {
		if (!ops->io)
			return error_set(-EIO, "%s: no handler for a driver-mapped run",
					 bs->filename);
		return ops->io(bs, opaque, offset, m, part, n);
	}
	if (m->kind == BLOCK_MAP_ZERO) {
		iov_memset(part, n, 0, 0, m->len);
		return 0;
	}
	return block_read_backing(bs, offset, part, n);
}

static int block_map_rw(struct block_device *bs, uint64_t offset, const struct iovec *iov,
			int iovcnt, const struct block_map_ops *ops, void *opaque, bool write)
{
	struct iovec local[IOV_SCRATCH_MAX], *heap, *part = iov_scratch(local, iovcnt, &heap);
	size_t len = iov_size(iov, iovcnt), done = 0;
	int ret = 0;

	if (!part)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	while (done < len && ret == 0) {
		struct block_map m = {0};
		ret = ops->map(bs, opaque, offset + done, len - done, &m);
		if (ret < 0)
			break;
		/* A zero or too long run from a driver bug must not loop forever or overrun iov. */
		if (m.len == 0 || m.len > len - done) {
			ret = error_set(-EIO, "%s: bad mapping of offset %llu", bs->filename,
					(unsigned long long)(offset + done));
		} else {
			int n = iov_slice(iov, iovcnt, done, m.len, part, iovcnt);
			ret = n < 0 ? error_set(n, "%s: bad I/O vector", bs->filename)
				    : block_map_run(bs, ops, opaque, offset + done, &m, part, n,
						    write);
		}
		if (ops->end)
			ops->end(bs, opaque, &m);
		done += m.len;
	}
	free(heap);
	return ret;
}

int block_map_preadv(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt,
		     const struct block_map_ops *ops, void *opaque)
{
	return block_map_rw(bs, offset, iov, iovcnt, ops, opaque, false);
}

int block_map_pwritev(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt,
		      const struct block_map_ops *ops, void *opaque)
{
	return block_map_rw(bs, offset, iov, iovcnt, ops, opaque, true);
}
