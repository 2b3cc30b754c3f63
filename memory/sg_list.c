/* The scatter-gather walker (see sg_list.h). */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "memory/guest_memory.h"
#include "memory/sg_list.h"

void sg_list_init(struct sg_list *sg, const struct guest_memory *mem, struct iovec *iov,
		  unsigned max_segs, uint64_t max_bytes)
{
	*sg =
	    (struct sg_list){.mem = mem, .iov = iov, .max_segs = max_segs, .max_bytes = max_bytes};
}

void sg_list_init_host(struct sg_list *sg, struct iovec *iov, void *buf, size_t len)
{
	*iov = (struct iovec){buf, len};
	*sg = (struct sg_list){.iov = iov, .n = 1, .max_segs = 1, .bytes = len, .max_bytes = len};
}

void sg_list_clear(struct sg_list *sg)
{
	sg->n = 0;
	sg->bytes = 0;
}

int sg_list_add(struct sg_list *sg, uint64_t gpa, uint64_t len)
{
	if (!len)
		return 0;
	if (len > sg->max_bytes - sg->bytes)
		return -E2BIG;
	uint8_t *host = guest_memory_ptr(sg->mem, gpa, len);
	if (!host)
		return -EFAULT;
	struct iovec *last = sg->n ? &sg->iov[sg->n - 1] : NULL;
	if (last && (uint8_t *)last->iov_base + last->iov_len == host) {
		last->iov_len += len;
	} else {
		if (sg->n == sg->max_segs)
			return -ENOSPC;
		sg->iov[sg->n++] = (struct iovec){host, len};
	}
	sg->bytes += len;
	return 0;
}

/* Find the entry holding byte `off`: its index, and the offset inside it. */
static unsigned locate(const struct sg_list *sg, uint64_t off, uint64_t *inner)
{
	unsigned i = 0;
	while (i < sg->n && off >= sg->iov[i].iov_len) {
		off -= sg->iov[i].iov_len;
		i++;
	}
	*inner = off;
	return i;
}

static size_t copy(const struct sg_list *sg, uint64_t off, void *buf, size_t len, bool to_buf)
{
	uint64_t inner;
	size_t done = 0;
	for (unsigned i = locate(sg, off, &inner); i < sg->n && done < len; i++, inner = 0) {
		size_t piece = sg->iov[i].iov_len - inner;
		if (piece > len - done)
			piece = len - done;
		uint8_t *p = (uint8_t *)sg->iov[i].iov_base + inner;
		if (to_buf)
			memcpy((uint8_t *)buf + done, p, piece);
		else
			memcpy(p, (const uint8_t *)buf + done, piece);
		done += piece;
	}
	return done;
}

size_t sg_list_to_buf(const struct sg_list *sg, uint64_t off, void *buf, size_t len)
{
	return copy(sg, off, buf, len, true);
}

size_t sg_list_from_buf(const struct sg_list *sg, uint64_t off, const void *buf, size_t len)
{
	return copy(sg, off, (void *)buf, len, false);
}

int sg_list_slice(const struct sg_list *sg, uint64_t off, uint64_t len, struct iovec *dst,
		  unsigned dst_max)
{
	if (off > sg->bytes || len > sg->bytes - off)
		return -ERANGE;
	uint64_t inner;
	unsigned n = 0;
	for (unsigned i = locate(sg, off, &inner); len; i++, inner = 0) {
		uint64_t piece = sg->iov[i].iov_len - inner;
		if (piece > len)
			piece = len;
		if (n == dst_max)
			return -ENOSPC;
		dst[n++] = (struct iovec){(uint8_t *)sg->iov[i].iov_base + inner, piece};
		len -= piece;
	}
	return (int)n;
}

uint8_t *sg_list_byte(const struct sg_list *sg, uint64_t off)
{
	uint64_t inner;
	unsigned i = locate(sg, off, &inner);
	return i < sg->n ? (uint8_t *)sg->iov[i].iov_base + inner : NULL;
}
