/* Host-side bench: disk completions on the VM's main loop vs a dedicated I/O thread.
 *
 *   make build/completion-loop && build/completion-loop IMAGE.raw main|thread [threads|uring]
 *
 * A "vCPU" thread keeps 32 4 KiB random reads in flight on IMAGE (it submits the next only when
 * told of a completion, as a guest does after an interrupt); the completions run from an event
 * loop either on the main thread, which also carries a console-like eventfd kicked every 100 us
 * by another thread, or on a loop of its own on a second thread.  Prints IOPS over 5 s.  Use an
 * image in the page cache to measure the completion path rather than the disk. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include "lib/event_loop.h"
#include "storage/core/block.h"
#include "storage/core/block_aio.h"

#define QD 32
static struct block_aio_ctx *ctx;
static struct block_aio_req reqs[QD];
static struct iovec iovs[QD];
static char bufs[QD][4096] __attribute__((aligned(4096)));
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int ready[QD], nready;
static atomic_long done;
static volatile int stop;
static uint64_t seed = 88172645463325252ull;
static uint64_t blocks;

static uint64_t rnd(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return seed;
}

static void cb(struct block_aio_req *r, int ret)
{
	(void)ret;
	done++;
	pthread_mutex_lock(&lock);
	ready[nready++] = (int)(r - reqs);
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
}

static void submit(int i)
{
	iovs[i] = (struct iovec){bufs[i], 4096};
	reqs[i] = (struct block_aio_req){.op = BLOCK_AIO_READ,
					 .offset = (rnd() % blocks) * 4096,
					 .iov = &iovs[i],
					 .iovcnt = 1,
					 .cb = cb};
	if (block_aio_submit(ctx, &reqs[i]))
		abort();
}

static void *vcpu(void *a)
{
	(void)a;
	for (int i = 0; i < QD; i++)
		submit(i);
	while (!stop) {
		pthread_mutex_lock(&lock);
		while (!nready && !stop)
			pthread_cond_wait(&cond, &lock);
		int n = nready, mine[QD];
		memcpy(mine, ready, n * sizeof(int));
		nready = 0;
		pthread_mutex_unlock(&lock);
		for (int k = 0; k < n && !stop; k++)
			submit(mine[k]);
	}
	return NULL;
}

static void on_aio(void *o, uint32_t e)
{
	(void)o;
	(void)e;
	block_aio_complete(ctx);
}
static void on_console(void *o, uint32_t e)
{
	(void)e;
	uint64_t v;
	(void)!read(*(int *)o, &v, 8);
}
static int cfd;
static void *console(void *a)
{
	(void)a;
	uint64_t one = 1;
	while (!stop) {
		(void)!write(cfd, &one, 8);
		usleep(100);
	}
	return NULL;
}
static void *loop_thread(void *l)
{
	event_loop_run(l);
	return NULL;
}
static void stopper(void *o, uint32_t e)
{
	(void)e;
	event_loop_stop(o);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: completion-loop IMAGE.raw main|thread [threads|uring]\n");
		return 2;
	}
	int dedicated = !strcmp(argv[2], "thread");
	struct block_device *bs;
	if (block_open(argv[1], "raw", 0, &bs)) {
		fprintf(stderr, "%s: cannot open\n", argv[1]);
		return 1;
	}
	blocks = bs->size / 4096;
	struct block_aio_config c = {.engine = BLOCK_AIO_ENGINE_THREADS};
	if (argc > 3 && !strcmp(argv[3], "uring"))
		c.engine = BLOCK_AIO_ENGINE_URING;
	if (block_aio_open(bs, &c, &ctx))
		return 1;
	struct event_loop *main_loop, *io_loop;
	event_loop_create(&main_loop);
	event_loop_create(&io_loop);
	cfd = eventfd(0, EFD_NONBLOCK);
	event_loop_add_fd(main_loop, cfd, EPOLLIN, on_console, &cfd, NULL);
	event_loop_add_fd(dedicated ? io_loop : main_loop, block_aio_fd(ctx), EPOLLIN, on_aio, NULL,
			  NULL);
	pthread_t t1, t2, t3;
	pthread_create(&t2, NULL, console, NULL);
	if (dedicated)
		pthread_create(&t3, NULL, loop_thread, io_loop);
	pthread_create(&t1, NULL, vcpu, NULL);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	/* run the main loop for 5 s */
	event_loop_add_timer(main_loop, 5000000000ull, 0, stopper, main_loop, NULL);
	event_loop_run(main_loop);
	clock_gettime(CLOCK_MONOTONIC, &b);
	long n = done;
	stop = 1;
	pthread_cond_broadcast(&cond);
	double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	printf("%s %s: %.0f IOPS\n", dedicated ? "dedicated I/O thread" : "main loop",
	       c.engine == BLOCK_AIO_ENGINE_URING ? "io_uring" : "threads", n / s);
	fflush(stdout);
	_exit(0);
}
