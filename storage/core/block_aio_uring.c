/* The io_uring engine of block_aio: raw images without a backing chain, where a guest read or
 * write is exactly one readv/writev on the image file, skip the worker threads entirely.  So do
 * the reads of a format that maps them to one run of its file (drv->aio_map, held until the
 * completion is reaped) and its writes of whole new clusters (drv->aio_alloc); everything else of
 * such a format goes to the worker pool.
 *
 * The image file is registered with the ring (no per-request fd lookup) and so is the context's
 * eventfd, so the kernel signals completions on the same fd the pool uses.  Only what io_uring does
 * as well as a thread goes here: READ, WRITE and FLUSH (fsync DATASYNC).  Writes of a raw image are
 * not among them: the kernel finishes an asynchronous O_DIRECT write (ext4, xfs: iomap) in a
 * kworker, so each completion waits for that kworker to get a CPU, and on a loaded host the disk
 * idles between them (every write completion of a run went through iomap_dio_complete_work; the
 * device saw 2 requests in flight on average against qemu-img's 8-14); a synchronous pwritev in
 * a worker thread is completed in the thread the disk's interrupt wakes.  Buffered writes gain
 * nothing either: io_uring hands every one to its own io-wq threads, one file's in turn.  So raw
 * writes go to the worker pool, which the context sizes for them, and so do a format's overwrites
 * of clusters it has (16384 64 KiB qcow2 overwrites: 10465 io_uring_enter and 2.6 s through the
 * ring, 4113 joined pwritev and 0.9 s in the pool, qemu-img 1.0 s, at load 19).  Discard and write
 * zeroes need the fallback chain of host_file, O_DIRECT requests that are not aligned need its
 * bounce buffers, and short transfers (EOF, signals) need its retry loop: those go to the worker
 * pool. The ring is guarded by one mutex because a context may be shared by several threads.
 *
 * Submissions are batched: while the context is plugged (a controller queueing several commands
 * from one doorbell, or block_aio_complete running callbacks that submit the next requests),
 * prepared SQEs only wait in the shared ring, and the last unplug hands them all to the kernel in
 * one io_uring_enter.  Nothing waits longer than the plugging call.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>

#include "storage/core/block.h"
#include "storage/core/block_aio_impl.h"

struct block_aio_uring {
	struct io_uring ring;
	pthread_mutex_t lock;
	unsigned depth, inflight;
	unsigned plugged; /* > 0: SQEs wait in the ring for the last unplug */
	struct block_aio_req *wait_head, *wait_tail; /* waiting for ring space */
};

/* A raw image: every read and write is the same range of the file, and a flush is its fsync. */
static bool block_aio_uring_raw(const struct block_device *bs)
{
	return bs->drv && strcmp(bs->drv->name, "raw") == 0 && !bs->backing;
}

bool block_aio_uring_usable(struct block_device *bs)
{
	return block_aio_uring_raw(bs) || (bs->drv && bs->drv->aio_map);
}

bool block_aio_uring_needs_pool(struct block_device *bs)
{
	return !block_aio_uring_raw(bs) || (bs->flags & BLOCK_OPEN_RDWR);
}

int block_aio_uring_init(struct block_aio_ctx *ctx, int depth)
{
	struct block_aio_uring *u = calloc(1, sizeof(*u));
	int ret;

	if (!u)
		return -ENOMEM;
	ret = io_uring_queue_init((unsigned)depth, &u->ring, 0);
	if (ret < 0) {
		free(u);
		return ret;
	}
	ret = io_uring_register_files(&u->ring, &ctx->bs->file.fd, 1);
	if (ret == 0)
		ret = io_uring_register_eventfd(&u->ring, ctx->efd);
	if (ret < 0) {
		io_uring_queue_exit(&u->ring);
		free(u);
		return ret;
	}
	pthread_mutex_init(&u->lock, NULL);
	u->depth = (unsigned)depth;
	ctx->uring = u;
	return 0;
}

void block_aio_uring_exit(struct block_aio_ctx *ctx)
{
	struct block_aio_uring *u = ctx->uring;

	/* Unregistering drops the ring's reference to the image now: io_uring_queue_exit alone
	 * tears the ring down in a kernel worker, so the file (and its OFD lock) would outlive
	 * block_close for a moment and a program opening the image next could find it locked. */
	io_uring_unregister_files(&u->ring);
	io_uring_queue_exit(&u->ring);
	pthread_mutex_destroy(&u->lock);
	free(u);
	ctx->uring = NULL;
}

static bool block_aio_uring_aligned(const struct host_file *f, const struct block_aio_req *req)
{
	uint64_t mask = f->align - 1;

	if (!f->direct)
		return true;
	if (req->host & mask)
		return false;
	for (int i = 0; i < req->iovcnt; i++)
		if (((uintptr_t)req->iov[i].iov_base | req->iov[i].iov_len) & mask)
			return false;
	return true;
}

/* Put req in the ring; the caller holds u->lock, has checked for space, and submits. */
static void block_aio_uring_prep(struct block_aio_ctx *ctx, struct block_aio_req *req)
{
	struct block_aio_uring *u = ctx->uring;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	/* inflight < depth guarantees a free SQE: every prepared SQE is submitted at once. */
	if (req->op == BLOCK_AIO_READ)
		io_uring_prep_readv(sqe, 0, req->iov, (unsigned)req->iovcnt, req->host);
	else if (req->op == BLOCK_AIO_WRITE)
		io_uring_prep_writev(sqe, 0, req->iov, (unsigned)req->iovcnt, req->host);
	else
		io_uring_prep_fsync(sqe, 0, IORING_FSYNC_DATASYNC);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, req);
	u->inflight++;
}

/* Hand prepared SQEs to the kernel.  They already sit in the shared ring, so a transient refusal
 * (EAGAIN, EBUSY while the completion ring is full) loses nothing: the next reap, or the next
 * block_aio_poll, submits them again (block_aio_uring_stalled). */
static void block_aio_uring_flush_sq(struct block_aio_ctx *ctx)
{
	struct block_aio_uring *u = ctx->uring;
	int ret;

	if (u->plugged || !io_uring_sq_ready(&u->ring))
		return;
	atomic_fetch_add(&ctx->kernel_submits, 1);
	do
		ret = io_uring_submit(&u->ring);
	while (ret == -EINTR);
}

void block_aio_uring_plug(struct block_aio_ctx *ctx)
{
	struct block_aio_uring *u = ctx->uring;

	pthread_mutex_lock(&u->lock);
	u->plugged++;
	pthread_mutex_unlock(&u->lock);
}

void block_aio_uring_unplug(struct block_aio_ctx *ctx)
{
	struct block_aio_uring *u = ctx->uring;

	pthread_mutex_lock(&u->lock);
	if (u->plugged && --u->plugged == 0)
		block_aio_uring_flush_sq(ctx);
	pthread_mutex_unlock(&u->lock);
}

bool block_aio_uring_stalled(struct block_aio_ctx *ctx)
{
	struct block_aio_uring *u = ctx->uring;
	bool stalled;

	pthread_mutex_lock(&u->lock);
	stalled = !u->plugged && io_uring_sq_ready(&u->ring) > 0;
	pthread_mutex_unlock(&u->lock);
	return stalled;
}

/* Release the driver's hold on the clusters of a mapped request (it finished, or goes to the pool,
 * which maps it again). */
static void block_aio_uring_unmap(struct block_aio_ctx *ctx, struct block_aio_req *req)
{
	if (req->mapped) {
		req->mapped = false;
		ctx->bs->drv->aio_map_end(ctx->bs);
	}
}

/* End an allocating write (aio_alloc): with result 0 the driver maps the new clusters, otherwise
 * it frees them; returns the request's result, or -EWOULDBLOCK (nothing done) when that needs
 * I/O and may_block is false. */
static int block_aio_uring_alloc_end(struct block_aio_ctx *ctx, struct block_aio_req *req,
				     int result, bool may_block)
{
	struct block_device *bs = ctx->bs;
	int ret = bs->drv->aio_alloc_end(bs, req->offset, block_aio_req_len(req), req->host, result,
					 may_block);

	if (ret != -EWOULDBLOCK || may_block)
		req->allocating = false;
	return ret;
}

/* A write to clusters the driver must allocate, when they need nothing but the data: the driver
 * reserves them and the data goes through the ring like any other write (0; 1: the pool). */
static int block_aio_uring_alloc(struct block_aio_ctx *ctx, struct block_aio_req *req, uint64_t len)
{
	struct block_device *bs = ctx->bs;

	if (req->op != BLOCK_AIO_WRITE || !bs->drv->aio_alloc ||
	    bs->drv->aio_alloc(bs, req->offset, len, &req->host) != 0)
		return 1;
	req->allocating = true;
	if (!block_aio_uring_aligned(&bs->file, req)) {
		block_aio_uring_alloc_end(ctx, req, -ECANCELED, true);
		return 1;
	}
	return 0;
}

int block_aio_uring_submit(struct block_aio_ctx *ctx, struct block_aio_req *req)
{
	struct block_aio_uring *u = ctx->uring;
	struct host_file *f = &ctx->bs->file;

	struct block_device *bs = ctx->bs;
	bool raw = block_aio_uring_raw(bs);

	req->host = req->offset;
	req->mapped = false;
	req->allocating = false;
	switch (req->op) {
	case BLOCK_AIO_WRITE:
		/* Raw writes and a format's overwrites go to the worker pool (see the top of this
		 * file); only a format's writes of whole new clusters take the ring (aligned
		 * there). */
		if (raw || req->iovcnt == 0 || block_aio_req_len(req) == 0 ||
		    block_aio_uring_alloc(ctx, req, block_aio_req_len(req)) != 0)
			return 1; /* the driver's own path (errors are found again there) */
		break;
	case BLOCK_AIO_READ:
		if (req->iovcnt == 0)
			return 1;
		if (!raw) {
			uint64_t len = block_aio_req_len(req);
			if (len == 0 ||
			    bs->drv->aio_map(bs, req->offset, len, false, &req->host) != 0)
				return 1; /* the driver's own path (errors are found again there) */
			req->mapped = true;
		}
		if (!block_aio_uring_aligned(f, req)) {
			block_aio_uring_unmap(ctx, req);
			return 1;
		}
		break;
	case BLOCK_AIO_FLUSH:
		if (!raw)
			return 1; /* a format's flush writes its metadata first */
		if (f->cache_unsafe || f->read_only) {
			block_aio_finish(ctx, req, 0);
			return 0;
		}
		break;
	default:
		return 1;
	}
	pthread_mutex_lock(&u->lock);
	if (u->inflight >= u->depth) {
		req->next = NULL;
		if (u->wait_tail)
			u->wait_tail->next = req;
		else
			u->wait_head = req;
		u->wait_tail = req;
	} else {
		block_aio_uring_prep(ctx, req);
		block_aio_uring_flush_sq(ctx);
	}
	pthread_mutex_unlock(&u->lock);
	return 0;
}

void block_aio_uring_reap(struct block_aio_ctx *ctx, struct block_aio_req **list)
{
	struct block_aio_uring *u = ctx->uring;
	struct io_uring_cqe *cqe;
	struct block_aio_req *allocs = NULL;
	unsigned head, seen = 0;

	pthread_mutex_lock(&u->lock);
	io_uring_for_each_cqe(&u->ring, head, cqe)
	{
		struct block_aio_req *req = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		seen++;
		u->inflight--;
		if (req->allocating) {
			/* Mapped below, outside the ring's lock: the driver may do metadata I/O. */
			req->ret = res;
			req->next = allocs;
			allocs = req;
			continue;
		}
		block_aio_uring_unmap(ctx, req);
		if (res == -EINTR || res == -EAGAIN) {
			block_aio_pool_queue(ctx, req); /* let the retry loop of host_file do it */
			continue;
		}
		if (res >= 0 && req->op != BLOCK_AIO_FLUSH &&
		    req->done + (uint64_t)res < block_aio_req_len(req)) {
			req->done +=
			    (uint64_t)res; /* short: EOF or a signal; the pool finishes it */
			block_aio_pool_queue(ctx, req);
			continue;
		}
		req->ret = res < 0 ? res : 0;
		req->next = *list;
		*list = req;
	}
	io_uring_cq_advance(&u->ring, seen);
	/* Refill the ring from the requests that waited for space. */
	while (u->wait_head && u->inflight < u->depth) {
		struct block_aio_req *req = u->wait_head;
		u->wait_head = req->next;
		if (!u->wait_head)
			u->wait_tail = NULL;
		block_aio_uring_prep(ctx, req);
	}
	block_aio_uring_flush_sq(ctx);
	pthread_mutex_unlock(&u->lock);

	struct block_aio_req *req;
	while ((req = allocs)) {
		allocs = req->next;
		if (block_aio_uring_alloc_done(ctx, req, false) == 0) {
			req->next = *list;
			*list = req;
		} else if (req->allocating) {
			/* The mapping needs metadata I/O (an L2 table to load): a worker does it,
			 * off the loop that reaps, and delivers the completion. */
			atomic_fetch_add(&ctx->alloc_ends_in_pool, 1);
			block_aio_pool_queue(ctx, req);
		}
	}
}

int block_aio_uring_alloc_done(struct block_aio_ctx *ctx, struct block_aio_req *req, bool may_block)
{
	int res = req->ret;
	bool whole = res >= 0 && (uint64_t)res == block_aio_req_len(req);
	int ret = block_aio_uring_alloc_end(ctx, req, whole ? 0 : res < 0 ? res : -EIO, may_block);

	if (req->allocating)
		return 1; /* -EWOULDBLOCK: req->ret still holds the write's result */
	if (!whole && (res >= 0 || res == -EINTR || res == -EAGAIN)) {
		/* Short or interrupted: the reservation is gone, the pool's path writes the whole
		 * request again (and allocates anew). */
		req->done = 0;
		block_aio_pool_queue(ctx, req);
		return 1;
	}
	req->ret = ret;
	return 0;
}
