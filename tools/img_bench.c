/* `minivmm img bench` (benchmarking): qemu-img bench's options and output, over the block layer.
 *
 *   -c COUNT requests (75000), -d DEPTH in flight (64), -s SIZE each (4k), -S STEP between offsets
 *   (SIZE), -o OFFSET of the first, -w writes instead of reads, -t CACHE mode, --pattern=BYTE for
 *   writes, --flush-interval=N (a flush every N requests), --random (offsets drawn uniformly among
 *   SIZE-aligned positions, fixed seed: not in qemu-img).
 *
 * DEPTH threads issue synchronous requests; request i goes to OFFSET + i * STEP, wrapping to OFFSET
 * at the end of the image as qemu-img bench does.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/img.h"

#define IMG_BENCH_MAX_DEPTH 256

struct img_bench {
	struct block_device *bs;
	const char *file;
	uint64_t count, size, step, offset, flush_interval;
	bool write, random;
	int pattern;
	atomic_uint_fast64_t next;
	atomic_int failed;
	uint64_t slots; /* offsets that fit before wrapping */
};

static uint64_t img_bench_rand(uint64_t *s)
{
	/* xorshift64*: fast, and enough to spread offsets; seeded per thread for repeatable runs.
	 */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static void *img_bench_worker(void *opaque)
{
	struct img_bench *b = opaque;
	uint64_t seed = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)&seed;
	void *buf;

	if (posix_memalign(&buf, 4096, b->size)) {
		atomic_store(&b->failed, 1);
		return NULL;
	}
	memset(buf, b->pattern, b->size);
	while (!atomic_load(&b->failed)) {
		uint64_t i = atomic_fetch_add(&b->next, 1);
		if (i >= b->count)
			break;
		uint64_t slot = b->random ? img_bench_rand(&seed) % b->slots : i % b->slots;
		uint64_t off = b->offset + slot * (b->random ? b->size : b->step);
		int ret = b->write ? block_pwrite(b->bs, off, buf, b->size)
				   : block_pread(b->bs, off, buf, b->size);
		if (ret == 0 && b->write && b->flush_interval && (i + 1) % b->flush_interval == 0)
			ret = block_flush(b->bs);
		if (ret < 0 && !atomic_exchange(&b->failed, 1))
			img_block_fail(b->file);
	}
	free(buf);
	return NULL;
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
	struct img_bench b = {.count = 75000, .size = 4096, .pattern = 0};
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
		case 'n': /* native AIO: the sync API has one engine */
		case 'i':
		case 'q':
		case 'D':
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

	pthread_t tid[IMG_BENCH_MAX_DEPTH];
	struct timespec t0, t1;
	uint64_t started = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t i = 0; i < depth; i++, started++)
		if (pthread_create(&tid[i], NULL, img_bench_worker, &b) != 0)
			break;
	if (started == 0)
		img_bench_worker(&b);
	for (uint64_t i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	int ret = atomic_load(&b.failed);
	if (!ret && b.write && block_flush(b.bs) < 0)
		ret = img_block_fail(b.file);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	block_close(b.bs);
	if (ret)
		return 1;
	printf("Run completed in %.3f seconds.\n",
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
