/* Guest side of bench/disk.sh: O_DIRECT I/O on a block device, timed with clock_gettime.
 *
 *   diskio DEVICE MODE BLOCK_BYTES OPS REGION_BYTES [SEED]
 *
 * MODE is seqread, seqwrite (OPS blocks from offset 0), randread or randwrite (OPS blocks at
 * BLOCK-aligned offsets drawn from [0, REGION) by a seeded xorshift, so both VMMs see the same
 * sequence).  Writes end with fdatasync, inside the timed part: with cache=none a write is only
 * done once the image is flushed.  Prints one line:
 *   DISK: MODE bytes=N usecs=N MBps=X.X IOPS=N
 * DEVICE may also be a regular file.  Built static on the host (busybox guests have no libc).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_BLOCK (16u << 20)

struct job {
	const char *dev;
	int write;
	int random;
	uint64_t block;
	uint64_t ops;
	uint64_t region;
	uint64_t seed;
};

static int parse_u64(const char *s, const char *what, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;

	errno = 0;
	if (*s < '0' || *s > '9')
		goto bad;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		goto bad;
	*out = v;
	return 0;
bad:
	fprintf(stderr, "diskio: %s: '%s' is not a number in [%" PRIu64 ", %" PRIu64 "]\n", what, s,
		min, max);
	return -EINVAL;
}

static int job_parse(int argc, char **argv, struct job *j)
{
	if (argc != 6 && argc != 7) {
		fprintf(stderr, "usage: diskio DEVICE seqread|seqwrite|randread|randwrite "
				"BLOCK_BYTES OPS REGION_BYTES [SEED]\n");
		return -EINVAL;
	}
	j->dev = argv[1];
	if (!strcmp(argv[2], "seqread") || !strcmp(argv[2], "seqwrite"))
		j->random = 0;
	else if (!strcmp(argv[2], "randread") || !strcmp(argv[2], "randwrite"))
		j->random = 1;
	else {
		fprintf(stderr, "diskio: unknown mode '%s'\n", argv[2]);
		return -EINVAL;
	}
	j->write = strstr(argv[2], "write") != NULL;
	j->seed = 1;
	if (parse_u64(argv[3], "block size", 512, MAX_BLOCK, &j->block) ||
	    parse_u64(argv[4], "operation count", 1, UINT32_MAX, &j->ops) ||
	    parse_u64(argv[5], "region size", 1, INT64_MAX, &j->region) ||
	    (argc == 7 && parse_u64(argv[6], "seed", 1, UINT64_MAX, &j->seed)))
		return -EINVAL;
	/* O_DIRECT wants sector-aligned sizes and offsets. */
	if (j->block % 512) {
		fprintf(stderr, "diskio: block size %" PRIu64 " is not a multiple of 512\n", j->block);
		return -EINVAL;
	}
	if (j->region < j->block || (!j->random && j->ops > j->region / j->block)) {
		fprintf(stderr, "diskio: the region (%" PRIu64 " bytes) is smaller than the I/O\n",
			j->region);
		return -EINVAL;
	}
	return 0;
}

static uint64_t xorshift64(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int job_run(const struct job *j, int fd, void *buf, double *usecs)
{
	uint64_t slots = j->region / j->block, state = j->seed;
	double t0 = now_us();

	for (uint64_t i = 0; i < j->ops; i++) {
		uint64_t off = (j->random ? xorshift64(&state) % slots : i) * j->block;
		ssize_t n = j->write ? pwrite(fd, buf, j->block, off) : pread(fd, buf, j->block, off);
		if (n < 0) {
			fprintf(stderr, "diskio: %s: %s at offset %" PRIu64 ": %s\n", j->dev,
				j->write ? "write" : "read", off, strerror(errno));
			return -errno;
		}
		if ((uint64_t)n != j->block) {
			fprintf(stderr, "diskio: %s: short transfer at offset %" PRIu64 "\n", j->dev, off);
			return -EIO;
		}
	}
	if (j->write && fdatasync(fd) < 0) {
		fprintf(stderr, "diskio: %s: fdatasync: %s\n", j->dev, strerror(errno));
		return -errno;
	}
	*usecs = now_us() - t0;
	return 0;
}

int main(int argc, char **argv)
{
	struct job j;
	uint64_t size;
	void *buf;
	double us = 0;

	if (job_parse(argc, argv, &j))
		return 2;
	int fd = open(j.dev, (j.write ? O_RDWR : O_RDONLY) | O_DIRECT);
	if (fd < 0) {
		fprintf(stderr, "diskio: %s: %s\n", j.dev, strerror(errno));
		return 1;
	}
	/* A regular file too, so the program can be tried on the host. */
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		size = st.st_size;
	else if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
		fprintf(stderr, "diskio: %s: not a block device (%s)\n", j.dev, strerror(errno));
		return 1;
	}
	if (j.region > size) {
		fprintf(stderr, "diskio: %s: region of %" PRIu64 " bytes exceeds the disk (%" PRIu64 ")\n",
			j.dev, j.region, size);
		return 1;
	}
	if (posix_memalign(&buf, 4096, j.block)) {
		fprintf(stderr, "diskio: out of memory\n");
		return 1;
	}
	/* Non-zero data: no layer may short-cut zero blocks. */
	memset(buf, 0xa5, j.block);
	if (job_run(&j, fd, buf, &us))
		return 1;
	if (us < 1)
		us = 1;
	printf("DISK: %s bytes=%" PRIu64 " usecs=%.0f MBps=%.2f IOPS=%.0f\n", argv[2],
	       j.ops * j.block, us, j.ops * j.block / us, j.ops * 1e6 / us);
	free(buf);
	close(fd);
	return 0;
}
