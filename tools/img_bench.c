/* `minivmm img bench` (benchmarking): qemu-img bench's options and output, over the block layer.
 *
 *   -c COUNT requests (75000), -d DEPTH in flight (64), -s SIZE each (4k), -S STEP between offsets
 *   (SIZE), -o OFFSET of the first, -w writes instead of reads, -t CACHE mode, --pattern=BYTE for
 *   writes, --flush-interval=N (a flush every N writes; in-flight writes drain first unless
 *   --no-drain), --random (offsets drawn uniformly among SIZE-aligned positions, fixed seed: not in
 *   qemu-img).
 *
 * Like qemu-img bench, one thread keeps DEPTH requests in flight through the asynchronous engine
 * the VMM's disk controllers use (block_aio: io_uring on raw images, the worker pool otherwise), so
 * the figures are those of a guest's disk queue.  Request i goes to OFFSET + i * STEP, wrapping to
 * OFFSET at the end of the image as qemu-img bench does.  The buffers are one huge-page-backed
 * mapping, as guest RAM is.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "storage/core/block_aio.h"
#include "tools/img.h"

#define IMG_BENCH_MAX_DEPTH 256

struct img_bench;

struct img_bench_slot {
	struct block_aio_req req;
	struct iovec iov;
	struct img_bench *b;
};

struct img_bench {
	struct block_device *bs;
	struct block_aio_ctx *ctx;
	const char *file;
	uint64_t count, size, step, offset, flush_interval;
	bool write, random, drain;
	int pattern;
	uint64_t slots; /* offsets that fit before wrapping */
	uint64_t seed;
	uint64_t submitted, writes_since_flush;
	unsigned in_flight;
	bool flushing, failed;
	struct block_aio_req flush;
	struct img_bench_slot *idle[IMG_BENCH_MAX_DEPTH];
	unsigned nidle;
};

static uint64_t img_bench_rand(uint64_t *s)
{
	/* xorshift64*: fast, and enough to spread offsets; fixed seed for repeatable runs. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static void img_bench_done(struct block_aio_req *req, int ret);

static void img_bench_fail(struct img_bench *b, int ret, const char *what)
{
	if (!b->failed)
		img_fail(b->file, "%s failed: %s", what, strerror(-ret));
	b->failed = true;
}

/* Keep DEPTH requests in flight; a pending flush stops new requests until it completes (and, with
 * drain, waits until the writes before it have completed). */
static void img_bench_fill(struct img_bench *b)
{
	while (!b->failed) {
		if (b->flushing) {
			if (b->flush.cb || (b->drain && b->in_flight))
				return;
			b->flush = (struct block_aio_req){
			    .op = BLOCK_AIO_FLUSH, .cb = img_bench_done, .opaque = b};
			int ret = block_aio_submit(b->ctx, &b->flush);
			if (ret < 0) {
				img_bench_fail(b, ret, "flush");
				return;
			}
			b->in_flight++;
			if (b->drain)
				return;
			continue;
		}
		if (b->submitted >= b->count || !b->nidle)
			return;
		struct img_bench_slot *s = b->idle[--b->nidle];
		uint64_t i = b->submitted++;
		uint64_t slot = b->random ? img_bench_rand(&b->seed) % b->slots : i % b->slots;
		s->req = (struct block_aio_req){
		    .op = b->write ? BLOCK_AIO_WRITE : BLOCK_AIO_READ,
		    .offset = b->offset + slot * (b->random ? b->size : b->step),
		    .iov = &s->iov,
		    .iovcnt = 1,
		    .cb = img_bench_done,
		    .opaque = s,
		};
		int ret = block_aio_submit(b->ctx, &s->req);
		if (ret < 0) {
			b->idle[b->nidle++] = s;
			img_bench_fail(b, ret, b->write ? "write" : "read");
			return;
		}
		b->in_flight++;
		if (b->write && b->flush_interval && ++b->writes_since_flush == b->flush_interval) {
			b->writes_since_flush = 0;
			b->flushing = true;
		}
	}
}

static void img_bench_done(struct block_aio_req *req, int ret)
{
	struct img_bench_slot *s = req->op == BLOCK_AIO_FLUSH ? NULL : req->opaque;
	struct img_bench *b = s ? s->b : req->opaque;

	b->in_flight--;
	if (ret < 0)
		img_bench_fail(b, ret, s ? (b->write ? "write" : "read") : "flush");
	if (s) {
		b->idle[b->nidle++] = s;
	} else {
		b->flush.cb = NULL;
		b->flushing = false;
	}
	img_bench_fill(b);
}

/* Run the whole request stream; 0 or 1 (the message printed). */
static int img_bench_run(struct img_bench *b, uint64_t depth, char *buf)
{
	struct img_bench_slot *slots = calloc(depth, sizeof(*slots));
	int ret;

	if (!slots)
		return img_fail(b->file, "out of memory");
	for (uint64_t i = 0; i < depth; i++) {
		slots[i] = (struct img_bench_slot){.iov = {buf + i * b->size, b->size}, .b = b};
		b->idle[b->nidle++] = &slots[i];
	}
	block_aio_plug(b->ctx);
	img_bench_fill(b);
	block_aio_unplug(b->ctx);
	while (b->in_flight) {
		ret = block_aio_poll(b->ctx, -1);
		if (ret < 0) {
			img_bench_fail(b, ret, "waiting for completions");
			break;
		}
	}
	block_aio_close(b->ctx); /* waits for anything still in flight after a failure */
	b->ctx = NULL;
	free(slots);
	return b->failed ? 1 : 0;
}

static int img_bench_number(const char *what, const char *text, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(text, &end, 10);
	if (!text[0] || *end || text[0] == '-')
		return img_fail("bench", "%s '%s' is not a number", what, text);
	*out = v;
	return 0;
}

int img_bench_main(int argc, char **argv)
{
	static const struct option longopts[] = {{"pattern", required_argument, NULL, 'P'},
						 {"flush-interval", required_argument, NULL, 'I'},
						 {"no-drain", no_argument, NULL, 'D'},
						 {"random", no_argument, NULL, 'R'},
						 {"force-share", no_argument, NULL, 'U'},
						 {0}};
	struct img_bench b = {
	    .count = 75000, .size = 4096, .drain = true, .seed = 0x9E3779B97F4A7C15ULL};
	const char *fmt = NULL;
	uint64_t depth = 64, v;
	int c, flags = 0;
	bool step_set = false;

	img_getopt_reset();
	while ((c = getopt_long(argc, argv, "c:d:f:ni:o:qs:S:t:wU", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (img_bench_number("-c", optarg, &b.count))
				return 1;
			break;
		case 'd':
			if (img_bench_number("-d", optarg, &depth))
				return 1;
			break;
		case 'f':
			fmt = optarg;
			break;
		case 'o':
			if (img_parse_size("bench", optarg, &b.offset))
				return 1;
			break;
		case 's':
			if (img_parse_size("bench", optarg, &b.size))
				return 1;
			break;
		case 'S':
			if (img_parse_size("bench", optarg, &b.step))
				return 1;
			step_set = true;
			break;
		case 't':
			if (!strcmp(optarg, "none") || !strcmp(optarg, "directsync"))
				flags |= BLOCK_OPEN_CACHE_NONE;
			else if (!strcmp(optarg, "unsafe"))
				flags |= BLOCK_OPEN_CACHE_UNSAFE;
			else if (strcmp(optarg, "writeback") && strcmp(optarg, "writethrough"))
				return img_fail("bench", "unknown cache mode '%s'", optarg);
			break;
		case 'w':
			b.write = true;
			break;
		case 'P':
			if (img_bench_number("--pattern", optarg, &v) || v > 255)
				return img_fail("bench", "--pattern takes 0 to 255");
			b.pattern = (int)v;
			break;
		case 'I':
			if (img_bench_number("--flush-interval", optarg, &b.flush_interval))
				return 1;
			break;
		case 'R':
			b.random = true;
			break;
		case 'D':
			b.drain = false;
			break;
		case 'n': /* native AIO: block_aio picks its engine */
		case 'i':
		case 'q':
			break;
		case 'U':
			flags |= IMG_OPEN_SHARE; /* refused by img_open with -w */
			break;
		default:
			return img_bad_option("bench", argc, argv);
		}
	}
	if (argc - optind != 1)
		return img_usage_fail("bench", "expects one FILE");
	if (depth < 1 || depth > IMG_BENCH_MAX_DEPTH)
		return img_fail("bench", "-d takes 1 to %d", IMG_BENCH_MAX_DEPTH);
	if (b.size == 0 || b.size > (64u << 20))
		return img_fail("bench", "-s takes 1 byte to 64M");
	if (!step_set)
		b.step = b.size;
	b.file = argv[optind];
	if (img_open(b.file, fmt, flags | (b.write ? BLOCK_OPEN_RDWR : 0), &b.bs))
		return 1;
	if (b.offset > b.bs->size || b.size > b.bs->size - b.offset) {
		block_close(b.bs);
		return img_fail(b.file,
				"requests of %llu bytes from offset %llu do not fit in the image",
				(unsigned long long)b.size, (unsigned long long)b.offset);
	}
	uint64_t room = b.bs->size - b.offset - b.size;
	uint64_t stride = b.random ? b.size : b.step;
	b.slots = stride ? room / stride + 1 : 1;

	printf(
	    "Sending %llu %s requests, %llu bytes each, %llu in parallel (starting at offset %llu, "
	    "step size %llu)\n",
	    (unsigned long long)b.count, b.write ? "write" : "read", (unsigned long long)b.size,
	    (unsigned long long)depth, (unsigned long long)b.offset,
	    (unsigned long long)(b.random ? 0 : b.step));
	fflush(stdout);

	/* One mapping for every slot, faulted in before the clock starts (qemu-img bench fills its
	 * buffer too); huge pages as for guest RAM, so O_DIRECT pins few, contiguous pages. */
	size_t buflen = (size_t)(depth * b.size);
	char *buf = mmap(NULL, buflen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		block_close(b.bs);
		return img_fail(b.file, "cannot map %zu bytes of buffers", buflen);
	}
	madvise(buf, buflen, MADV_HUGEPAGE);
	memset(buf, b.pattern, buflen);
	struct block_aio_config cfg = {.queue_depth = (int)depth};
	if (block_aio_open(b.bs, &cfg, &b.ctx) < 0) {
		munmap(buf, buflen);
		int r = img_block_fail(b.file);
		block_close(b.bs);
		return r;
	}

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int ret = img_bench_run(&b, depth, buf);
	if (!ret && b.write && block_flush(b.bs) < 0)
		ret = img_block_fail(b.file);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	munmap(buf, buflen);
	block_close(b.bs);
	if (ret)
		return 1;
	printf("Run completed in %.3f seconds.\n",
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
