/* The worker pool's joining of adjacent queued requests (block_aio_pool_take): which requests a
 * worker takes in one transfer, on a queue built by hand (no threads, no image). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "storage/core/block_aio_impl.h"

#define N 80

static struct block_aio_ctx ctx;
static struct block_aio_req req[N];
static struct iovec iov[N][BLOCK_AIO_MERGE_IOVS + 1];
static int nreq;

static void reset(void)
{
	memset(&ctx, 0, sizeof(ctx));
	memset(req, 0, sizeof(req));
	nreq = 0;
}

/* Queue a request of iovcnt iovecs of `each` bytes at offset. */
static struct block_aio_req *queue(enum block_aio_op op, uint64_t offset, int iovcnt, size_t each)
{
	struct block_aio_req *r = &req[nreq];

	for (int i = 0; i < iovcnt; i++)
		iov[nreq][i] = (struct iovec){.iov_base = (void *)(uintptr_t)4096, .iov_len = each};
	nreq++;
	*r = (struct block_aio_req){
	    .op = op, .offset = offset, .iov = iov[nreq - 1], .iovcnt = iovcnt};
	if (op == BLOCK_AIO_FLUSH || op == BLOCK_AIO_DISCARD)
		r->len = each;
	if (ctx.work_tail)
		ctx.work_tail->next = r;
	else
		ctx.work_head = r;
	ctx.work_tail = r;
	return r;
}

static int chain_length(struct block_aio_req *head)
{
	int n = 0;
	for (; head; head = head->next)
		n++;
	return n;
}

/* Sequential writes join up to BLOCK_AIO_MERGE_BYTES; the rest stays queued for the next worker. */
static void test_sequential_writes_join(void **state)
{
	const size_t len = 65536;
	const int per_run = BLOCK_AIO_MERGE_BYTES / 65536;
	(void)state;
	reset();
	for (int i = 0; i < 2 * per_run + 1; i++)
		queue(BLOCK_AIO_WRITE, (uint64_t)i * len, 1, len);
	struct block_aio_req *a = block_aio_pool_take(&ctx);
	assert_ptr_equal(a, &req[0]);
	assert_int_equal(chain_length(a), per_run);
	assert_ptr_equal(ctx.work_head, &req[per_run]);
	assert_int_equal(chain_length(block_aio_pool_take(&ctx)), per_run);
	struct block_aio_req *last = block_aio_pool_take(&ctx);
	assert_ptr_equal(last, &req[2 * per_run]);
	assert_null(last->next);
	assert_null(ctx.work_head);
	assert_null(ctx.work_tail);
	assert_null(block_aio_pool_take(&ctx));
}

/* A gap, a different operation, a flush or a read after a write ends the run. */
static void test_run_ends(void **state)
{
	(void)state;
	reset();
	queue(BLOCK_AIO_WRITE, 0, 1, 4096);
	queue(BLOCK_AIO_WRITE, 4096, 1, 4096);
	queue(BLOCK_AIO_WRITE, 12288, 1, 4096); /* a gap */
	queue(BLOCK_AIO_READ, 16384, 1, 4096);	/* continues on the disk, but a read */
	queue(BLOCK_AIO_READ, 20480, 2, 2048);
	queue(BLOCK_AIO_FLUSH, 0, 0, 0);
	queue(BLOCK_AIO_READ, 24576, 1, 4096);
	queue(BLOCK_AIO_DISCARD, 28672, 0, 4096);
	queue(BLOCK_AIO_DISCARD, 32768, 0, 4096); /* only reads and writes join */
	int expect[] = {2, 1, 2, 1, 1, 1, 1};
	for (unsigned i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
		assert_int_equal(chain_length(block_aio_pool_take(&ctx)), expect[i]);
	assert_null(block_aio_pool_take(&ctx));
}

/* Partial rests (done) and io_uring's allocating writes are never joined, on either side. */
static void test_partial_and_allocating_alone(void **state)
{
	(void)state;
	reset();
	queue(BLOCK_AIO_WRITE, 0, 1, 4096)->done = 512;
	queue(BLOCK_AIO_WRITE, 4096, 1, 4096);
	queue(BLOCK_AIO_WRITE, 8192, 1, 4096)->allocating = true;
	queue(BLOCK_AIO_WRITE, 12288, 1, 4096);
	queue(BLOCK_AIO_WRITE, 16384, 1, 4096)->done = 4;
	for (int i = 0; i < 5; i++) {
		struct block_aio_req *r = block_aio_pool_take(&ctx);
		assert_ptr_equal(r, &req[i]);
		assert_null(r->next);
	}
}

/* The iovecs of a run fit the worker's array: a request that would overflow it starts the next. */
static void test_iovec_limit(void **state)
{
	(void)state;
	reset();
	uint64_t off = 0;
	for (int i = 0; i < 3; i++, off += 30 * 512)
		queue(BLOCK_AIO_WRITE, off, 30, 512); /* 90 iovecs, 45 KiB */
	assert_int_equal(chain_length(block_aio_pool_take(&ctx)), 2);
	assert_int_equal(chain_length(block_aio_pool_take(&ctx)), 1);
	/* One request with more iovecs than the array goes alone. */
	reset();
	queue(BLOCK_AIO_WRITE, 0, BLOCK_AIO_MERGE_IOVS + 1, 512);
	queue(BLOCK_AIO_WRITE, (BLOCK_AIO_MERGE_IOVS + 1) * 512, 1, 512);
	assert_int_equal(chain_length(block_aio_pool_take(&ctx)), 1);
	assert_int_equal(chain_length(block_aio_pool_take(&ctx)), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sequential_writes_join),
	    cmocka_unit_test(test_run_ends),
	    cmocka_unit_test(test_partial_and_allocating_alone),
	    cmocka_unit_test(test_iovec_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
