/* block_aio_complete_polled against the loop's block_aio_complete on the same context (issue 17:
 * a BIOS polling an AHCI port runs its completions on the vCPU while the event loop may run them
 * too).  Both engines, many rounds: a "vCPU" thread spins on the polled call while a "loop" thread
 * runs block_aio_complete whenever the eventfd is readable and then wakes a drain waiter, as
 * devices/storage.c does.  Checked: no two callbacks of the context ever run at once, each runs
 * exactly once with the right data, and a drain waiting on the loop's wake-up always ends (the
 * polled path leaves the eventfd readable).  Also: werror=stop's pause is asked for on the loop's
 * call only, and the polled call never runs inside a completion already running.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/core/block.h"
#include "storage/core/block_aio.h"
#include "storage/core/block_fault.h"
#include "tests/lib/testlib.h"

#define BLK 4096
#define SLOTS 32
#define DISK (SLOTS * BLK)
#define ROUNDS 600
#define DRAIN_BOUND_S 20 /* only stops a hang: a lost wake-up fails the test */

struct slot {
	struct block_aio_req req;
	struct iovec iov;
	uint8_t buf[BLK];
	atomic_int outstanding; /* submitted, callback not yet run */
	uint8_t expect;		/* a read's byte */
};

struct rig {
	struct block_aio_ctx *ctx;
	struct slot slot[SLOTS];
	uint8_t disk[SLOTS];	/* each slot's block's byte on the disk */
	atomic_int in_cb;	/* callbacks running now */
	atomic_uint overlaps;	/* a callback found another running */
	atomic_uint bad;	/* a double or stray completion, or wrong data */
	atomic_uint by_vcpu;	/* callbacks the polled path ran */
	atomic_uint by_loop;	/* callbacks block_aio_complete ran */
	atomic_uint busy_polls; /* polled calls that stood back */
	atomic_bool stop;
	atomic_int round; /* the vCPU polls while it differs from `polled` */
	atomic_int polled;
	pthread_t loop_thread, vcpu_thread;
	pthread_mutex_t lock; /* with `drained`: the drain waiter of devices/storage.c */
	pthread_cond_t drained;
};

static _Thread_local bool on_vcpu;

static struct rig *the_rig;

static void rig_cb(struct block_aio_req *req, int ret)
{
	struct rig *r = the_rig;
	struct slot *s = req->opaque;

	if (atomic_fetch_add(&r->in_cb, 1) != 0)
		atomic_fetch_add(&r->overlaps, 1);
	if (atomic_load(&s->outstanding) != 1 || ret != 0)
		atomic_fetch_add(&r->bad, 1);
	if (req->op == BLOCK_AIO_READ)
		for (unsigned i = 0; i < BLK; i++)
			if (s->buf[i] != s->expect) {
				atomic_fetch_add(&r->bad, 1);
				break;
			}
	atomic_fetch_add(on_vcpu ? &r->by_vcpu : &r->by_loop, 1);
	/* Widen the window in which the other thread could run a callback too. */
	sched_yield();
	atomic_fetch_sub(&r->in_cb, 1);
	/* Last: the submitter reuses the slot once it reads 0 (pending drops before the callback
	 * runs, so it cannot tell). */
	if (atomic_fetch_sub(&s->outstanding, 1) != 1)
		atomic_fetch_add(&r->bad, 1);
}

/* The event loop: block_aio_complete when the eventfd is readable, then wake the drain. */
static void *loop_main(void *arg)
{
	struct rig *r = arg;
	unsigned turns = 0;
	while (!atomic_load(&r->stop)) {
		struct pollfd p = {.fd = block_aio_fd(r->ctx), .events = POLLIN};
		if (poll(&p, 1, 20) <= 0)
			continue;
		/* A loop busy elsewhere for a while now and then: the vCPU gets its share. */
		if (++turns % 3)
			usleep(turns % 3 * 20);
		block_aio_complete(r->ctx);
		pthread_mutex_lock(&r->lock);
		pthread_cond_broadcast(&r->drained);
		pthread_mutex_unlock(&r->lock);
	}
	return NULL;
}

/* The polling vCPU: each round, the polled call until its requests are done. */
static void *vcpu_main(void *arg)
{
	struct rig *r = arg;
	on_vcpu = true;
	while (!atomic_load(&r->stop)) {
		int round = atomic_load(&r->round);
		if (round == atomic_load(&r->polled)) {
			sched_yield();
			continue;
		}
		/* As a BIOS polls: no pause between the tries. */
		while (block_aio_pending(r->ctx))
			if (block_aio_complete_polled(r->ctx) == -EBUSY) {
				atomic_fetch_add(&r->busy_polls, 1);
				sched_yield();
			}
		atomic_store(&r->polled, round);
	}
	return NULL;
}

static void submit_round(struct rig *r, int round)
{
	block_aio_plug(r->ctx);
	for (unsigned i = 0; i < SLOTS; i++) {
		struct slot *s = &r->slot[i];
		bool write = (round + i) % 2;
		if (write) {
			s->expect = r->disk[i] = (uint8_t)(round * 7 + i + 1);
			memset(s->buf, s->expect, BLK);
		} else {
			s->expect = r->disk[i]; /* written in the round before (or 0) */
			memset(s->buf, 0xEE, BLK);
		}
		s->iov = (struct iovec){s->buf, BLK};
		s->req = (struct block_aio_req){.op = write ? BLOCK_AIO_WRITE : BLOCK_AIO_READ,
						.offset = (uint64_t)i * BLK,
						.iov = &s->iov,
						.iovcnt = 1,
						.cb = rig_cb,
						.opaque = s};
		atomic_store(&s->outstanding, 1);
		assert_int_equal(block_aio_submit(r->ctx, &s->req), 0);
	}
	block_aio_unplug(r->ctx);
}

static struct block_device *open_raw(const char *name)
{
	struct block_create_args a = {.size = DISK};
	struct block_device *bs;

	unlink(test_path(name));
	assert_int_equal(block_create("raw", test_path(name), &a), 0);
	assert_int_equal(block_open(test_path(name), "raw", BLOCK_OPEN_RDWR, &bs), 0);
	return bs;
}

static void two_reapers(enum block_aio_engine engine)
{
	struct block_device *bs = open_raw("polled.raw");
	struct block_aio_config c = {.engine = engine};
	struct rig *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	if (block_aio_open(bs, &c, &r->ctx) < 0) {
		print_message("engine %d unavailable here: %s: skipping\n", engine, error_msg());
		free(r);
		block_close(bs);
		return;
	}
	the_rig = r;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->drained, NULL);
	assert_int_equal(pthread_create(&r->loop_thread, NULL, loop_main, r), 0);
	assert_int_equal(pthread_create(&r->vcpu_thread, NULL, vcpu_main, r), 0);
	/* Each round writes half the slots and reads back the other half, written the round before.
	 */
	for (int round = 1; round <= ROUNDS; round++) {
		submit_round(r, round);
		atomic_store(&r->round, round);
		/* The drain of devices/storage.c: woken only by the loop's turns. */
		struct timespec deadline;
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += DRAIN_BOUND_S;
		int ret = 0;
		pthread_mutex_lock(&r->lock);
		while (block_aio_pending(r->ctx) && ret == 0)
			ret = pthread_cond_timedwait(&r->drained, &r->lock, &deadline);
		pthread_mutex_unlock(&r->lock);
		assert_int_equal(ret, 0);
		while (atomic_load(&r->polled) != round) /* the vCPU has seen nothing pending */
			sched_yield();
		for (unsigned i = 0; i < SLOTS; i++)
			while (atomic_load(&r->slot[i].outstanding))
				sched_yield();
	}
	atomic_store(&r->stop, true);
	pthread_join(r->vcpu_thread, NULL);
	pthread_join(r->loop_thread, NULL);
	print_message("engine %d: %u callbacks on the vCPU, %u on the loop, %u polls stood back\n",
		      engine, atomic_load(&r->by_vcpu), atomic_load(&r->by_loop),
		      atomic_load(&r->busy_polls));
	assert_int_equal(atomic_load(&r->overlaps), 0);
	assert_int_equal(atomic_load(&r->bad), 0);
	assert_int_equal(atomic_load(&r->by_vcpu) + atomic_load(&r->by_loop), ROUNDS * SLOTS);
	block_aio_close(r->ctx);
	pthread_cond_destroy(&r->drained);
	pthread_mutex_destroy(&r->lock);
	free(r);
	the_rig = NULL;
	block_close(bs);
}

static void test_two_reapers_threads(void **state)
{
	(void)state;
	two_reapers(BLOCK_AIO_ENGINE_THREADS);
}

static void test_two_reapers_uring(void **state)
{
	(void)state;
	two_reapers(BLOCK_AIO_ENGINE_URING);
}

/* ---- werror=stop and re-entry ---- */

static int cb_count, stops;
static bool stop_on_vcpu;

static void count_cb(struct block_aio_req *req, int ret)
{
	(void)req;
	(void)ret;
	cb_count++;
}

static void on_stop(void *opaque)
{
	(void)opaque;
	stops++;
	stop_on_vcpu = on_vcpu;
}

/* The polled call never parks a failed write nor asks for the pause: it leaves it to the loop's
 * block_aio_complete and stands back until that has run. */
static void test_polled_leaves_stop_to_loop(void **state)
{
	struct block_device *bs = open_raw("werror.raw");
	struct block_aio_ctx *ctx;
	static uint8_t buf[BLK];
	struct iovec iov = {buf, BLK};
	char flag[4096];

	(void)state;
	snprintf(flag, sizeof(flag), "%s", test_path("enospc-now"));
	setenv("MINIVMM_TEST_ENOSPC_WHILE", flag, 1);
	block_fault_reload();
	assert_int_equal(block_aio_open(bs, NULL, &ctx), 0);
	block_aio_set_stop_on_error(ctx, on_stop, NULL);
	close(open(flag, O_CREAT | O_WRONLY, 0600));
	struct block_aio_req w = {
	    .op = BLOCK_AIO_WRITE, .offset = 0, .iov = &iov, .iovcnt = 1, .cb = count_cb};
	cb_count = stops = 0;
	assert_int_equal(block_aio_submit(ctx, &w), 0); /* the fault finishes it at once */
	on_vcpu = true;
	assert_int_equal(block_aio_complete_polled(ctx), 0);
	assert_int_equal(block_aio_complete_polled(ctx), -EBUSY); /* the loop's turn now */
	on_vcpu = false;
	assert_int_equal(stops, 0);
	assert_int_equal(block_aio_stopped_count(ctx), 0);
	assert_int_equal(block_aio_pending(ctx), 1);
	struct pollfd p = {.fd = block_aio_fd(ctx), .events = POLLIN};
	assert_int_equal(poll(&p, 1, 0), 1); /* the loop is woken for it */
	assert_int_equal(block_aio_complete(ctx), 0);
	assert_int_equal(stops, 1);
	assert_false(stop_on_vcpu);
	assert_int_equal(block_aio_stopped_count(ctx), 1);
	assert_int_equal(cb_count, 0);
	/* The loop has run: the polled path works again (nothing to do). */
	assert_int_equal(block_aio_complete_polled(ctx), 0);
	unlink(flag);
	assert_int_equal(block_aio_retry_stopped(ctx), 1);
	for (int i = 0; i < 100000 && block_aio_pending(ctx); i++)
		if (block_aio_complete_polled(ctx) == 0)
			sched_yield();
	assert_int_equal(block_aio_pending(ctx), 0);
	assert_int_equal(cb_count, 1);
	block_aio_close(ctx);
	unsetenv("MINIVMM_TEST_ENOSPC_WHILE");
	block_fault_reload();
	block_close(bs);
}

static struct block_aio_ctx *reentry_ctx;
static int reentry_ret;

static void reentry_cb(struct block_aio_req *req, int ret)
{
	(void)req;
	(void)ret;
	reentry_ret = block_aio_complete_polled(reentry_ctx);
}

/* A polled call while completions run (here from inside one of their callbacks) stands back. */
static void test_polled_stands_back(void **state)
{
	struct block_device *bs = open_raw("reentry.raw");
	static uint8_t buf[BLK];
	struct iovec iov = {buf, BLK};

	(void)state;
	assert_int_equal(block_aio_open(bs, NULL, &reentry_ctx), 0);
	struct block_aio_req rd = {
	    .op = BLOCK_AIO_READ, .offset = 0, .iov = &iov, .iovcnt = 1, .cb = reentry_cb};
	reentry_ret = 1;
	assert_int_equal(block_aio_submit(reentry_ctx, &rd), 0);
	while (block_aio_pending(reentry_ctx))
		block_aio_poll(reentry_ctx, 10000);
	assert_int_equal(reentry_ret, -EBUSY);
	block_aio_close(reentry_ctx);
	block_close(bs);
}

static int setup(void **state)
{
	(void)state;
	return test_tmpdir_setup("test-aio-polled");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_two_reapers_threads),
	    cmocka_unit_test(test_two_reapers_uring),
	    cmocka_unit_test(test_polled_leaves_stop_to_loop),
	    cmocka_unit_test(test_polled_stands_back),
	};
	return cmocka_run_group_tests(tests, setup, test_tmpdir_teardown);
}
