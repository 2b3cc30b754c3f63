/* `minivmm block-bench` (testing): measures the asynchronous block engines on a raw image.
 *
 *   minivmm block-bench [-d DIR] [-s SECONDS] [-m MiB] [-c none|writeback] [-t THREADS]
 *
 * It fills a scratch raw image in DIR (default /var/tmp), then for each engine (threads, io_uring)
 * runs 4 KiB random read/write and 64 KiB sequential read/write at queue depth 1 and 32, and prints
 * IOPS and MiB/s per case (-t: worker threads of the threads engine, default its default).  This is
 * how the defaults in block_aio.c were chosen; it lives in the program (not a separate binary) so
 * it measures exactly the code the VMM runs.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/core/block.h"
#include "storage/core/block_aio.h"
#include "vmm/command.h"

#define BENCH_MAX_QD 32

struct bench_slot {
	struct block_aio_req req;
	struct iovec iov;
	struct bench_run *run;
};

struct bench_run {
	struct block_aio_ctx *ctx;
	uint64_t size, bs, next_seq, seed;
	bool random, write, stop;
	uint64_t ops, errors;
	struct bench_slot slot[BENCH_MAX_QD];
};

static double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t bench_next_offset(struct bench_run *r)
{
	if (r->random) {
		r->seed ^= r->seed << 13;
		r->seed ^= r->seed >> 7;
		r->seed ^= r->seed << 17;
		return (r->seed % (r->size / r->bs)) * r->bs;
	}
	uint64_t off = r->next_seq;
	r->next_seq = (r->next_seq + r->bs) % r->size;
	return off;
}

static void bench_cb(struct block_aio_req *req, int ret);

static int bench_submit(struct bench_slot *s)
{
	struct bench_run *r = s->run;

	memset(&s->req, 0, sizeof(s->req));
	s->req.op = r->write ? BLOCK_AIO_WRITE : BLOCK_AIO_READ;
	s->req.offset = bench_next_offset(r);
	s->req.iov = &s->iov;
	s->req.iovcnt = 1;
	s->req.cb = bench_cb;
	s->req.opaque = s;
	return block_aio_submit(r->ctx, &s->req);
}

static void bench_cb(struct block_aio_req *req, int ret)
{
	struct bench_slot *s = req->opaque;

	if (ret < 0)
		s->run->errors++;
	s->run->ops++;
	if (!s->run->stop && bench_submit(s) < 0)
		s->run->errors++;
}

static int bench_threads;

static int bench_case(struct block_device *bs, enum block_aio_engine engine, uint64_t blk, int qd,
		      bool random, bool write, double seconds, void *bufs)
{
	struct block_aio_config cfg = {.engine = engine};
	if (engine == BLOCK_AIO_ENGINE_THREADS)
		cfg.threads = bench_threads;
	struct bench_run *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return -ENOMEM;
	ret = block_aio_open(bs, &cfg, &r->ctx);
	if (ret < 0) {
		free(r);
		return ret;
	}
	r->size = bs->size;
	r->bs = blk;
	r->random = random;
	r->write = write;
	r->seed = 0x9E3779B97F4A7C15ull;
	for (int i = 0; i < qd; i++) {
		r->slot[i].run = r;
		r->slot[i].iov = (struct iovec){(char *)bufs + (size_t)i * 65536, blk};
		if (bench_submit(&r->slot[i]) < 0)
			r->errors++;
	}
	double start = bench_now(), end = start + seconds;
	while (bench_now() < end)
		block_aio_poll(r->ctx, 100);
	r->stop = true;
	double elapsed = bench_now() - start;
	uint64_t ops = r->ops;
	block_aio_close(r->ctx);
	printf("%-8s %-9s %3lluk qd%-3d %9.0f IOPS %8.1f MiB/s%s\n",
	       engine == BLOCK_AIO_ENGINE_URING ? "io_uring" : "threads",
	       random ? (write ? "randwrite" : "randread") : (write ? "seqwrite" : "seqread"),
	       (unsigned long long)(blk / 1024), qd, ops / elapsed,
	       ops * blk / elapsed / (1024 * 1024), r->errors ? "  (errors!)" : "");
	ret = r->errors ? -EIO : 0;
	free(r);
	return ret;
}

static int bench_run(int argc, char **argv)
{
	const char *dir = "/var/tmp";
	double seconds = 2;
	uint64_t mib = 128;
	int flags = BLOCK_OPEN_RDWR | BLOCK_OPEN_CACHE_NONE, opt;

	optind = 1;
	while ((opt = getopt(argc, argv, "d:s:m:c:t:")) != -1) {
		switch (opt) {
		case 'd':
			dir = optarg;
			break;
		case 's':
			seconds = strtod(optarg, NULL);
			break;
		case 'm':
			mib = strtoull(optarg, NULL, 10);
			break;
		case 't':
			bench_threads = atoi(optarg);
			break;
		case 'c':
			if (strcmp(optarg, "writeback") == 0)
				flags &= ~BLOCK_OPEN_CACHE_NONE;
			else if (strcmp(optarg, "none") != 0)
				goto usage;
			break;
		default:
			goto usage;
		}
	}
	if (seconds <= 0 || seconds > 600 || mib < 1 || mib > 65536 || bench_threads < 0 ||
	    bench_threads > 64)
		goto usage;

	char path[4096];
	snprintf(path, sizeof(path), "%s/minivmm-bench-%d.raw", dir, (int)getpid());
	struct block_create_args a = {.size = mib << 20};
	struct block_device *bs;
	void *bufs;
	int ret = block_create("raw", path, &a);
	if (ret == 0)
		ret = block_open(path, "raw", flags, &bs);
	if (ret < 0) {
		fprintf(stderr, "block-bench: %s\n", error_msg());
		unlink(path);
		return 1;
	}
	if (posix_memalign(&bufs, 4096, (size_t)BENCH_MAX_QD * 65536)) {
		block_close(bs);
		unlink(path);
		return 1;
	}
	/* Real data everywhere, so reads do not hit holes. */
	memset(bufs, 0x5A, (size_t)BENCH_MAX_QD * 65536);
	for (uint64_t off = 0; off < bs->size && ret == 0; off += (uint64_t)BENCH_MAX_QD * 65536)
		ret = block_pwrite(bs, off, bufs, (size_t)BENCH_MAX_QD * 65536);
	if (ret == 0)
		ret = block_flush(bs);
	printf("raw image %llu MiB in %s, cache=%s, %.1f s per case\n", (unsigned long long)mib,
	       dir, flags & BLOCK_OPEN_CACHE_NONE ? "none" : "writeback", seconds);
	static const struct {
		uint64_t bs;
		bool random, write;
	} cases[] = {
	    {4096, true, false}, {4096, true, true}, {65536, false, false}, {65536, false, true}};
	enum block_aio_engine engines[] = {BLOCK_AIO_ENGINE_THREADS, BLOCK_AIO_ENGINE_URING};
	for (size_t c = 0; c < 4 && ret == 0; c++)
		for (int qd = 1; qd <= 32 && ret == 0; qd += 31)
			for (size_t e = 0; e < 2 && ret == 0; e++)
				ret = bench_case(bs, engines[e], cases[c].bs, qd, cases[c].random,
						 cases[c].write, seconds, bufs);
	if (ret < 0)
		fprintf(stderr, "block-bench: %s\n", error_msg());
	free(bufs);
	block_close(bs);
	unlink(path);
	return ret < 0 ? 1 : 0;
usage:
	fprintf(stderr, "usage: minivmm block-bench [-d DIR] [-s SECONDS] [-m MiB] "
			"[-c none|writeback] [-t THREADS]\n");
	return 2;
}

static const struct command block_bench_command = {
    .name = "block-bench",
    .summary = "(testing) measure the asynchronous block engines on a raw image",
    .testing = true,
    .run = bench_run,
};
COMMAND(block_bench_command);
