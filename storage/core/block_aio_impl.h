/* Internals shared by block_aio.c (context, validation, worker pool, completions) and
 * block_aio_uring.c (the io_uring engine).  Not for use outside storage/block_aio*.c. */
#ifndef MINIVMM_STORAGE_BLOCK_AIO_IMPL_H
#define MINIVMM_STORAGE_BLOCK_AIO_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "storage/core/block_aio.h"

struct block_aio_uring;

/* The pool joins adjacent queued reads or writes up to this many bytes and iovecs (the iovecs on
 * the worker's stack).  1 MiB: in 7 interleaved rounds of 20000 64 KiB writes at load 21-30 it
 * took 0.29-0.97 of qemu-img's time, runs of at most 256 KiB 0.22-2.03 (fewer wake-ups count
 * when the CPUs are short). */
#define BLOCK_AIO_MERGE_BYTES (1024 * 1024)
#define BLOCK_AIO_MERGE_IOVS 64

struct block_aio_ctx {
	struct block_device *bs;
	enum block_aio_engine engine;
	int efd;
	atomic_uint pending; /* submitted, callback not yet run */
	atomic_uint flushes; /* FLUSH requests accepted (block_aio_flush_count) */
	atomic_uint
	    kernel_submits; /* io_uring_enter calls that submitted (block_aio_kernel_submits) */
	atomic_uint alloc_ends_in_pool; /* block_aio_alloc_ends_in_pool */

	/* Worker pool: a FIFO of requests for the synchronous block_* functions. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct block_aio_req *work_head, *work_tail;
	bool stopping;
	pthread_t *threads;
	int nthreads;

	/* Held by whoever runs completions (block_aio_complete, block_aio_complete_polled): the
	 * reaping of the ring, the callbacks and the plug around them have one owner at a time. */
	pthread_mutex_t complete_lock;
	/* The polled path stands back (-EBUSY) while these are set, so the loop never waits long
	 * for the lock and a deferred werror=stop write reaches it. */
	atomic_uint complete_waiters; /* blocking callers waiting for complete_lock */
	atomic_bool stop_deferred;    /* a polled run left a failed write for block_aio_complete */

	/* Finished requests waiting for block_aio_complete(). */
	pthread_mutex_t done_lock;
	struct block_aio_req *done_head, *done_tail;

	struct block_aio_uring *uring; /* NULL with the threads engine */

	/* werror=stop (block_aio_set_stop_on_error): writes that failed with ENOSPC or EIO wait
	 * here, still pending, until retried or released (under done_lock). */
	void (*stopped)(void *opaque);
	void *stopped_opaque;
	struct block_aio_req *stopped_head, *stopped_tail;
};

/* Request length in bytes (iov for READ/WRITE, len otherwise). */
uint64_t block_aio_req_len(const struct block_aio_req *req);
/* Hand a request (or the rest of it, from req->done) to the worker pool. */
void block_aio_pool_queue(struct block_aio_ctx *ctx, struct block_aio_req *req);
/* Under ctx->lock: unlink and return the queue's head together with the requests right behind it
 * that continue it on the disk (chained by ->next, NULL-terminated), or NULL when empty. */
struct block_aio_req *block_aio_pool_take(struct block_aio_ctx *ctx);
/* Queue a finished request for its callback and wake the event loop. */
void block_aio_finish(struct block_aio_ctx *ctx, struct block_aio_req *req, int ret);

/* io_uring engine (block_aio_uring.c). */
bool block_aio_uring_usable(struct block_device *bs);
/* The engine leaves whole request kinds to the pool (allocating writes, flushes of a format). */
bool block_aio_uring_needs_pool(struct block_device *bs);
int block_aio_uring_init(struct block_aio_ctx *ctx, int depth);
void block_aio_uring_exit(struct block_aio_ctx *ctx);
/* 0: taken (queued in the ring or waiting for ring space); 1: the pool must do it. */
int block_aio_uring_submit(struct block_aio_ctx *ctx, struct block_aio_req *req);
/* Hold submissions in the ring until the matching unplug (nests; the last unplug submits). */
void block_aio_uring_plug(struct block_aio_ctx *ctx);
void block_aio_uring_unplug(struct block_aio_ctx *ctx);
/* SQEs are waiting for a refused submission to be retried. */
bool block_aio_uring_stalled(struct block_aio_ctx *ctx);
/* Reap completions: finished requests are chained onto *list (callbacks not run). */
void block_aio_uring_reap(struct block_aio_ctx *ctx, struct block_aio_req **list);
/* Finish an allocating write whose data write completed (result in req->ret): 0 and req->ret set
 * when it is complete; 1 when it is not (queued to the pool again, or, without may_block, still
 * req->allocating because mapping it needs I/O: the caller hands it to a worker). */
int block_aio_uring_alloc_done(struct block_aio_ctx *ctx, struct block_aio_req *req,
			       bool may_block);

#endif
