/* Tests of storage/block_aio*.c: many concurrent requests on both engines (threads and io_uring,
 * buffered and O_DIRECT) against an in-memory shadow with a fixed seed; flush semantics observed
 * through an in-test driver; submission errors; error completions; a ring smaller than the number
 * of requests; short io_uring transfers finished by the pool; close with requests in flight.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/core/block.h"
#include "storage/core/block_aio.h"
#include "storage/core/block_fault.h"
#include "tests/lib/testlib.h"

#define MiB (1024 * 1024)
#define DISK (4 * MiB)
#define BLK 4096
#define NBLK (DISK / BLK)
#define SLOTS 64

/* ---- An in-test driver over raw that lets the test observe flushes and inject errors ---- */

static atomic_uint spy_writes_done; /* writes finished inside the driver */
static atomic_uint spy_flush_saw;   /* spy_writes_done when the last flush ran */
static atomic_uint spy_flushes;
static atomic_int spy_fail_reads;   /* -errno for every read, or 0 */
static atomic_uint spy_fail_over;   /* reads longer than this fail with -EIO (0: none) */
static atomic_uint spy_long_failed; /* reads failed so */

static int spy_open(struct block_device *bs)
{
	return host_file_size(&bs->file, &bs->size);
}

static int spy_preadv(struct block_device *bs, uint64_t off, const struct iovec *iov, int n)
{
	int err = atomic_load(&spy_fail_reads);
	unsigned over = atomic_load(&spy_fail_over);
	if (!err && over && iov_size(iov, n) > over) {
		atomic_fetch_add(&spy_long_failed, 1);
		err = -EIO;
	}
	return err ? err : host_file_preadv(&bs->file, off, iov, n);
}

static int spy_pwritev(struct block_device *bs, uint64_t off, const struct iovec *iov, int n)
{
	int ret = host_file_pwritev(&bs->file, off, iov, n);
	atomic_fetch_add(&spy_writes_done, 1);
	return ret;
}

static int spy_flush(struct block_device *bs)
{
	unsigned seen = atomic_load(&spy_writes_done);
	int ret = host_file_flush(&bs->file);
	atomic_store(&spy_flush_saw, seen);
	atomic_fetch_add(&spy_flushes, 1);
	return ret;
}

static const struct block_driver spy_driver = {
    .name = "aio-spy",
    .open = spy_open,
    .preadv = spy_preadv,
    .pwritev = spy_pwritev,
    .flush = spy_flush,
};
BLOCK_DRIVER(spy_driver);

/* A format that exists only to be probed: the magic "AIOPROBE" at offset 0. */
static int magic_probe(const uint8_t *head, size_t len, const char *filename)
{
	(void)filename;
	return len >= 8 && memcmp(head, "AIOPROBE", 8) == 0 ? 100 : 0;
}

static int magic_open(struct block_device *bs)
{
	return error_set(-ENOTSUP, "%s: test format", bs->filename);
}

static const struct block_driver magic_driver = {
    .name = "aio-magic",
    .probe = magic_probe,
    .probe_bytes = 8,
    .open = magic_open,
};
BLOCK_DRIVER(magic_driver);

/* ---- Workload against a shadow ---- */

struct slot {
	struct block_aio_req req;
	struct iovec iov[3];
	uint8_t *buf;
	uint64_t first, nblk; /* blocks covered */
	bool busy;
};

struct run {
	struct slot slot[SLOTS];
	uint8_t *shadow;
	bool busy[NBLK];
	unsigned completed, errors;
};

static struct run *cur_run;

static void slot_cb(struct block_aio_req *req, int ret)
{
	struct slot *s = req->opaque;
	struct run *r = cur_run;

	if (ret != 0) {
		print_message("request op %d at %llu failed: %d\n", req->op,
			      (unsigned long long)req->offset, ret);
		r->errors++;
	} else if (req->op == BLOCK_AIO_READ) {
		/* Request offset may sit inside the first block; compare the exact range. */
		size_t n = iov_size(req->iov, req->iovcnt);
		uint8_t *flat = malloc(n);
		iov_to_buf(req->iov, req->iovcnt, 0, flat, n);
		if (memcmp(flat, r->shadow + req->offset, n) != 0)
			r->errors++;
		free(flat);
	} else if (req->op == BLOCK_AIO_WRITE) {
		iov_to_buf(req->iov, req->iovcnt, 0, r->shadow + req->offset,
			   iov_size(req->iov, req->iovcnt));
	} else if (req->op == BLOCK_AIO_DISCARD || req->op == BLOCK_AIO_WRITE_ZEROES) {
		memset(r->shadow + req->offset, 0, req->len);
	}
	for (uint64_t b = s->first; b < s->first + s->nblk; b++)
		r->busy[b] = false;
	s->busy = false;
	r->completed++;
}

/* Pick a free run of blocks for a new request, or return false. */
static bool pick_range(struct run *r, uint64_t *seed, uint64_t *first, uint64_t *nblk)
{
	for (int tries = 0; tries < 8; tries++) {
		uint64_t f = test_xorshift(seed) % NBLK;
		uint64_t n = 1 + test_xorshift(seed) % 16;
		if (f + n > NBLK)
			n = NBLK - f;
		bool ok = true;
		for (uint64_t b = f; b < f + n && ok; b++)
			ok = !r->busy[b];
		if (ok) {
			*first = f;
			*nblk = n;
			return true;
		}
	}
	return false;
}

/* Discard reads back as zeroes (raw punches holes); a format may ignore a discard of part of a
 * cluster, so its workload writes zeroes instead. */
static bool discard_zeroes = true;

static void workload(struct block_device *bs, const struct block_aio_config *cfg, uint64_t seed,
		     bool aligned_only, unsigned total)
{
	struct block_aio_ctx *ctx;
	struct run *r = calloc(1, sizeof(*r));
	unsigned submitted = 0;
	uint64_t s = seed;

	cur_run = r;
	r->shadow = calloc(1, DISK);
	assert_int_equal(block_pread(bs, 0, r->shadow, DISK), 0);
	assert_int_equal(block_aio_open(bs, cfg, &ctx), 0);
	for (int i = 0; i < SLOTS; i++) {
		assert_int_equal(posix_memalign((void **)&r->slot[i].buf, 4096, 17 * BLK), 0);
		r->slot[i].req.opaque = &r->slot[i];
	}
	while (r->completed < total) {
		/* Fill every free slot, then wait for some completions. */
		for (int i = 0; i < SLOTS && submitted < total; i++) {
			struct slot *sl = &r->slot[i];
			uint64_t first, nblk;
			if (sl->busy || !pick_range(r, &s, &first, &nblk))
				continue;
			struct block_aio_req *q = &sl->req;
			uint64_t op = test_xorshift(&s) % 20;
			uint64_t len = nblk * BLK, off = first * BLK, skip = 0;
			if (!aligned_only &&
			    test_xorshift(&s) % 4 == 0) { /* unaligned inside the range */
				skip = test_xorshift(&s) % 512;
				len -= skip + test_xorshift(&s) % 512;
			}
			memset(q, 0, offsetof(struct block_aio_req, next));
			q->opaque = sl;
			q->cb = slot_cb;
			q->offset = off + skip;
			q->op = op < 8	  ? BLOCK_AIO_READ
				: op < 16 ? BLOCK_AIO_WRITE
				: op < 17
				    ? (discard_zeroes ? BLOCK_AIO_DISCARD : BLOCK_AIO_WRITE_ZEROES)
				: op < 18 ? BLOCK_AIO_WRITE_ZEROES
					  : BLOCK_AIO_FLUSH;
			if (q->op == BLOCK_AIO_READ || q->op == BLOCK_AIO_WRITE) {
				/* three segments, split at random points */
				size_t a = test_xorshift(&s) % (len + 1),
				       b = test_xorshift(&s) % (len + 1);
				if (aligned_only) {
					a &= ~(size_t)(BLK - 1);
					b &= ~(size_t)(BLK - 1);
				}
				if (a > b) {
					size_t t = a;
					a = b;
					b = t;
				}
				sl->iov[0] = (struct iovec){sl->buf, a};
				sl->iov[1] = (struct iovec){sl->buf + a, b - a};
				sl->iov[2] = (struct iovec){sl->buf + b, len - b};
				q->iov = sl->iov;
				q->iovcnt = 3;
				if (q->op == BLOCK_AIO_WRITE)
					for (size_t k = 0; k < len; k++)
						sl->buf[k] = (uint8_t)test_xorshift(&s);
			} else {
				q->len = len;
				q->flags = test_xorshift(&s) % 2 ? BLOCK_ZERO_MAY_UNMAP : 0;
				if (q->op == BLOCK_AIO_FLUSH)
					q->offset = 0, q->len = 0, q->flags = 0;
			}
			if (q->op != BLOCK_AIO_FLUSH) {
				sl->first = first;
				sl->nblk = nblk;
			} else {
				sl->first = sl->nblk = 0;
			}
			for (uint64_t b = sl->first; b < sl->first + sl->nblk; b++)
				r->busy[b] = true;
			sl->busy = true;
			assert_int_equal(block_aio_submit(ctx, q), 0);
			submitted++;
		}
		assert_true(block_aio_poll(ctx, 10000) > 0);
	}
	assert_int_equal(r->errors, 0);
	assert_int_equal(block_aio_pending(ctx), 0);
	block_aio_close(ctx);
	uint8_t *chk = malloc(DISK);
	assert_int_equal(block_pread(bs, 0, chk, DISK), 0);
	assert_memory_equal(chk, r->shadow, DISK);
	free(chk);
	for (int i = 0; i < SLOTS; i++)
		free(r->slot[i].buf);
	free(r->shadow);
	free(r);
}

static struct block_device *open_raw(const char *name, int flags)
{
	struct block_create_args a = {.size = DISK};
	struct block_device *bs;

	unlink(test_path(name));
	assert_int_equal(block_create("raw", test_path(name), &a), 0);
	assert_int_equal(block_open(test_path(name), "raw", BLOCK_OPEN_RDWR | flags, &bs), 0);
	return bs;
}

static bool uring_available(struct block_device *bs)
{
	struct block_aio_config c = {.engine = BLOCK_AIO_ENGINE_URING};
	struct block_aio_ctx *ctx;

	if (block_aio_open(bs, &c, &ctx) < 0) {
		print_message("io_uring unavailable here (%s): skipping\n", error_msg());
		return false;
	}
	block_aio_close(ctx);
	return true;
}

static bool direct_available(void)
{
	int fd = open(test_path("probe"), O_CREAT | O_RDWR | O_DIRECT, 0644);
	if (fd < 0) {
		print_message("O_DIRECT unavailable in %s: skipping\n", test_tmpdir);
		return false;
	}
	close(fd);
	return true;
}

static void test_threads_buffered(void **state)
{
	struct block_aio_config c = {.engine = BLOCK_AIO_ENGINE_THREADS, .threads = 4};
	struct block_device *bs = open_raw("t.raw", 0);
	(void)state;
	workload(bs, &c, 0x1111, false, 3000);
	block_close(bs);
}

static void test_threads_direct(void **state)
{
	struct block_aio_config c = {.engine = BLOCK_AIO_ENGINE_THREADS, .threads = 3};
	(void)state;
	if (!direct_available())
		skip();
	struct block_device *bs = open_raw("td.raw", BLOCK_OPEN_CACHE_NONE);
	workload(bs, &c, 0x2222, false, 2000);
	block_close(bs);
}

static void test_uring_buffered(void **state)
{
	struct block_aio_config c = {.engine = BLOCK_AIO_ENGINE_URING};
	struct block_device *bs = open_raw("u.raw", 0);
	(void)state;
	if (!uring_available(bs)) {
		block_close(bs);
		skip();
	}
	workload(bs, &c, 0x3333, false, 3000);
	block_close(bs);
}

static void test_uring_direct(void **state)
{
	struct block_aio_config c = {.engine = BLOCK_AIO_ENGINE_URING};
	(void)state;
	if (!direct_available())
		skip();
	struct block_device *bs = open_raw("ud.raw", BLOCK_OPEN_CACHE_NONE);
	if (!uring_available(bs)) {
		block_close(bs);
		skip();
	}
	/* Mixed: aligned requests take the ring, unaligned ones the side pool. */
	workload(bs, &c, 0x4444, false, 2000);
	workload(bs, &c, 0x4445, true, 1000);
	block_close(bs);
}

static void test_uring_small_ring(void **state)
{
	struct block_aio_config c = {.engine = BLOCK_AIO_ENGINE_URING, .queue_depth = 4};
	struct block_device *bs = open_raw("us.raw", 0);
	(void)state;
	if (!uring_available(bs)) {
		block_close(bs);
		skip();
	}
	workload(bs, &c, 0x5555, true, 1500); /* 64 slots over a 4-entry ring */
	block_close(bs);
}

/* The spy image, for the threads engine (not raw: io_uring does not apply). */
static struct block_device *open_spy(void)
{
	struct block_device *bs = open_raw("spy.img", 0);
	char *name = strdup(bs->filename);
	block_close(bs);
	assert_int_equal(block_open(name, "aio-spy", BLOCK_OPEN_RDWR, &bs), 0);
	free(name);
	return bs;
}

static unsigned cb_count;
static int cb_last;
static void count_cb(struct block_aio_req *req, int ret)
{
	(void)req;
	cb_count++;
	cb_last = ret;
}

/* Sequential requests queued together are joined by the pool (block_aio_pool_take): the data
 * lands where each request says, and when a joined transfer fails each request runs alone and
 * gets its own status (here the spy fails only reads longer than one request: all succeed). */
static void test_pool_joins_sequential(void **state)
{
	enum { LEN = 4096, COUNT = 256, WINDOW = 32 };
	struct block_aio_config c = {.engine = BLOCK_AIO_ENGINE_THREADS, .threads = 2};
	static uint8_t data[COUNT][LEN], back[COUNT][LEN];
	static struct block_aio_req r[COUNT];
	static struct iovec iov[COUNT];
	struct block_device *bs = open_spy();
	struct block_aio_ctx *ctx;
	unsigned writes_before = atomic_load(&spy_writes_done);

	(void)state;
	assert_int_equal(block_aio_open(bs, &c, &ctx), 0);
	for (int pass = 0; pass < 2; pass++) {
		bool write = pass == 0;
		cb_count = 0;
		for (int i = 0; i < COUNT; i++) {
			if (write)
				memset(data[i], i + 1, LEN);
			iov[i] = (struct iovec){write ? data[i] : back[i], LEN};
			r[i] =
			    (struct block_aio_req){.op = write ? BLOCK_AIO_WRITE : BLOCK_AIO_READ,
						   .offset = (uint64_t)i * LEN,
						   .iov = &iov[i],
						   .iovcnt = 1,
						   .cb = count_cb};
			while (i - (int)cb_count >= WINDOW)
				block_aio_poll(ctx, 10000);
			assert_int_equal(block_aio_submit(ctx, &r[i]), 0);
		}
		while (block_aio_pending(ctx))
			block_aio_poll(ctx, 10000);
		assert_int_equal(cb_count, COUNT);
		for (int i = 0; i < COUNT; i++)
			assert_int_equal(r[i].ret, 0);
		if (write)
			atomic_store(&spy_fail_over, LEN);
	}
	atomic_store(&spy_fail_over, 0);
	assert_memory_equal(back, data, sizeof(data));
	print_message("%u driver writes for %d requests, %u joined reads failed and ran alone\n",
		      atomic_load(&spy_writes_done) - writes_before, COUNT,
		      atomic_load(&spy_long_failed));
	block_aio_close(ctx);
	block_close(bs);
}

/* A flush covers every write completed before it was submitted. */
static void test_flush_semantics(void **state)
{
	struct block_aio_config c = {.engine = BLOCK_AIO_ENGINE_AUTO, .threads = 4};
	struct block_device *bs = open_spy();
	struct block_aio_ctx *ctx;
	static uint8_t buf[32][BLK];
	struct iovec iov[32];
	struct block_aio_req w[32], f;

	(void)state;
	assert_int_equal(block_aio_open(bs, &c, &ctx), 0);
	assert_int_equal(block_aio_engine(ctx), BLOCK_AIO_ENGINE_THREADS);
	atomic_store(&spy_writes_done, 0);
	for (int round = 0; round < 20; round++) {
		cb_count = 0;
		for (int i = 0; i < 32; i++) {
			iov[i] = (struct iovec){buf[i], BLK};
			w[i] = (struct block_aio_req){.op = BLOCK_AIO_WRITE,
						      .offset = (uint64_t)i * BLK,
						      .iov = &iov[i],
						      .iovcnt = 1,
						      .cb = count_cb};
			assert_int_equal(block_aio_submit(ctx, &w[i]), 0);
		}
		/* Let some of them complete, then flush while the others may still run. */
		while (cb_count < (unsigned)(round % 32) + 1)
			block_aio_poll(ctx, 10000);
		unsigned completed_before = atomic_load(&spy_writes_done);
		unsigned flushes = atomic_load(&spy_flushes);
		f = (struct block_aio_req){.op = BLOCK_AIO_FLUSH, .cb = count_cb};
		assert_int_equal(block_aio_submit(ctx, &f), 0);
		while (block_aio_pending(ctx))
			block_aio_poll(ctx, 10000);
		assert_int_equal(cb_count, 33);
		assert_true(atomic_load(&spy_flushes) > flushes);
		assert_true(atomic_load(&spy_flush_saw) >= completed_before);
	}
	block_aio_close(ctx);
	block_close(bs);
}

static void test_submit_errors_and_failed_io(void **state)
{
	struct block_device *bs = open_spy();
	struct block_aio_ctx *ctx;
	uint8_t buf[BLK];
	struct iovec iov = {buf, BLK};
	struct block_aio_req q = {.op = BLOCK_AIO_READ, .iov = &iov, .iovcnt = 1, .cb = count_cb};

	(void)state;
	assert_int_equal(block_aio_open(bs, NULL, &ctx), 0);
	cb_count = 0;
	q.offset = DISK - BLK + 1; /* past the end */
	assert_int_equal(block_aio_submit(ctx, &q), -EINVAL);
	q.offset = UINT64_MAX - 10;
	assert_int_equal(block_aio_submit(ctx, &q), -EINVAL);
	q.offset = 0;
	q.op = 77;
	assert_int_equal(block_aio_submit(ctx, &q), -EINVAL);
	q.op = BLOCK_AIO_READ;
	q.iovcnt = -1;
	assert_int_equal(block_aio_submit(ctx, &q), -EINVAL);
	q.iovcnt = 1;
	q.cb = NULL;
	assert_int_equal(block_aio_submit(ctx, &q), -EINVAL);
	q.cb = count_cb;
	q.op = BLOCK_AIO_WRITE_ZEROES;
	q.len = BLK;
	q.flags = 0x100;
	assert_int_equal(block_aio_submit(ctx, &q), -EINVAL);
	assert_int_equal(block_aio_poll(ctx, 0), 0);
	assert_int_equal(cb_count, 0);

	/* The eventfd signals a completion; the driver's error reaches the callback. */
	atomic_store(&spy_fail_reads, -EIO);
	q = (struct block_aio_req){.op = BLOCK_AIO_READ, .iov = &iov, .iovcnt = 1, .cb = count_cb};
	assert_int_equal(block_aio_submit(ctx, &q), 0);
	struct pollfd p = {.fd = block_aio_fd(ctx), .events = POLLIN};
	assert_int_equal(poll(&p, 1, 10000), 1);
	assert_int_equal(block_aio_complete(ctx), 1);
	assert_int_equal(cb_last, -EIO);
	atomic_store(&spy_fail_reads, 0);
	/* discard is not supported by the spy driver */
	q = (struct block_aio_req){.op = BLOCK_AIO_DISCARD, .len = BLK, .cb = count_cb};
	assert_int_equal(block_aio_submit(ctx, &q), 0);
	while (block_aio_pending(ctx))
		block_aio_poll(ctx, 10000);
	assert_int_equal(cb_last, -ENOTSUP);
	block_aio_close(ctx);
	block_close(bs);

	/* Read-only image: writes refused at submission. */
	assert_int_equal(block_open(test_path("spy.img"), "raw", 0, &bs), 0);
	assert_int_equal(block_aio_open(bs, NULL, &ctx), 0);
	q = (struct block_aio_req){.op = BLOCK_AIO_WRITE, .iov = &iov, .iovcnt = 1, .cb = count_cb};
	assert_int_equal(block_aio_submit(ctx, &q), -EROFS);
	block_aio_close(ctx);
	block_close(bs);
	/* io_uring refused for a non-raw image when asked for explicitly */
	bs = open_spy();
	struct block_aio_config c = {.engine = BLOCK_AIO_ENGINE_URING};
	assert_int_equal(block_aio_open(bs, &c, &ctx), -ENOTSUP);
	c = (struct block_aio_config){.threads = 1000};
	assert_int_equal(block_aio_open(bs, &c, &ctx), -EINVAL);
	block_close(bs);
}

/* The file shrank behind our back: io_uring reads come back short, the pool zero-fills. */
static void test_uring_short_read(void **state)
{
	struct block_device *bs = open_raw("short.raw", 0);
	struct block_aio_config c = {.engine = BLOCK_AIO_ENGINE_URING};
	struct block_aio_ctx *ctx;
	static uint8_t buf[64 * 1024], want[64 * 1024];
	struct iovec iov = {buf, sizeof(buf)};

	(void)state;
	if (!uring_available(bs)) {
		block_close(bs);
		skip();
	}
	memset(want, 0x77, sizeof(want));
	assert_int_equal(block_pwrite(bs, MiB - 32 * 1024, want, sizeof(want)), 0);
	assert_int_equal(truncate(test_path("short.raw"), MiB), 0);
	memset(want + 32 * 1024, 0, 32 * 1024);
	memset(buf, 0xEE, sizeof(buf));
	assert_int_equal(block_aio_open(bs, &c, &ctx), 0);
	struct block_aio_req q = {.op = BLOCK_AIO_READ,
				  .offset = MiB - 32 * 1024,
				  .iov = &iov,
				  .iovcnt = 1,
				  .cb = count_cb};
	cb_last = 1;
	assert_int_equal(block_aio_submit(ctx, &q), 0);
	while (block_aio_pending(ctx))
		block_aio_poll(ctx, 10000);
	assert_int_equal(cb_last, 0);
	assert_memory_equal(buf, want, sizeof(want));
	block_aio_close(ctx);
	block_close(bs);
}

/* The io_uring path must not bypass the guard on the probe window of a probed raw image. */
static void test_probed_raw_guard(void **state)
{
	struct block_device *bs = open_raw("guard.raw", 0);
	struct block_aio_ctx *ctx;
	static uint8_t sec[4096];
	struct iovec iov = {sec, sizeof(sec)};

	(void)state;
	block_close(bs);
	assert_int_equal(block_open(test_path("guard.raw"), NULL, BLOCK_OPEN_RDWR, &bs), 0);
	memcpy(sec, "AIOPROBE", 8);
	for (int engine = BLOCK_AIO_ENGINE_THREADS; engine <= BLOCK_AIO_ENGINE_URING; engine++) {
		struct block_aio_config c = {.engine = engine};
		if (block_aio_open(bs, &c, &ctx) < 0)
			continue;
		struct block_aio_req q = {
		    .op = BLOCK_AIO_WRITE, .iov = &iov, .iovcnt = 1, .cb = count_cb};
		cb_last = 1;
		assert_int_equal(block_aio_submit(ctx, &q), 0);
		while (block_aio_pending(ctx))
			block_aio_poll(ctx, 10000);
		assert_int_equal(cb_last, -EPERM);
		q.offset = 4096; /* elsewhere it is just data */
		assert_int_equal(block_aio_submit(ctx, &q), 0);
		while (block_aio_pending(ctx))
			block_aio_poll(ctx, 10000);
		assert_int_equal(cb_last, 0);
		block_aio_close(ctx);
	}
	block_close(bs);
}

/* close() waits for requests in flight and runs their callbacks. */
static void test_close_drains(void **state)
{
	struct block_device *bs = open_raw("drain.raw", 0);
	struct block_aio_ctx *ctx;
	static uint8_t buf[16][BLK];
	struct iovec iov[16];
	struct block_aio_req q[16];

	(void)state;
	for (int engine = BLOCK_AIO_ENGINE_THREADS; engine <= BLOCK_AIO_ENGINE_URING; engine++) {
		struct block_aio_config c = {.engine = engine};
		if (block_aio_open(bs, &c, &ctx) < 0)
			continue;
		cb_count = 0;
		for (int i = 0; i < 16; i++) {
			iov[i] = (struct iovec){buf[i], BLK};
			q[i] =
			    (struct block_aio_req){.op = i % 2 ? BLOCK_AIO_WRITE : BLOCK_AIO_READ,
						   .offset = (uint64_t)i * BLK,
						   .iov = &iov[i],
						   .iovcnt = 1,
						   .cb = count_cb};
			assert_int_equal(block_aio_submit(ctx, &q[i]), 0);
		}
		block_aio_close(ctx);
		assert_int_equal(cb_count, 16);
	}
	block_close(bs);
}

/* Plugged submissions wait in the ring and the outermost unplug hands them over in one system
 * call; they still complete, in any order, with the right data. */
static void test_uring_plug_batches(void **state)
{
	struct block_aio_config c = {.engine = BLOCK_AIO_ENGINE_URING};
	struct block_device *bs = open_raw("plug.raw", 0);
	struct block_aio_ctx *ctx;
	static uint8_t pattern[16][BLK], buf[16][BLK];
	struct iovec iov[16];
	struct block_aio_req q[16];

	(void)state;
	if (!uring_available(bs)) {
		block_close(bs);
		skip();
	}
	for (int i = 0; i < 16; i++) {
		memset(pattern[i], 0x40 + i, BLK);
		assert_int_equal(block_pwrite(bs, (uint64_t)i * BLK, pattern[i], BLK), 0);
	}
	assert_int_equal(block_aio_open(bs, &c, &ctx), 0);
	unsigned base = block_aio_kernel_submits(ctx);
	cb_count = 0;
	block_aio_plug(ctx);
	block_aio_plug(ctx); /* nested: only the outermost unplug submits */
	for (int i = 0; i < 16; i++) {
		iov[i] = (struct iovec){buf[i], BLK};
		q[i] = (struct block_aio_req){.op = BLOCK_AIO_READ,
					      .offset = (uint64_t)i * BLK,
					      .iov = &iov[i],
					      .iovcnt = 1,
					      .cb = count_cb};
		assert_int_equal(block_aio_submit(ctx, &q[i]), 0);
	}
	block_aio_unplug(ctx);
	assert_int_equal(block_aio_kernel_submits(ctx), base);
	assert_int_equal(block_aio_pending(ctx), 16);
	block_aio_unplug(ctx);
	assert_int_equal(block_aio_kernel_submits(ctx), base + 1);
	while (block_aio_pending(ctx))
		assert_true(block_aio_poll(ctx, 10000) >= 0);
	assert_int_equal(cb_count, 16);
	for (int i = 0; i < 16; i++)
		assert_memory_equal(buf[i], pattern[i], BLK);
	block_aio_unplug(ctx); /* unbalanced: harmless */
	block_aio_close(ctx);
	block_close(bs);
}

/* Raw writes go to the worker pool (an asynchronous O_DIRECT write completes in a kernel worker,
 * which waits for a CPU on a loaded host), reads and flushes to the ring: the ring sees no write
 * submission, and what the writes put in the file reads back, with and without O_DIRECT. */
static void test_uring_raw_writes_in_pool(void **state)
{
	struct block_aio_config c = {.engine = BLOCK_AIO_ENGINE_URING};
	static uint8_t out[8][BLK] __attribute__((aligned(4096))),
	    in[8][BLK] __attribute__((aligned(4096)));
	struct iovec iov[8];
	struct block_aio_req q[8];

	(void)state;
	for (int direct = 0; direct <= 1; direct++) {
		if (direct && !direct_available())
			continue;
		struct block_device *bs = open_raw("wpool.raw", direct ? BLOCK_OPEN_CACHE_NONE : 0);
		struct block_aio_ctx *ctx;
		if (!uring_available(bs)) {
			block_close(bs);
			skip();
		}
		assert_int_equal(block_aio_open(bs, &c, &ctx), 0);
		for (int op = BLOCK_AIO_WRITE; op >= BLOCK_AIO_READ; op--) {
			unsigned before = block_aio_kernel_submits(ctx);
			cb_count = 0;
			block_aio_plug(ctx);
			for (int i = 0; i < 8; i++) {
				memset(out[i], 0x21 + i + 8 * direct, BLK);
				iov[i] =
				    (struct iovec){op == BLOCK_AIO_WRITE ? out[i] : in[i], BLK};
				q[i] = (struct block_aio_req){.op = op,
							      .offset = (uint64_t)(3 + 5 * i) * BLK,
							      .iov = &iov[i],
							      .iovcnt = 1,
							      .cb = count_cb};
				assert_int_equal(block_aio_submit(ctx, &q[i]), 0);
			}
			block_aio_unplug(ctx);
			while (block_aio_pending(ctx))
				assert_true(block_aio_poll(ctx, 10000) >= 0);
			assert_int_equal(cb_count, 8);
			assert_int_equal(cb_last, 0);
			if (op == BLOCK_AIO_WRITE)
				assert_int_equal(block_aio_kernel_submits(ctx), before);
			else
				assert_int_equal(block_aio_kernel_submits(ctx), before + 1);
		}
		for (int i = 0; i < 8; i++)
			assert_memory_equal(in[i], out[i], BLK);
		block_aio_close(ctx);
		block_close(bs);
	}
}

/* Requests submitted by callbacks go to the kernel together: one system call per
 * block_aio_complete() that ran callbacks, however many requests they submitted. */
static struct block_aio_ctx *chain_ctx;
static unsigned chain_left;
static void chain_cb(struct block_aio_req *req, int ret)
{
	assert_int_equal(ret, 0);
	cb_count++;
	if (chain_left) {
		chain_left--;
		req->offset = (req->offset + 8 * BLK) % DISK;
		assert_int_equal(block_aio_submit(chain_ctx, req), 0);
	}
}

static void test_uring_callbacks_batched(void **state)
{
	struct block_aio_config c = {.engine = BLOCK_AIO_ENGINE_URING};
	struct block_device *bs = open_raw("chain.raw", 0);
	static uint8_t buf[8][BLK];
	struct iovec iov[8];
	struct block_aio_req q[8];

	(void)state;
	if (!uring_available(bs)) {
		block_close(bs);
		skip();
	}
	assert_int_equal(block_aio_open(bs, &c, &chain_ctx), 0);
	cb_count = 0;
	chain_left = 400;
	block_aio_plug(chain_ctx);
	for (int i = 0; i < 8; i++) {
		iov[i] = (struct iovec){buf[i], BLK};
		q[i] = (struct block_aio_req){.op = i % 2 ? BLOCK_AIO_WRITE : BLOCK_AIO_READ,
					      .offset = (uint64_t)i * BLK,
					      .iov = &iov[i],
					      .iovcnt = 1,
					      .cb = chain_cb};
		assert_int_equal(block_aio_submit(chain_ctx, &q[i]), 0);
	}
	block_aio_unplug(chain_ctx);
	unsigned rounds = 1;
	while (block_aio_pending(chain_ctx)) {
		struct pollfd p = {.fd = block_aio_fd(chain_ctx), .events = POLLIN};
		assert_true(poll(&p, 1, 10000) >= 0);
		if (block_aio_complete(chain_ctx) > 0)
			rounds++;
	}
	assert_int_equal(cb_count, 408);
	assert_true(block_aio_kernel_submits(chain_ctx) <= rounds);
	block_aio_close(chain_ctx);
	block_close(bs);
}

/* qcow2 through the io_uring engine: reads of allocated clusters take the ring (mapped by the
 * driver), overwrites (like raw writes: block_aio_uring.c), discards, zeroes and flushes the pool;
 * the mixed workload must read back exactly what it wrote, and qemu-img must find the image clean.
 * Small clusters (4 KiB) so that runs cross cluster boundaries and many requests allocate. */
static void qcow2_uring_case(const char *name, int flags, const char *opts, bool aligned_only,
			     uint64_t seed)
{
	struct block_aio_config c = {.engine = BLOCK_AIO_ENGINE_URING};
	struct block_device *bs;
	struct block_aio_ctx *ctx;

	unlink(test_path(name));
	assert_int_equal(test_run("qemu-img create -q -f qcow2 -o %s '%s' %llu", opts,
				  test_path(name), (unsigned long long)DISK),
			 0);
	assert_int_equal(block_open(test_path(name), "qcow2", BLOCK_OPEN_RDWR | flags, &bs), 0);
	if (block_aio_open(bs, &c, &ctx) < 0) {
		print_message("io_uring unavailable here (%s): skipping\n", error_msg());
		block_close(bs);
		skip();
	}
	block_aio_close(ctx);
	/* Half the disk allocated first, so that reads and overwrites find mapped clusters. */
	static uint8_t fill[DISK / 2] __attribute__((aligned(4096)));
	memset(fill, 0x6c, sizeof(fill));
	assert_int_equal(block_pwrite(bs, 0, fill, sizeof(fill)), 0);
	discard_zeroes = false;
	workload(bs, &c, seed, aligned_only, 3000);
	discard_zeroes = true;
	assert_int_equal(block_aio_open(bs, &c, &ctx), 0);
	assert_int_equal(block_aio_engine(ctx), BLOCK_AIO_ENGINE_URING);
	/* A read of allocated data goes through the ring, an overwrite through the pool. */
	static uint8_t buf[BLK] __attribute__((aligned(4096))); /* O_DIRECT takes it as is */
	struct iovec iov = {buf, BLK};
	struct block_aio_req q = {
	    .op = BLOCK_AIO_READ, .offset = 0, .iov = &iov, .iovcnt = 1, .cb = count_cb};
	assert_int_equal(block_pwrite(bs, 0, fill, BLK),
			 0); /* allocated, whatever the workload did */
	for (int op = BLOCK_AIO_READ; op <= BLOCK_AIO_WRITE; op++) {
		unsigned before = block_aio_kernel_submits(ctx);
		q.op = op;
		assert_int_equal(block_aio_submit(ctx, &q), 0);
		while (block_aio_pending(ctx))
			block_aio_poll(ctx, 10000);
		assert_int_equal(cb_last, 0);
		if (op == BLOCK_AIO_READ)
			assert_true(block_aio_kernel_submits(ctx) > before);
		else
			assert_int_equal(block_aio_kernel_submits(ctx), before);
		assert_memory_equal(buf, fill, BLK);
	}
	block_aio_close(ctx);
	block_close(bs);
	assert_int_equal(test_run("qemu-img check -q '%s'", test_path(name)), 0);
}

static void test_uring_qcow2(void **state)
{
	(void)state;
	qcow2_uring_case("q4k.qcow2", 0, "cluster_size=4096", false, 0x7777);
	qcow2_uring_case("q64k.qcow2", 0, "cluster_size=65536", false, 0x7778);
	if (direct_available())
		qcow2_uring_case("q4kd.qcow2", BLOCK_OPEN_CACHE_NONE, "cluster_size=4096", false,
				 0x7779);
}

/* Allocating writes of whole qcow2 clusters take the ring too (drv->aio_alloc): the driver
 * reserves the clusters and points the L2 entries at them only when the completion is reaped,
 * after the data is in the file.  Until then the range reads as before (zeroes), and a metadata
 * flush in between leaves an image whose worst fault is leaked clusters (qemu-img check: 0 or 3)
 * with no data mapped: never an L2 entry ahead of its data.  A write that covers a new cluster
 * only in part still takes the pool's path (copy on write). */
static void test_uring_qcow2_alloc_order(void **state)
{
	enum { CS = 65536, N = 8 };
	struct block_aio_config c = {.engine = BLOCK_AIO_ENGINE_URING};
	static uint8_t data[N][CS] __attribute__((aligned(4096)));
	static uint8_t buf[CS] __attribute__((aligned(4096)));
	static const uint8_t zero[CS];
	struct block_aio_req w[N], part;
	struct iovec iov[N], piov;
	struct block_device *bs;
	struct block_aio_ctx *ctx;
	char name[512], copy[512];
	int rc;

	(void)state;
	snprintf(name, sizeof(name), "%s", test_path("alloc.qcow2"));
	snprintf(copy, sizeof(copy), "%s", test_path("alloc-copy.qcow2"));
	unlink(name);
	assert_int_equal(
	    test_run("qemu-img create -q -f qcow2 -o cluster_size=%d '%s' 16M", CS, name), 0);
	assert_int_equal(block_open(name, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	if (block_aio_open(bs, &c, &ctx) < 0) {
		print_message("io_uring unavailable here (%s): skipping\n", error_msg());
		block_close(bs);
		skip();
	}
	/* A cluster at 15 MiB first: it loads the refcount block, which aio_alloc does not read on
	 * the submitting thread (test_uring_qcow2_alloc_refblock_evicted). */
	memset(buf, 0x11, CS);
	assert_int_equal(block_pwrite(bs, 15 << 20, buf, CS), 0);
	unsigned before = block_aio_kernel_submits(ctx);
	cb_count = 0;
	block_aio_plug(ctx);
	for (int i = 0; i < N; i++) {
		memset(data[i], 0xa0 + i, CS);
		iov[i] = (struct iovec){data[i], CS};
		w[i] = (struct block_aio_req){.op = BLOCK_AIO_WRITE,
					      .offset = (uint64_t)(2 * i) * CS,
					      .iov = &iov[i],
					      .iovcnt = 1,
					      .cb = count_cb};
		assert_int_equal(block_aio_submit(ctx, &w[i]), 0);
	}
	block_aio_unplug(ctx);
	assert_true(block_aio_kernel_submits(ctx) > before); /* the ring took them, not the pool */

	/* A completion is waiting, none is reaped: nothing is mapped yet, even after a flush. */
	struct pollfd p = {.fd = block_aio_fd(ctx), .events = POLLIN};
	assert_int_equal(poll(&p, 1, 10000), 1);
	for (int i = 0; i < N; i++) {
		assert_int_equal(block_pread(bs, (uint64_t)(2 * i) * CS, buf, CS), 0);
		assert_memory_equal(buf, zero, CS);
	}
	assert_int_equal(block_flush(bs), 0);
	assert_int_equal(test_run("cp '%s' '%s'", name, copy), 0);
	rc = test_run("qemu-img check -q '%s'", copy);
	assert_true(rc == 0 || rc == 3);
	assert_int_equal(test_run("qemu-img map --output=json '%s' | grep -Eq "
				  "'\"start\": 0, \"length\": 15728640,.*\"data\": false'",
				  copy),
			 0); /* nothing mapped below the first cluster's 15 MiB */

	/* Reaped: mapped, and the data reads back. */
	while (block_aio_pending(ctx))
		block_aio_poll(ctx, 10000);
	assert_int_equal(cb_count, N);
	assert_int_equal(cb_last, 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(block_pread(bs, (uint64_t)(2 * i) * CS, buf, CS), 0);
		assert_memory_equal(buf, data[i], CS);
	}

	/* 4 KiB into a new cluster: the pool's copy on write, the rest of the cluster zeroes. */
	before = block_aio_kernel_submits(ctx);
	piov = (struct iovec){data[0], 4096};
	part = (struct block_aio_req){
	    .op = BLOCK_AIO_WRITE, .offset = CS, .iov = &piov, .iovcnt = 1, .cb = count_cb};
	assert_int_equal(block_aio_submit(ctx, &part), 0);
	while (block_aio_pending(ctx))
		block_aio_poll(ctx, 10000);
	assert_int_equal(cb_last, 0);
	assert_int_equal(block_aio_kernel_submits(ctx), before);
	assert_int_equal(block_pread(bs, CS, buf, CS), 0);
	assert_memory_equal(buf, data[0], 4096);
	assert_memory_equal(buf + 4096, zero, CS - 4096);
	block_aio_close(ctx);
	block_close(bs);
	assert_int_equal(test_run("qemu-img check -q '%s'", name), 0);
}

/* The L2 update of an allocating write runs where the completion is reaped (the VM's event loop)
 * only when its L2 table is in the cache (and a read is mapped there only then); when the table was
 * evicted while the data was being written, loading it would block the loop, so a worker maps the
 * clusters and delivers the completion.  Both ways the data reads back and qemu-img finds the image
 * clean.  64 KiB clusters: one L2 table per 512 MiB, the cache holds 64, and 70 other tables push
 * the first one out. */
static void test_uring_qcow2_alloc_l2_evicted(void **state)
{
	enum { CS = 65536, TABLES = 70 };
	const uint64_t per_l2 = 512ull << 20;
	struct block_aio_config c = {.engine = BLOCK_AIO_ENGINE_URING};
	static uint8_t data[2][CS] __attribute__((aligned(4096)));
	static uint8_t buf[CS] __attribute__((aligned(4096)));
	struct block_device *bs;
	struct block_aio_ctx *ctx;
	char name[512];

	(void)state;
	snprintf(name, sizeof(name), "%s", test_path("evict.qcow2"));
	unlink(name);
	assert_int_equal(test_run("qemu-img create -q -f qcow2 -o cluster_size=%d '%s' %llu", CS,
				  name, (unsigned long long)((TABLES + 1) * per_l2)),
			 0);
	assert_int_equal(block_open(name, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	if (block_aio_open(bs, &c, &ctx) < 0) {
		print_message("io_uring unavailable here (%s): skipping\n", error_msg());
		block_close(bs);
		skip();
	}
	/* An L2 table in each region: the first cluster of each written. */
	memset(buf, 0x5a, CS);
	for (uint64_t t = 0; t <= TABLES; t++)
		assert_int_equal(block_pwrite(bs, t * per_l2, buf, CS), 0);
	assert_int_equal(block_pread(bs, 0, buf, CS), 0); /* the first table cached again */

	for (int evict = 0; evict <= 1; evict++) {
		uint64_t off = (uint64_t)(3 + evict) * CS;
		struct iovec iov = {data[evict], CS};
		struct block_aio_req w = {
		    .op = BLOCK_AIO_WRITE, .offset = off, .iov = &iov, .iovcnt = 1, .cb = count_cb};
		unsigned before = block_aio_kernel_submits(ctx);
		unsigned in_pool = block_aio_alloc_ends_in_pool(ctx);

		memset(data[evict], 0xc0 + evict, CS);
		cb_count = 0;
		assert_int_equal(block_aio_submit(ctx, &w), 0);
		assert_true(block_aio_kernel_submits(ctx) > before); /* the ring writes the data */
		/* The data is written, the completion not reaped: push the table out now. */
		struct pollfd p = {.fd = block_aio_fd(ctx), .events = POLLIN};
		assert_int_equal(poll(&p, 1, 10000), 1);
		for (uint64_t t = 1; evict && t <= TABLES; t++)
			assert_int_equal(block_pread(bs, t * per_l2, buf, CS), 0);
		while (block_aio_pending(ctx))
			block_aio_poll(ctx, 10000);
		assert_int_equal(cb_count, 1);
		assert_int_equal(cb_last, 0);
		assert_int_equal(block_aio_alloc_ends_in_pool(ctx), in_pool + (unsigned)evict);
		assert_int_equal(block_pread(bs, off, buf, CS), 0);
		assert_memory_equal(buf, data[evict], CS);
	}
	/* A read whose L2 table is not cached is not looked up on the submitting thread either: the
	 * pool reads it (and the table); the next read of that region takes the ring. */
	for (uint64_t t = 1; t <= TABLES; t++)
		assert_int_equal(block_pread(bs, t * per_l2, buf, CS), 0);
	for (int cached = 0; cached <= 1; cached++) {
		struct iovec iov = {buf, CS};
		struct block_aio_req r = {.op = BLOCK_AIO_READ,
					  .offset = 3 * CS,
					  .iov = &iov,
					  .iovcnt = 1,
					  .cb = count_cb};
		unsigned before = block_aio_kernel_submits(ctx);
		memset(buf, 0, CS);
		assert_int_equal(block_aio_submit(ctx, &r), 0);
		while (block_aio_pending(ctx))
			block_aio_poll(ctx, 10000);
		assert_int_equal(cb_last, 0);
		assert_int_equal(block_aio_kernel_submits(ctx), before + (unsigned)cached);
		assert_memory_equal(buf, data[0], CS);
	}
	block_aio_close(ctx);
	block_close(bs);
	assert_int_equal(test_run("qemu-img check -q '%s'", name), 0);
	unlink(name);
}

/* The refcount blocks an allocating write reserves its clusters in are not read on the submitting
 * thread either: after a reopen (empty caches) with the L2 table loaded by a read, the first
 * allocating write goes to the pool, which reads the refcount block; the next one finds it cached
 * and takes the ring.  Both read back, and qemu-img finds the image clean. */
static void test_uring_qcow2_alloc_refblock_evicted(void **state)
{
	enum { CS = 65536 };
	struct block_aio_config c = {.engine = BLOCK_AIO_ENGINE_URING};
	static uint8_t data[2][CS] __attribute__((aligned(4096)));
	static uint8_t buf[CS] __attribute__((aligned(4096)));
	struct block_device *bs;
	struct block_aio_ctx *ctx;
	char name[512];

	(void)state;
	snprintf(name, sizeof(name), "%s", test_path("refevict.qcow2"));
	unlink(name);
	assert_int_equal(
	    test_run("qemu-img create -q -f qcow2 -o cluster_size=%d '%s' 64M", CS, name), 0);
	assert_int_equal(block_open(name, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	memset(buf, 0x5a, CS);
	assert_int_equal(block_pwrite(bs, 0, buf, CS), 0); /* an L2 table for the region */
	block_close(bs);
	assert_int_equal(block_open(name, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	if (block_aio_open(bs, &c, &ctx) < 0) {
		print_message("io_uring unavailable here (%s): skipping\n", error_msg());
		block_close(bs);
		skip();
	}
	assert_int_equal(block_pread(bs, 0, buf, CS), 0); /* L2 cached, refcount block not */
	for (int cached = 0; cached <= 1; cached++) {
		uint64_t off = (uint64_t)(1 + cached) * CS;
		struct iovec iov = {data[cached], CS};
		struct block_aio_req w = {
		    .op = BLOCK_AIO_WRITE, .offset = off, .iov = &iov, .iovcnt = 1, .cb = count_cb};
		unsigned before = block_aio_kernel_submits(ctx);

		memset(data[cached], 0xd0 + cached, CS);
		cb_count = 0;
		assert_int_equal(block_aio_submit(ctx, &w), 0);
		while (block_aio_pending(ctx))
			block_aio_poll(ctx, 10000);
		assert_int_equal(cb_count, 1);
		assert_int_equal(cb_last, 0);
		if (cached)
			assert_true(block_aio_kernel_submits(ctx) > before);
		else
			assert_int_equal(block_aio_kernel_submits(ctx), before);
		assert_int_equal(block_pread(bs, off, buf, CS), 0);
		assert_memory_equal(buf, data[cached], CS);
	}
	block_aio_close(ctx);
	block_close(bs);
	assert_int_equal(test_run("qemu-img check -q '%s'", name), 0);
	unlink(name);
}

/* werror=stop: failed writes wait (pending, no callback), the owner hears of it once per batch,
 * and are retried or released; reads never wait.  Faults come from the test hook
 * (storage/core/block_fault.h). */
static int stops;
static void on_stop(void *opaque)
{
	(void)opaque;
	stops++;
}

static void test_stop_on_error(void **state)
{
	struct block_device *bs = open_raw("werror.raw", 0);
	struct block_aio_ctx *ctx;
	static uint8_t buf[BLK], back[BLK];
	struct iovec iov = {buf, BLK}, riov = {back, BLK};
	char flag[4096];

	(void)state;
	snprintf(flag, sizeof(flag), "%s", test_path("enospc-now"));
	setenv("MINIVMM_TEST_ENOSPC_WHILE", flag, 1);
	block_fault_reload();
	for (int engine = BLOCK_AIO_ENGINE_THREADS; engine <= BLOCK_AIO_ENGINE_URING; engine++) {
		struct block_aio_config c = {.engine = engine};
		if (block_aio_open(bs, &c, &ctx) < 0)
			continue;
		struct block_aio_req w = {
		    .op = BLOCK_AIO_WRITE, .offset = BLK, .iov = &iov, .iovcnt = 1, .cb = count_cb};
		struct block_aio_req r = {
		    .op = BLOCK_AIO_READ, .offset = BLK, .iov = &riov, .iovcnt = 1, .cb = count_cb};
		memset(buf, 0x40 + engine, BLK);
		cb_count = 0;
		stops = 0;
		/* Without the policy the error reaches the callback. */
		close(open(flag, O_CREAT | O_WRONLY, 0600));
		assert_int_equal(block_aio_submit(ctx, &w), 0);
		while (block_aio_pending(ctx))
			block_aio_poll(ctx, 10000);
		assert_int_equal(cb_count, 1);
		assert_int_equal(cb_last, -ENOSPC);
		/* With it, the write waits and the owner is told; a read goes through. */
		block_aio_set_stop_on_error(ctx, on_stop, NULL);
		assert_int_equal(block_aio_submit(ctx, &w), 0);
		block_aio_poll(ctx, 10000);
		assert_int_equal(cb_count, 1);
		assert_int_equal(stops, 1);
		assert_int_equal(block_aio_stopped_count(ctx), 1);
		assert_int_equal(block_aio_pending(ctx), 1);
		assert_int_equal(block_aio_submit(ctx, &r), 0);
		while (block_aio_pending(ctx) > 1)
			block_aio_poll(ctx, 10000);
		assert_int_equal(cb_count, 2);
		assert_int_equal(cb_last, 0);
		/* Space is back: the retry writes the data, and the callback sees success. */
		unlink(flag);
		assert_int_equal(block_aio_retry_stopped(ctx), 1);
		while (block_aio_pending(ctx))
			block_aio_poll(ctx, 10000);
		assert_int_equal(cb_count, 3);
		assert_int_equal(cb_last, 0);
		assert_int_equal(block_pread(bs, BLK, back, BLK), 0);
		assert_memory_equal(back, buf, BLK);
		/* Released instead (a reset): the callback gets the error, and it is not parked
		 * again. */
		close(open(flag, O_CREAT | O_WRONLY, 0600));
		assert_int_equal(block_aio_submit(ctx, &w), 0);
		block_aio_poll(ctx, 10000);
		assert_int_equal(stops, 2);
		assert_int_equal(block_aio_release_stopped(ctx), 1);
		while (block_aio_pending(ctx))
			block_aio_poll(ctx, 10000);
		assert_int_equal(cb_count, 4);
		assert_int_equal(cb_last, -ENOSPC);
		assert_int_equal(stops, 2);
		/* Closing with a parked write completes it (with its error) instead of hanging. */
		assert_int_equal(block_aio_submit(ctx, &w), 0);
		block_aio_poll(ctx, 10000);
		unlink(flag);
		block_aio_close(ctx);
		assert_int_equal(cb_count, 5);
	}
	unsetenv("MINIVMM_TEST_ENOSPC_WHILE");
	block_fault_reload();
	block_close(bs);
}

static int setup(void **state)
{
	(void)state;
	return test_tmpdir_setup("test-aio");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_threads_buffered),
	    cmocka_unit_test(test_threads_direct),
	    cmocka_unit_test(test_pool_joins_sequential),
	    cmocka_unit_test(test_uring_buffered),
	    cmocka_unit_test(test_uring_direct),
	    cmocka_unit_test(test_uring_small_ring),
	    cmocka_unit_test(test_flush_semantics),
	    cmocka_unit_test(test_submit_errors_and_failed_io),
	    cmocka_unit_test(test_uring_short_read),
	    cmocka_unit_test(test_close_drains),
	    cmocka_unit_test(test_stop_on_error),
	    cmocka_unit_test(test_probed_raw_guard),
	    cmocka_unit_test(test_uring_plug_batches),
	    cmocka_unit_test(test_uring_raw_writes_in_pool),
	    cmocka_unit_test(test_uring_callbacks_batched),
	    cmocka_unit_test(test_uring_qcow2),
	    cmocka_unit_test(test_uring_qcow2_alloc_order),
	    cmocka_unit_test(test_uring_qcow2_alloc_l2_evicted),
	    cmocka_unit_test(test_uring_qcow2_alloc_refblock_evicted),
	};
	return cmocka_run_group_tests(tests, setup, test_tmpdir_teardown);
}
