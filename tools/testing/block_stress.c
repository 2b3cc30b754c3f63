/* `minivmm block-stress` (testing): the writer and the checker of the crash-safety tests.
 *
 *   minivmm block-stress write  IMAGE LOG SEED   random writes forever (until killed); after every
 *                                              STRESS_FLUSH_EVERY writes: flush the image, then
 *                                              append the number of writes done to LOG and fsync it
 *   minivmm block-stress verify IMAGE LOG SEED   after a kill -9: every write before the last
 * logged flush must read back
 *
 * Every 512-byte sector written carries a stamp (seed, write number, sector number) and bytes
 * derived from them, so `verify` can tell which write a sector came from. A sector must hold what
 * the last write before the logged flush put there (zeroes if none), or the data of one of the
 * STRESS_FLUSH_EVERY writes that may have run after it. Works for any format the block layer opens.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/core/block.h"
#include "vmm/command.h"

#define STRESS_FLUSH_EVERY 8
#define STRESS_MAX_SECTORS 256
#define STRESS_MAGIC 0x56444953u /* "SIDV" */
#define STRESS_MAX_WRITES 1000000

struct stress_op {
	uint64_t sector, count;
};

static uint64_t stress_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* Write number i of a run: where and how long (a pure function of seed and i). */
static struct stress_op stress_op(uint64_t seed, uint64_t i, uint64_t sectors)
{
	uint64_t r = stress_mix(seed * 0x9e3779b97f4a7c15ull + i + 1);
	struct stress_op op;

	op.sector = r % sectors;
	op.count = 1 + (r >> 32) % STRESS_MAX_SECTORS;
	if (op.count > sectors - op.sector)
		op.count = sectors - op.sector;
	return op;
}

static void stress_fill(uint8_t *p, uint64_t seed, uint64_t i, uint64_t sector)
{
	uint64_t x = stress_mix(seed ^ (i << 20) ^ (sector << 1));
	uint32_t magic = STRESS_MAGIC, seed32 = (uint32_t)seed;

	memcpy(p, &magic, 4);
	memcpy(p + 4, &seed32, 4);
	memcpy(p + 8, &i, 8);
	memcpy(p + 16, &sector, 8);
	for (int k = 24; k < 512; k += 8) {
		x = stress_mix(x);
		memcpy(p + k, &x, 8);
	}
}

static int stress_write(struct block_device *bs, const char *log, uint64_t seed)
{
	uint64_t sectors = bs->size / 512;
	uint8_t *buf = malloc(STRESS_MAX_SECTORS * 512);
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);

	if (!buf || fd < 0 || sectors == 0) {
		fprintf(stderr, "block-stress: %s: cannot start: %s\n", log, strerror(errno));
		free(buf);
		return 1;
	}
	for (uint64_t i = 0; i < STRESS_MAX_WRITES; i++) {
		struct stress_op op = stress_op(seed, i, sectors);

		for (uint64_t k = 0; k < op.count; k++)
			stress_fill(buf + k * 512, seed, i, op.sector + k);
		if (block_pwrite(bs, op.sector * 512, buf, op.count * 512) < 0)
			goto fail;
		if ((i + 1) % STRESS_FLUSH_EVERY == 0) {
			char line[32];
			int n = snprintf(line, sizeof(line), "%" PRIu64 "\n", i + 1);

			if (block_flush(bs) < 0)
				goto fail;
			if (write(fd, line, n) != n || fsync(fd) < 0) {
				fprintf(stderr, "block-stress: %s: %s\n", log, strerror(errno));
				break;
			}
		}
	}
	close(fd);
	free(buf);
	return 0;
fail:
	fprintf(stderr, "block-stress: %s\n", error_msg());
	close(fd);
	free(buf);
	return 1;
}

static uint64_t stress_last_flush(const char *log)
{
	FILE *f = fopen(log, "r");
	uint64_t v, last = 0;

	if (!f)
		return 0;
	while (fscanf(f, "%" SCNu64, &v) == 1)
		last = v;
	fclose(f);
	return last;
}

static int stress_verify(struct block_device *bs, const char *log, uint64_t seed)
{
	uint64_t sectors = bs->size / 512, flushed = stress_last_flush(log), bad = 0;
	int64_t *last = malloc(sectors * sizeof(int64_t));
	uint8_t got[512], want[512];

	if (!last) {
		fprintf(stderr, "block-stress: out of memory\n");
		return 1;
	}
	for (uint64_t s = 0; s < sectors; s++)
		last[s] = -1;
	for (uint64_t i = 0; i < flushed; i++) {
		struct stress_op op = stress_op(seed, i, sectors);

		for (uint64_t k = 0; k < op.count; k++)
			last[op.sector + k] = (int64_t)i;
	}
	for (uint64_t s = 0; s < sectors; s++) {
		uint64_t j;
		bool ok = false;

		if (block_pread(bs, s * 512, got, 512) < 0) {
			fprintf(stderr, "block-stress: %s\n", error_msg());
			free(last);
			return 1;
		}
		memcpy(&j, got + 8, 8);
		if (last[s] >= 0) {
			stress_fill(want, seed, (uint64_t)last[s], s);
			ok = memcmp(got, want, 512) == 0;
		} else {
			memset(want, 0, 512);
			ok = memcmp(got, want, 512) == 0;
		}
		/* One of the writes after the last logged flush may have landed. */
		if (!ok && j >= flushed && j < flushed + STRESS_FLUSH_EVERY) {
			struct stress_op op = stress_op(seed, j, sectors);

			stress_fill(want, seed, j, s);
			ok = s >= op.sector && s < op.sector + op.count && !memcmp(got, want, 512);
		}
		if (!ok && bad++ < 5)
			fprintf(stderr,
				"block-stress: sector %" PRIu64 ": expected write %" PRId64
				", found something else\n",
				s, last[s]);
	}
	free(last);
	printf("block-stress: %" PRIu64 " writes flushed, %" PRIu64 " sectors checked, %" PRIu64
	       " bad\n",
	       flushed, sectors, bad);
	return bad ? 1 : 0;
}

static int stress_run(int argc, char **argv)
{
	struct block_device *bs;
	bool writing;
	uint64_t seed;
	char *end;
	int ret;

	if (argc != 5 || (strcmp(argv[1], "write") && strcmp(argv[1], "verify"))) {
		fprintf(stderr, "usage: minivmm block-stress write|verify IMAGE LOG SEED\n");
		return 2;
	}
	writing = !strcmp(argv[1], "write");
	seed = strtoull(argv[4], &end, 0);
	if (*end || !argv[4][0]) {
		fprintf(stderr, "block-stress: bad seed '%s'\n", argv[4]);
		return 2;
	}
	if (block_open(argv[2], NULL, writing ? BLOCK_OPEN_RDWR : 0, &bs) < 0) {
		fprintf(stderr, "block-stress: %s\n", error_msg());
		return 1;
	}
	ret = writing ? stress_write(bs, argv[3], seed) : stress_verify(bs, argv[3], seed);
	block_close(bs);
	return ret;
}

static const struct command block_stress_command = {
    .name = "block-stress",
    .summary = "(testing) crash-safety writer and checker for disk images",
    .testing = true,
    .run = stress_run,
};
COMMAND(block_stress_command);
