/* Keeping a probed raw image raw (QEMU's CVE-2008-2004).
 *
 * A raw disk opened without format= is raw only because nothing recognised its head. Its guest
 * owns those bytes, so it could write a qcow2 header naming /etc/shadow as backing file, or a
 * VMDK descriptor whose extent is /dev/sda, and the next probe would believe it. Every write
 * touching the first block_probe_window() bytes (the most any driver's probe reads) is therefore
 * applied to a copy of the current head first and refused if the result probes as a format.
 *
 * Check and write happen under one mutex per image: two writes in flight at once (an NCQ write
 * and a non-queued one, or two worker threads) are serialised over the window, so each is
 * checked against the head the other left, never both against the old one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "storage/block.h"
#include "storage/block_probe_guard.h"

struct block_probe_guard {
	pthread_mutex_t lock;
	size_t window; /* block_probe_window() */
	uint8_t *head; /* window bytes: the would-be head, used under lock */
};

int block_probe_guard_open(struct block_device *bs)
{
	struct block_probe_guard *g = calloc(1, sizeof(*g));
	size_t window = block_probe_window();

	if (!g)
		return block_error(-ENOMEM, "%s: out of memory", bs->filename);
	g->window = window;
	g->head = malloc(window ? window : 1);
	if (!g->head) {
		free(g);
		return block_error(-ENOMEM, "%s: out of memory", bs->filename);
	}
	pthread_mutex_init(&g->lock, NULL);
	bs->probe_guard = g;
	return 0;
}

void block_probe_guard_close(struct block_device *bs)
{
	struct block_probe_guard *g = bs->probe_guard;

	if (!g)
		return;
	pthread_mutex_destroy(&g->lock);
	free(g->head);
	free(g);
	bs->probe_guard = NULL;
}

bool block_probe_guarded(const struct block_device *bs, uint64_t offset)
{
	return bs->probe_guard && offset < bs->probe_guard->window;
}

int block_probe_guard_begin(struct block_device *bs, uint64_t offset, uint64_t len,
			    const struct iovec *iov, int iovcnt)
{
	struct block_probe_guard *g = bs->probe_guard;

	if (!g || offset >= g->window || len == 0)
		return 0;
	pthread_mutex_lock(&g->lock);
	/* The size is read under the lock too: a probe sees no more than the file holds. */
	size_t window = bs->size < g->window ? (size_t)bs->size : g->window;
	int ret = window ? host_file_pread(&bs->file, 0, g->head, window) : 0;
	if (ret < 0) {
		pthread_mutex_unlock(&g->lock);
		return block_error(ret, "%s: cannot read the first %zu bytes: %s", bs->filename,
				   window, strerror(-ret));
	}
	if (offset < window) {
		size_t n = len < window - offset ? (size_t)len : window - (size_t)offset;
		if (iov)
			iov_to_buf(iov, iovcnt, 0, g->head + offset, n);
		else
			memset(g->head + offset, 0, n);
	}
	const struct block_driver *drv = block_probe_head(g->head, window, bs->filename);
	if (drv) {
		pthread_mutex_unlock(&g->lock);
		return block_error(-EPERM,
				   "%s: refusing a write to the first %zu bytes that would make "
				   "this probed raw image look like %s (give format=raw)",
				   bs->filename, g->window, drv->name);
	}
	return 1;
}

void block_probe_guard_end(struct block_device *bs, int held)
{
	if (held > 0)
		pthread_mutex_unlock(&bs->probe_guard->lock);
}
