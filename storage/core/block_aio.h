/* Asynchronous block I/O for the disk controllers: submit now, learn of the completion later.
 *
 * One context per disk queue (a context may also be shared by several threads: every function is
 * thread-safe).  The caller owns each request structure (typically embedded in its own per-slot
 * state) and must keep it and its iovec array valid until the callback has run.
 *
 * Completion model: finished requests are queued inside the context and its eventfd
 * (block_aio_fd) becomes readable.  The VMM's event loop polls that fd and calls
 * block_aio_complete(), which runs the callbacks *in the calling thread*, so controllers need no
 * locking against a foreign completion thread.  A callback may submit new requests.  Callbacks of
 * one context never run on two threads at once (block_aio_complete_polled, below, runs them on a
 * polling vCPU: a controller using it takes its own lock in its callbacks).
 *
 * Engines:
 *  - threads: a pool of workers calling the synchronous, thread-safe block_* functions; works for
 *    every format and backing chain.
 *  - io_uring: for raw images without a backing chain, reads and flushes go straight to the
 *    kernel (readv/fsync(DATASYNC) on a registered file, completions signalled through the
 *    registered eventfd).  Requests io_uring cannot do as well (writes, whose asynchronous
 *    completion waits for a kernel worker: block_aio_uring.c; discard, write zeroes, O_DIRECT
 *    requests that are not aligned, the rest of a short transfer) go to the worker pool.
 *    Formats whose driver maps requests (qcow2: aio_map) use it too for reads of allocated
 *    clusters and writes of whole new clusters (aio_alloc); the rest (overwrites, like raw
 *    writes; partial allocating writes, compressed clusters, backing reads, flushes, which write
 *    metadata) go to the worker pool, which joins adjacent queued reads or writes into one
 *    transfer (up to BLOCK_AIO_MERGE_BYTES).
 *
 * Flush: a FLUSH completes only after every write that completed before the FLUSH was submitted is
 * durable (fdatasync of the written image; backing files are never written).  Writes still in
 * flight when the flush is submitted are not covered.  Ordering between concurrent overlapping
 * requests is the caller's business (as with a real disk's queue): submit the second after the
 * first completes.
 */
#ifndef MINIVMM_STORAGE_BLOCK_AIO_H
#define MINIVMM_STORAGE_BLOCK_AIO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct block_device;
struct block_aio_ctx;

enum block_aio_op {
	BLOCK_AIO_READ,
	BLOCK_AIO_WRITE,
	BLOCK_AIO_FLUSH,
	BLOCK_AIO_DISCARD,
	BLOCK_AIO_WRITE_ZEROES,
};

struct block_aio_req {
	/* Set by the caller. */
	enum block_aio_op op;
	uint64_t offset;
	const struct iovec *iov; /* READ/WRITE */
	int iovcnt;
	uint64_t len; /* DISCARD/WRITE_ZEROES */
	int flags;    /* WRITE_ZEROES: BLOCK_ZERO_* */
	/* ret: 0 or -errno (error_msg() is not meaningful in the callback's thread). */
	void (*cb)(struct block_aio_req *req, int ret);
	void *opaque;

	/* Private to block_aio.c. */
	struct block_aio_req *next;
	int ret;
	uint64_t done;	 /* bytes already transferred (short io_uring transfers) */
	uint64_t host;	 /* io_uring: offset in the image file */
	bool mapped;	 /* io_uring: holds a driver mapping (aio_map) until it completes */
	bool allocating; /* io_uring: writes clusters the driver reserved (aio_alloc) */
	bool released;	 /* werror=stop: completed with its error, never parked again */
};

enum block_aio_engine {
	BLOCK_AIO_ENGINE_AUTO = 0, /* io_uring where possible, threads otherwise */
	BLOCK_AIO_ENGINE_THREADS,
	BLOCK_AIO_ENGINE_URING, /* fails with -ENOTSUP when the image cannot use it */
};

struct block_aio_config {
	enum block_aio_engine engine;
	int threads;	 /* worker threads; 0: default */
	int queue_depth; /* io_uring entries; 0: default */
};

/* cfg may be NULL for the defaults. */
int block_aio_open(struct block_device *bs, const struct block_aio_config *cfg,
		   struct block_aio_ctx **out);
/* Waits for every submitted request and runs its callback, then frees the context. */
void block_aio_close(struct block_aio_ctx *ctx);
/* The engine actually in use. */
enum block_aio_engine block_aio_engine(const struct block_aio_ctx *ctx);

/* Queue a request.  Invalid requests (range, read-only image, unknown op) fail here with -errno and
 * no callback; otherwise 0 and the callback runs exactly once from block_aio_complete(). */
int block_aio_submit(struct block_aio_ctx *ctx, struct block_aio_req *req);

/* Batch submissions: between plug and unplug, requests are queued but the engine hands them to the
 * kernel only at the (outermost) unplug, in one system call.  For a controller that takes several
 * commands from one doorbell; block_aio_complete plugs around the callbacks by itself.  Plugging
 * delays other threads' submissions on the same context until the unplug, so unplug at once. */
void block_aio_plug(struct block_aio_ctx *ctx);
void block_aio_unplug(struct block_aio_ctx *ctx);

/* The eventfd that becomes readable when completions are waiting. */
int block_aio_fd(const struct block_aio_ctx *ctx);
/* Run the callbacks of every finished request; returns how many ran. Never blocks. */
int block_aio_complete(struct block_aio_ctx *ctx);
/* For a controller whose driver polls with its interrupts off (a BIOS), on the polling vCPU:
 * block_aio_complete without the wait for the event loop's turn.  One thread at a time runs a
 * context's completions: -EBUSY (nothing done) when another runs them or is waiting to.  The loop's
 * block_aio_complete still runs after it (the eventfd stays readable), and a write that werror=stop
 * holds is left to that one, so the pause is asked for on the loop thread. */
int block_aio_complete_polled(struct block_aio_ctx *ctx);
/* Wait up to timeout_ms (-1: forever) for at least one completion and run every finished one;
 * returns how many ran (0: timed out, or nothing was pending but parked writes). */
int block_aio_poll(struct block_aio_ctx *ctx, int timeout_ms);
/* Submitted requests whose callbacks have not run yet. */
unsigned block_aio_pending(const struct block_aio_ctx *ctx);
/* werror=stop: a WRITE, WRITE_ZEROES, DISCARD or FLUSH that fails with -ENOSPC or -EIO does not
 * complete; it waits (still pending), and block_aio_complete calls stopped(opaque) once per batch
 * that parked requests, on its thread.  The VMM pauses the guest; then
 * block_aio_retry_stopped submits them again (space came back), or block_aio_release_stopped
 * completes them with their error (a reset or the end must not wait for them).  NULL: report
 * errors (the default). */
void block_aio_set_stop_on_error(struct block_aio_ctx *ctx, void (*stopped)(void *opaque),
				 void *opaque);
/* Both return how many requests they moved. */
unsigned block_aio_retry_stopped(struct block_aio_ctx *ctx);
unsigned block_aio_release_stopped(struct block_aio_ctx *ctx);
unsigned block_aio_stopped_count(struct block_aio_ctx *ctx);

/* FLUSH requests accepted since the context was opened (lets device tests see that a controller
 * flushed, e.g. for a FUA write). */
unsigned block_aio_flush_count(const struct block_aio_ctx *ctx);
/* System calls that handed requests to the kernel (io_uring_enter; 0 with the threads engine):
 * lets tests see that submissions are batched. */
unsigned block_aio_kernel_submits(const struct block_aio_ctx *ctx);
/* Allocating writes (io_uring) whose mapping needed metadata I/O, so a worker thread did it
 * instead of the thread reaping completions: lets tests see that the loop did not block. */
unsigned block_aio_alloc_ends_in_pool(const struct block_aio_ctx *ctx);

#endif
