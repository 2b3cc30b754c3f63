/* Asynchronous block I/O: contexts, request validation, the worker pool and completion delivery
 * (the contract is in block_aio.h; the io_uring engine is in block_aio_uring.c).
 *
 * Workers run the synchronous block_* functions, which are thread-safe for every driver, so the
 * pool is the engine that always works.  Completions are never delivered from a worker: they are
 * queued and the eventfd is signalled, and the owner of the context runs callbacks from its own
 * event loop (block_aio_complete), which keeps controller code single-threaded.  A controller
 * whose driver polls may run them on the polling vCPU instead (block_aio_complete_polled); one
 * thread at a time runs a context's completions (complete_lock).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/sandbox.h"
#include "storage/core/block.h"
#include "storage/core/block_fault.h"
#include "storage/core/block_aio_impl.h"

#define BLOCK_AIO_DEFAULT_THREADS 8 /* block-bench: 4 KiB qd32 scales to ~8 workers */
#define BLOCK_AIO_URING_THREADS 2   /* side pool of the io_uring engine: discard, zeroes, rests */
#define BLOCK_AIO_DEFAULT_DEPTH 128
#define BLOCK_AIO_MAX_THREADS 64
#define BLOCK_AIO_MAX_DEPTH 4096

uint64_t block_aio_req_len(const struct block_aio_req *req)
{
	if (req->op == BLOCK_AIO_READ || req->op == BLOCK_AIO_WRITE)
		return iov_size(req->iov, req->iovcnt);
	return req->op == BLOCK_AIO_FLUSH ? 0 : req->len;
}

void block_aio_finish(struct block_aio_ctx *ctx, struct block_aio_req *req, int ret)
{
	uint64_t one = 1;

	bool first;

	req->ret = ret;
	req->next = NULL;
	pthread_mutex_lock(&ctx->done_lock);
	first = !ctx->done_head;
	if (ctx->done_tail)
		ctx->done_tail->next = req;
	else
		ctx->done_head = req;
	ctx->done_tail = req;
	pthread_mutex_unlock(&ctx->done_lock);
	/* One wake-up per batch: block_aio_complete takes the whole list, and whoever makes it
	 * non-empty again signals.  Only fails when the counter would overflow, and then it is
	 * readable anyway. */
	if (first && write(ctx->efd, &one, sizeof(one)) < 0) {
	}
}

/* ---- Worker pool ---- */

static bool block_aio_mergeable(const struct block_aio_req *req);

/* Whether req continues prev on the disk, so a worker taking prev takes req with it. */
static bool block_aio_continues(const struct block_aio_req *prev, const struct block_aio_req *req)
{
	return block_aio_mergeable(prev) && block_aio_mergeable(req) && prev->op == req->op &&
	       prev->offset + iov_size(prev->iov, prev->iovcnt) == req->offset;
}

void block_aio_pool_queue(struct block_aio_ctx *ctx, struct block_aio_req *req)
{
	req->next = NULL;
	pthread_mutex_lock(&ctx->lock);
	/* A request that continues the queue's last one needs no worker of its own: the one woken
	 * for the run takes it along, or (past the merge limit) comes back for it, as every worker
	 * looks at the queue again before it waits.  Waking one per request woke workers that
	 * found the queue empty: 87000 futex calls for 20000 sequential 64 KiB writes. */
	bool wake = !ctx->work_tail || !block_aio_continues(ctx->work_tail, req);
	if (ctx->work_tail)
		ctx->work_tail->next = req;
	else
		ctx->work_head = req;
	ctx->work_tail = req;
	if (wake)
		pthread_cond_signal(&ctx->cond);
	pthread_mutex_unlock(&ctx->lock);
}

/* Read or write what is left of req, from req->done on. */
static int block_aio_rw(struct block_aio_ctx *ctx, struct block_aio_req *req)
{
	bool write = req->op == BLOCK_AIO_WRITE;
	int ret;

	if (req->done == 0)
		return write ? block_pwritev(ctx->bs, req->offset, req->iov, req->iovcnt)
			     : block_preadv(ctx->bs, req->offset, req->iov, req->iovcnt);
	size_t len = iov_size(req->iov, req->iovcnt) - req->done;
	struct iovec *rest = malloc(sizeof(*rest) * req->iovcnt);
	if (!rest)
		return -ENOMEM;
	int n = iov_slice(req->iov, req->iovcnt, req->done, len, rest, req->iovcnt);
	if (n < 0)
		ret = n;
	else if (write)
		ret = block_pwritev(ctx->bs, req->offset + req->done, rest, n);
	else
		ret = block_preadv(ctx->bs, req->offset + req->done, rest, n);
	free(rest);
	return ret;
}

static int block_aio_execute(struct block_aio_ctx *ctx, struct block_aio_req *req)
{
	switch (req->op) {
	case BLOCK_AIO_READ:
	case BLOCK_AIO_WRITE:
		return block_aio_rw(ctx, req);
	case BLOCK_AIO_FLUSH:
		return block_flush(ctx->bs);
	case BLOCK_AIO_DISCARD:
		return block_discard(ctx->bs, req->offset, req->len);
	case BLOCK_AIO_WRITE_ZEROES:
		return block_write_zeroes(ctx->bs, req->offset, req->len, req->flags);
	}
	return -EINVAL;
}

/* A read or write the pool may join with its neighbours (not a partial rest, not an allocation
 * io_uring began). */
static bool block_aio_mergeable(const struct block_aio_req *req)
{
	return (req->op == BLOCK_AIO_READ || req->op == BLOCK_AIO_WRITE) && req->done == 0 &&
	       !req->allocating;
}

/* Under ctx->lock: take the queue's head and the requests right behind it that continue it on
 * the disk (same operation, next offset), up to BLOCK_AIO_MERGE_BYTES and BLOCK_AIO_MERGE_IOVS.
 * A guest's (or the bench's) sequential requests arrive in order, and one system call for them
 * gives the disk one large request where a worker each would keep only a few in flight. */
struct block_aio_req *block_aio_pool_take(struct block_aio_ctx *ctx)
{
	struct block_aio_req *head = ctx->work_head, *last = head;

	if (!head)
		return NULL;
	if (block_aio_mergeable(head)) {
		uint64_t end = head->offset + iov_size(head->iov, head->iovcnt);
		uint64_t bytes = end - head->offset;
		int iovs = head->iovcnt;
		for (struct block_aio_req *r = head->next;
		     r && block_aio_mergeable(r) && r->op == head->op && r->offset == end;
		     r = r->next) {
			uint64_t len = iov_size(r->iov, r->iovcnt);
			if (bytes + len > BLOCK_AIO_MERGE_BYTES ||
			    iovs + r->iovcnt > BLOCK_AIO_MERGE_IOVS)
				break;
			bytes += len;
			end += len;
			iovs += r->iovcnt;
			last = r;
		}
	}
	ctx->work_head = last->next;
	if (!ctx->work_head)
		ctx->work_tail = NULL;
	last->next = NULL;
	return head;
}

/* Run a chain of adjacent requests (block_aio_pool_take) as one transfer; on an error each runs
 * alone, so every request gets its own status. */
static void block_aio_run_chain(struct block_aio_ctx *ctx, struct block_aio_req *head)
{
	struct iovec iov[BLOCK_AIO_MERGE_IOVS];
	struct block_aio_req *req, *next;
	int n = 0, ret;

	for (req = head; req; req = req->next) {
		memcpy(&iov[n], req->iov, sizeof(*iov) * (size_t)req->iovcnt);
		n += req->iovcnt;
	}
	ret = head->op == BLOCK_AIO_WRITE ? block_pwritev(ctx->bs, head->offset, iov, n)
					  : block_preadv(ctx->bs, head->offset, iov, n);
	for (req = head; req; req = next) {
		next = req->next;
		block_aio_finish(ctx, req, ret < 0 ? block_aio_execute(ctx, req) : ret);
	}
}

static void *block_aio_worker(void *arg)
{
	struct block_aio_ctx *ctx = arg;

	pthread_mutex_lock(&ctx->lock);
	for (;;) {
		while (!ctx->work_head && !ctx->stopping)
			pthread_cond_wait(&ctx->cond, &ctx->lock);
		struct block_aio_req *req = block_aio_pool_take(ctx);
		if (!req)
			break; /* stopping, and nothing left */
		pthread_mutex_unlock(&ctx->lock);
		sandbox_enter(SANDBOX_IO); /* once the VM is set up (lib/sandbox.h) */
		if (req->next)
			block_aio_run_chain(ctx, req);
		else if (!req->allocating)
			block_aio_finish(ctx, req, block_aio_execute(ctx, req));
		else if (block_aio_uring_alloc_done(ctx, req, true) == 0)
			block_aio_finish(ctx, req, req->ret); /* io_uring wrote it, we mapped it */
		pthread_mutex_lock(&ctx->lock);
	}
	pthread_mutex_unlock(&ctx->lock);
	return NULL;
}

static void block_aio_pool_stop(struct block_aio_ctx *ctx)
{
	pthread_mutex_lock(&ctx->lock);
	ctx->stopping = true;
	pthread_cond_broadcast(&ctx->cond);
	pthread_mutex_unlock(&ctx->lock);
	for (int i = 0; i < ctx->nthreads; i++)
		pthread_join(ctx->threads[i], NULL);
	ctx->nthreads = 0;
}

static int block_aio_pool_start(struct block_aio_ctx *ctx, int n)
{
	ctx->threads = calloc((size_t)n, sizeof(*ctx->threads));
	if (!ctx->threads)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		int ret = pthread_create(&ctx->threads[i], NULL, block_aio_worker, ctx);
		if (ret) {
			block_aio_pool_stop(ctx);
			return -ret;
		}
		ctx->nthreads++;
	}
	return 0;
}

/* ---- Contexts ---- */

int block_aio_open(struct block_device *bs, const struct block_aio_config *cfg,
		   struct block_aio_ctx **out)
{
	struct block_aio_config c = cfg ? *cfg : (struct block_aio_config){0};
	struct block_aio_ctx *ctx;
	int ret;

	*out = NULL;
	if (c.threads < 0 || c.threads > BLOCK_AIO_MAX_THREADS || c.queue_depth < 0 ||
	    c.queue_depth > BLOCK_AIO_MAX_DEPTH || c.engine > BLOCK_AIO_ENGINE_URING)
		return error_set(-EINVAL, "%s: bad asynchronous I/O configuration", bs->filename);
	if (c.engine == BLOCK_AIO_ENGINE_URING && !block_aio_uring_usable(bs))
		return error_set(-ENOTSUP,
				 "%s: io_uring needs a raw image without backing file, or a "
				 "format that maps requests",
				 bs->filename);
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	ctx->bs = bs;
	pthread_mutex_init(&ctx->lock, NULL);
	pthread_cond_init(&ctx->cond, NULL);
	pthread_mutex_init(&ctx->done_lock, NULL);
	pthread_mutex_init(&ctx->complete_lock, NULL);
	ctx->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ctx->efd < 0) {
		ret = error_set(-errno, "%s: eventfd: %s", bs->filename, strerror(errno));
		goto fail;
	}
	ctx->engine = BLOCK_AIO_ENGINE_THREADS;
	if (c.engine != BLOCK_AIO_ENGINE_THREADS && block_aio_uring_usable(bs)) {
		ret = block_aio_uring_init(ctx,
					   c.queue_depth ? c.queue_depth : BLOCK_AIO_DEFAULT_DEPTH);
		if (ret == 0)
			ctx->engine = BLOCK_AIO_ENGINE_URING;
		else if (c.engine == BLOCK_AIO_ENGINE_URING) {
			error_set(ret, "%s: io_uring unavailable: %s", bs->filename,
				  strerror(-ret));
			goto fail;
		}
		/* AUTO: the kernel or a seccomp filter refused io_uring; threads will do. */
	}
	int threads =
	    c.threads ? c.threads
		      : (ctx->engine == BLOCK_AIO_ENGINE_URING && !block_aio_uring_needs_pool(bs)
			     ? BLOCK_AIO_URING_THREADS
			     : BLOCK_AIO_DEFAULT_THREADS);
	ret = block_aio_pool_start(ctx, threads);
	if (ret < 0) {
		error_set(ret, "%s: cannot start I/O threads: %s", bs->filename, strerror(-ret));
		goto fail;
	}
	*out = ctx;
	return 0;
fail:
	if (ctx->uring)
		block_aio_uring_exit(ctx);
	if (ctx->efd >= 0)
		close(ctx->efd);
	free(ctx->threads);
	free(ctx);
	return ret;
}

void block_aio_close(struct block_aio_ctx *ctx)
{
	if (!ctx)
		return;
	block_aio_release_stopped(ctx); /* nobody will retry them now */
	while (block_aio_pending(ctx))
		block_aio_poll(ctx, -1);
	block_aio_pool_stop(ctx);
	if (ctx->uring)
		block_aio_uring_exit(ctx);
	close(ctx->efd);
	pthread_mutex_destroy(&ctx->lock);
	pthread_cond_destroy(&ctx->cond);
	pthread_mutex_destroy(&ctx->done_lock);
	pthread_mutex_destroy(&ctx->complete_lock);
	free(ctx->threads);
	free(ctx);
}

enum block_aio_engine block_aio_engine(const struct block_aio_ctx *ctx)
{
	return ctx->engine;
}

int block_aio_fd(const struct block_aio_ctx *ctx)
{
	return ctx->efd;
}

unsigned block_aio_pending(const struct block_aio_ctx *ctx)
{
	return atomic_load(&ctx->pending);
}

unsigned block_aio_flush_count(const struct block_aio_ctx *ctx)
{
	return atomic_load(&ctx->flushes);
}

unsigned block_aio_kernel_submits(const struct block_aio_ctx *ctx)
{
	return atomic_load(&ctx->kernel_submits);
}

unsigned block_aio_alloc_ends_in_pool(const struct block_aio_ctx *ctx)
{
	return atomic_load(&ctx->alloc_ends_in_pool);
}

void block_aio_plug(struct block_aio_ctx *ctx)
{
	if (ctx->uring)
		block_aio_uring_plug(ctx);
}

void block_aio_unplug(struct block_aio_ctx *ctx)
{
	if (ctx->uring)
		block_aio_uring_unplug(ctx);
}

/* ---- Submission and completion ---- */

static int block_aio_validate(struct block_aio_ctx *ctx, struct block_aio_req *req)
{
	struct block_device *bs = ctx->bs;
	bool write = req->op != BLOCK_AIO_READ;

	if (!req->cb)
		return error_set(-EINVAL, "%s: asynchronous request without callback",
				 bs->filename);
	switch (req->op) {
	case BLOCK_AIO_READ:
	case BLOCK_AIO_WRITE:
		if (req->iovcnt < 0 || req->iovcnt > IOV_MAX || (req->iovcnt && !req->iov))
			return error_set(-EINVAL, "%s: bad iovec count %d", bs->filename,
					 req->iovcnt);
		break;
	case BLOCK_AIO_FLUSH:
		return 0;
	case BLOCK_AIO_WRITE_ZEROES:
		if (req->flags & ~BLOCK_ZERO_MAY_UNMAP)
			return error_set(-EINVAL, "%s: bad write-zeroes flags %#x", bs->filename,
					 req->flags);
		break;
	case BLOCK_AIO_DISCARD:
		break;
	default:
		return error_set(-EINVAL, "%s: unknown asynchronous operation %d", bs->filename,
				 (int)req->op);
	}
	uint64_t len = block_aio_req_len(req);
	if (req->offset > bs->size || len > bs->size - req->offset)
		return error_set(-EINVAL, "%s: request [%llu, +%llu) beyond the virtual size %llu",
				 bs->filename, (unsigned long long)req->offset,
				 (unsigned long long)len, (unsigned long long)bs->size);
	if (write && !(bs->flags & BLOCK_OPEN_RDWR))
		return error_set(-EROFS, "%s: image opened read-only", bs->filename);
	return 0;
}

int block_aio_submit(struct block_aio_ctx *ctx, struct block_aio_req *req)
{
	int ret = block_aio_validate(ctx, req);

	if (ret < 0)
		return ret;
	req->done = 0;
	req->ret = 0;
	req->released = false;
	req->allocating = false; /* the workers look at it (block_aio_uring_alloc_done) */
	atomic_fetch_add(&ctx->pending, 1);
	if (req->op == BLOCK_AIO_FLUSH)
		atomic_fetch_add(&ctx->flushes, 1);
	if ((ret = block_fault_injected(req->op != BLOCK_AIO_READ)) < 0) {
		block_aio_finish(ctx, req, ret); /* tests only: storage/core/block_fault.h */
		return 0;
	}
	if (ctx->uring && block_aio_uring_submit(ctx, req) == 0)
		return 0;
	block_aio_pool_queue(ctx, req);
	return 0;
}

static bool block_aio_should_stop(const struct block_aio_ctx *ctx, const struct block_aio_req *req);
static void park(struct block_aio_ctx *ctx, struct block_aio_req *req);

/* Under complete_lock: reap the ring, take the done list and run the callbacks.  A failed write
 * that werror=stop holds is parked (*parked set) or, when `polled`, queued again for the loop's
 * block_aio_complete, which parks it and asks for the pause on the loop thread. */
static int run_completions(struct block_aio_ctx *ctx, bool polled, bool *parked)
{
	struct block_aio_req *list = NULL, *tail = NULL, *req;
	int n = 0;

	/* The refill of the ring and every request the callbacks submit go in one system call. */
	block_aio_plug(ctx);
	if (ctx->uring)
		block_aio_uring_reap(ctx, &list);
	for (tail = list; tail && tail->next; tail = tail->next)
		;
	pthread_mutex_lock(&ctx->done_lock);
	if (tail)
		tail->next = ctx->done_head;
	else
		list = ctx->done_head;
	ctx->done_head = ctx->done_tail = NULL;
	pthread_mutex_unlock(&ctx->done_lock);

	while ((req = list)) {
		list = req->next;
		req->next = NULL;
		if (block_aio_should_stop(ctx, req)) {
			if (polled) {
				atomic_store(&ctx->stop_deferred, true);
				block_aio_finish(ctx, req, req->ret);
			} else {
				park(ctx, req);
				*parked = true;
			}
			continue;
		}
		atomic_fetch_sub(&ctx->pending, 1);
		req->cb(req, req->ret);
		n++;
	}
	block_aio_unplug(ctx);
	return n;
}

int block_aio_complete(struct block_aio_ctx *ctx)
{
	bool parked = false;
	uint64_t count;

	atomic_fetch_add(&ctx->complete_waiters, 1);
	pthread_mutex_lock(&ctx->complete_lock);
	atomic_fetch_sub(&ctx->complete_waiters, 1);
	atomic_store(&ctx->stop_deferred, false); /* what it left is in the done list */
	/* Clear the eventfd before looking, so a completion after the look re-arms it. */
	if (read(ctx->efd, &count, sizeof(count)) < 0) {
	}
	int n = run_completions(ctx, false, &parked);
	pthread_mutex_unlock(&ctx->complete_lock);
	if (parked)
		ctx->stopped(ctx->stopped_opaque);
	return n;
}

/* Never waits: -EBUSY when another thread runs or waits to run the completions.  The eventfd
 * is left as it is: every request taken here was finished after the last
 * block_aio_complete read it (that one holds complete_lock from its read until it has taken
 * everything there was), and each such finish signalled it or joined a batch that did.  So the
 * loop's block_aio_complete runs after this one, and whoever waits for its turn (a drain) sees
 * the callbacks done. */
int block_aio_complete_polled(struct block_aio_ctx *ctx)
{
	bool parked = false;

	if (atomic_load(&ctx->complete_waiters) || atomic_load(&ctx->stop_deferred) ||
	    pthread_mutex_trylock(&ctx->complete_lock) != 0)
		return -EBUSY;
	int n = run_completions(ctx, true, &parked);
	pthread_mutex_unlock(&ctx->complete_lock);
	return n;
}

/* ---- werror=stop ---- */

static bool block_aio_should_stop(const struct block_aio_ctx *ctx, const struct block_aio_req *req)
{
	return ctx->stopped && !req->released && req->op != BLOCK_AIO_READ &&
	       (req->ret == -ENOSPC || req->ret == -EIO || req->ret == -EDQUOT);
}

static void park(struct block_aio_ctx *ctx, struct block_aio_req *req)
{
	pthread_mutex_lock(&ctx->done_lock);
	if (ctx->stopped_tail)
		ctx->stopped_tail->next = req;
	else
		ctx->stopped_head = req;
	ctx->stopped_tail = req;
	pthread_mutex_unlock(&ctx->done_lock);
}

void block_aio_set_stop_on_error(struct block_aio_ctx *ctx, void (*stopped)(void *opaque),
				 void *opaque)
{
	ctx->stopped = stopped;
	ctx->stopped_opaque = opaque;
}

static struct block_aio_req *take_stopped(struct block_aio_ctx *ctx)
{
	pthread_mutex_lock(&ctx->done_lock);
	struct block_aio_req *list = ctx->stopped_head;
	ctx->stopped_head = ctx->stopped_tail = NULL;
	pthread_mutex_unlock(&ctx->done_lock);
	return list;
}

unsigned block_aio_retry_stopped(struct block_aio_ctx *ctx)
{
	struct block_aio_req *req, *list = take_stopped(ctx);
	unsigned n = 0;

	while ((req = list)) {
		list = req->next;
		req->done = 0; /* the whole request again: what was written is written again */
		req->ret = 0;
		if (!ctx->uring || block_aio_uring_submit(ctx, req) != 0)
			block_aio_pool_queue(ctx, req);
		n++;
	}
	return n;
}

unsigned block_aio_release_stopped(struct block_aio_ctx *ctx)
{
	struct block_aio_req *req, *list = take_stopped(ctx);
	unsigned n = 0;

	/* Back through the done list with their error: the callbacks run where completions
	 * always run, and these are not parked again. */
	while ((req = list)) {
		list = req->next;
		req->released = true;
		block_aio_finish(ctx, req, req->ret);
		n++;
	}
	return n;
}

unsigned block_aio_stopped_count(struct block_aio_ctx *ctx)
{
	unsigned n = 0;
	pthread_mutex_lock(&ctx->done_lock);
	for (struct block_aio_req *r = ctx->stopped_head; r; r = r->next)
		n++;
	pthread_mutex_unlock(&ctx->done_lock);
	return n;
}

static int64_t block_aio_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The eventfd can wake us for completions an earlier call already ran (a worker queues, then
 * signals; the kernel posts a CQE, then signals), so a wake-up with nothing to do waits again. */
int block_aio_poll(struct block_aio_ctx *ctx, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : block_aio_now_ms() + timeout_ms;

	for (;;) {
		int n = block_aio_complete(ctx);
		/* Writes parked by werror=stop wait for a retry, not for us. */
		if (n || block_aio_pending(ctx) <= block_aio_stopped_count(ctx))
			return n;
		int wait = -1;
		if (deadline >= 0) {
			int64_t left = deadline - block_aio_now_ms();
			if (left <= 0)
				return 0;
			wait = left > INT32_MAX ? INT32_MAX : (int)left;
		}
		/* A refused io_uring submission is retried by the next reap: do not sleep long. */
		if (ctx->uring && block_aio_uring_stalled(ctx) && (wait < 0 || wait > 1))
			wait = 1;
		struct pollfd p = {.fd = ctx->efd, .events = POLLIN};
		if (poll(&p, 1, wait) < 0 && errno != EINTR)
			return -errno;
	}
}
