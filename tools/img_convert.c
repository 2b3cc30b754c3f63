/* `minivmm img convert [-f FMT] [-O FMT] [-o ...] [-B BACKING -F FMT] [-n] [-c] [-p] [-S SIZE]
 *  [-m N] [-l snapshot.id=ID,snapshot.name=NAME | -l ID_OR_NAME | -s ID_OR_NAME] IN OUT` and the
 * VirtualBox spellings `clonemedium` and `convertfromraw` (tools/img_vbox.c).
 *
 * The disk is cut into chunks that N worker threads take in turn over the thread-safe synchronous
 * block API.  A freshly created output already reads as zeroes: ranges the source reports as zero
 * (block_status through its backing chain) and runs of at least -S zero bytes in the data are
 * simply not written, which keeps the output sparse.  An existing output (-n) or one with a backing
 * file (-B) gets explicit write_zeroes there instead.  With -B only what the source's top image
 * allocates is copied: the new backing file is expected to hold what the old one did (as qemu-img).
 * With -c each cluster that is not all zero goes to the format's compressed-cluster writer.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/img.h"
#include "tools/img_convert.h"

#define IMG_CONVERT_CHUNK (1u << 20)
#define IMG_CONVERT_MAX_WORKERS 16
#define IMG_SECTOR 512

struct img_convert {
	const struct img_convert_args *args;
	struct block_device *in, *out;
	uint64_t size, chunk, chunks;
	uint32_t cluster; /* -c: the output's compression unit */
	bool fresh;	  /* the output reads as zeroes wherever nothing is written */
	atomic_uint_fast64_t next;
	atomic_uint_fast64_t done;
	atomic_int failed;
	pthread_mutex_t lock; /* the first error and the progress line */
	char error[512];
	int shown_pct;
	bool show_progress;
};

static void img_convert_error(struct img_convert *cv, const char *file)
{
	pthread_mutex_lock(&cv->lock);
	if (!atomic_load(&cv->failed)) {
		const char *msg = error_msg();
		size_t n = strlen(file);
		if (!strncmp(msg, file, n) && msg[n] == ':')
			snprintf(cv->error, sizeof(cv->error), "%s", msg);
		else
			snprintf(cv->error, sizeof(cv->error), "%s: %s", file, msg);
		atomic_store(&cv->failed, 1);
	}
	pthread_mutex_unlock(&cv->lock);
}

static void img_convert_progress(struct img_convert *cv, uint64_t bytes)
{
	uint64_t done = atomic_fetch_add(&cv->done, bytes) + bytes;
	if (!cv->show_progress || !cv->size)
		return;
	int pct = (int)(done * 10000 / cv->size); /* hundredths of a percent */
	pthread_mutex_lock(&cv->lock);
	if (pct / 100 > cv->shown_pct / 100 || pct == 10000) {
		cv->shown_pct = pct;
		printf("    (%d.%02d/100%%)\r", pct / 100, pct % 100);
		fflush(stdout);
	}
	pthread_mutex_unlock(&cv->lock);
}

/* Make [offset, offset+len) of the output read as zeroes (nothing to do when it is fresh). */
static int img_convert_zero(struct img_convert *cv, uint64_t offset, uint64_t len)
{
	if (cv->fresh || len == 0)
		return 0;
	/* Over a backing file, unmapping would expose the backing data: keep explicit zeroes. */
	return block_write_zeroes(cv->out, offset, len,
				  cv->out->backing ? 0 : BLOCK_ZERO_MAY_UNMAP);
}

/* Write buf (the data at offset), leaving out runs of >= -S zero bytes found sector by sector. */
static int img_convert_write_sparse(struct img_convert *cv, uint64_t offset, const uint8_t *buf,
				    size_t len)
{
	size_t data_start = 0, i = 0;
	uint64_t min_run = cv->args->sparse;

	if (min_run == 0)
		return block_pwrite(cv->out, offset, buf, len);
	while (i < len) {
		size_t n = len - i < IMG_SECTOR ? len - i : IMG_SECTOR;
		if (!img_is_zero(buf + i, n)) {
			i += n;
			continue;
		}
		size_t z = i;
		while (z < len) {
			size_t m = len - z < IMG_SECTOR ? len - z : IMG_SECTOR;
			if (!img_is_zero(buf + z, m))
				break;
			z += m;
		}
		/* A short zero run inside data is cheaper to write than to leave out. */
		if (z - i >= min_run || z == len) {
			if (i > data_start && block_pwrite(cv->out, offset + data_start,
							   buf + data_start, i - data_start) < 0)
				return -1;
			if (img_convert_zero(cv, offset + i, z - i) < 0)
				return -1;
			data_start = z;
		}
		i = z;
	}
	if (len > data_start &&
	    block_pwrite(cv->out, offset + data_start, buf + data_start, len - data_start) < 0)
		return -1;
	return 0;
}

/* One chunk, compressed: read it whole, then hand every non-zero cluster to the format. */
static int img_convert_chunk_compressed(struct img_convert *cv, uint64_t offset, size_t len,
					uint8_t *buf)
{
	if (block_pread(cv->in, offset, buf, len) < 0) {
		img_convert_error(cv, cv->args->in_name);
		return -1;
	}
	/* The output may end up to a sector later (sizes are rounded up): its tail cluster is the
	 * input's padded with zeroes, and compressed writes must cover it whole. */
	if (offset + len == cv->size && cv->out->size > cv->size) {
		uint64_t pad = cv->out->size - cv->size;
		uint64_t room = cv->chunk - len;
		size_t extra = (size_t)(pad < room ? pad : room);
		memset(buf + len, 0, extra);
		len += extra;
	}
	for (size_t i = 0; i < len; i += cv->cluster) {
		size_t n = len - i < cv->cluster ? len - i : cv->cluster;
		if (img_is_zero(buf + i, n)) {
			if (img_convert_zero(cv, offset + i, n) < 0) {
				img_convert_error(cv, cv->args->out_name);
				return -1;
			}
			continue;
		}
		if (block_pwrite_compressed(cv->out, offset + i, buf + i, n) < 0) {
			img_convert_error(cv, cv->args->out_name);
			return -1;
		}
	}
	return 0;
}

static int img_convert_chunk(struct img_convert *cv, uint64_t offset, size_t len, uint8_t *buf)
{
	if (cv->cluster)
		return img_convert_chunk_compressed(cv, offset, len, buf);
	uint64_t end = offset + len;
	while (offset < end) {
		uint64_t pnum, map;
		int st, depth;
		struct block_device *owner;
		int ret = cv->args->backing
			      ? block_status(cv->in, offset, end - offset, &pnum, &st, &map)
			      : img_status(cv->in, offset, end - offset, &pnum, &st, &map, &depth,
					   &owner);
		if (ret < 0) {
			img_convert_error(cv, cv->args->in_name);
			return -1;
		}
		size_t n = (size_t)pnum;
		if (cv->args->backing && cv->in->backing && !(st & BLOCK_STATUS_ALLOCATED)) {
			/* -B: left to the output's backing file. */
		} else if ((st & BLOCK_STATUS_ZERO) && cv->args->sparse) {
			if (img_convert_zero(cv, offset, n) < 0) {
				img_convert_error(cv, cv->args->out_name);
				return -1;
			}
		} else if (st & BLOCK_STATUS_ZERO) {
			/* -S 0: fully allocated output, zeroes are written as data. */
			memset(buf, 0, n);
			if (block_pwrite(cv->out, offset, buf, n) < 0) {
				img_convert_error(cv, cv->args->out_name);
				return -1;
			}
		} else {
			if (block_pread(cv->in, offset, buf, n) < 0) {
				img_convert_error(cv, cv->args->in_name);
				return -1;
			}
			if (img_convert_write_sparse(cv, offset, buf, n) < 0) {
				img_convert_error(cv, cv->args->out_name);
				return -1;
			}
		}
		offset += n;
	}
	return 0;
}

static void *img_convert_worker(void *opaque)
{
	struct img_convert *cv = opaque;
	uint8_t *buf = malloc(cv->chunk);

	if (!buf) {
		error_set(-ENOMEM, "%s: out of memory", cv->args->out_name);
		img_convert_error(cv, cv->args->out_name);
		return NULL;
	}
	while (!atomic_load(&cv->failed)) {
		uint64_t idx = atomic_fetch_add(&cv->next, 1);
		if (idx >= cv->chunks)
			break;
		uint64_t offset = idx * cv->chunk;
		size_t len =
		    (size_t)(cv->size - offset < cv->chunk ? cv->size - offset : cv->chunk);
		if (img_convert_chunk(cv, offset, len, buf) < 0)
			break;
		img_convert_progress(cv, len);
	}
	free(buf);
	return NULL;
}

/* Refuse to overwrite the input, and replace an existing output as qemu-img does. */
static int img_convert_prepare_output(const struct img_convert_args *a, struct block_device *in)
{
	struct stat so, si;

	if (stat(a->out_name, &so) < 0)
		return 0;
	if (fstat(in->file.fd, &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
		return img_fail(a->out_name, "is the input image: refusing to overwrite it");
	if (!S_ISREG(so.st_mode))
		return img_fail(a->out_name, "exists and is not a regular file");
	if (unlink(a->out_name) < 0)
		return img_fail(a->out_name, "cannot replace: %s", strerror(errno));
	return 0;
}

static int img_convert_copy(struct img_convert *cv)
{
	pthread_t tid[IMG_CONVERT_MAX_WORKERS];
	int started = 0;

	for (int i = 0; i < cv->args->workers; i++) {
		if (pthread_create(&tid[i], NULL, img_convert_worker, cv) != 0)
			break;
		started++;
	}
	if (started == 0)
		img_convert_worker(cv);
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	if (cv->show_progress) {
		printf("\n");
		fflush(stdout);
	}
	if (atomic_load(&cv->failed)) {
		fprintf(stderr, "minivmm img: %s\n", cv->error);
		return 1;
	}
	return 0;
}

int img_convert_run(const struct img_convert_args *a)
{
	struct img_convert cv = {.args = a, .shown_pct = -100};
	int ret = 1;

	if (!block_driver_find(a->out_fmt))
		return img_fail(a->out_name, "unknown format '%s'", a->out_fmt);
	if (a->workers < 1 || a->workers > IMG_CONVERT_MAX_WORKERS)
		return img_fail("convert", "-m takes 1 to %d", IMG_CONVERT_MAX_WORKERS);
	if (img_open(a->in_name, a->in_fmt, a->in_flags, &cv.in))
		return 1;
	/* Before the output is created: an unknown snapshot leaves no file behind. */
	if ((a->snapshot_id || a->snapshot_name) &&
	    block_snapshot_load_tmp(cv.in, a->snapshot_id, a->snapshot_name) < 0) {
		img_block_fail(a->in_name);
		goto out;
	}
	if (a->snapshot_any && block_snapshot_load_tmp_by_id_or_name(cv.in, a->snapshot_any) < 0) {
		img_block_fail(a->in_name);
		goto out;
	}
	if (!a->no_create) {
		if (img_convert_prepare_output(a, cv.in))
			goto out;
		/* Whole sectors, as qemu-img (the tail of an odd-sized raw input reads as zeroes).
		 */
		struct block_create_args ca = {.size = (cv.in->size + 511) & ~511ULL,
					       .opts = a->opts,
					       .backing = a->backing,
					       .backing_fmt = a->backing_fmt};
		if (block_create(a->out_fmt, a->out_name, &ca) < 0) {
			img_block_fail(a->out_name);
			goto out;
		}
	}
	/* Before opening: the output's write lock would conflict with the input's read locks. */
	struct stat si, so;
	for (struct block_device *l = cv.in; a->no_create && l && stat(a->out_name, &so) == 0;
	     l = l->backing) {
		if (fstat(l->file.fd, &si) == 0 && si.st_dev == so.st_dev &&
		    si.st_ino == so.st_ino) {
			img_fail(a->out_name, "is the input image%s: refusing to write to it",
				 l == cv.in ? "" : "'s backing file");
			goto out;
		}
	}
	if (img_open(a->out_name, a->out_fmt, BLOCK_OPEN_RDWR | a->out_flags, &cv.out))
		goto out;
	cv.fresh = !a->no_create && !a->backing;
	if (cv.out->size < cv.in->size) {
		img_fail(a->out_name, "is %llu bytes, smaller than the input (%llu bytes)",
			 (unsigned long long)cv.out->size, (unsigned long long)cv.in->size);
		goto out;
	}
	cv.size = cv.in->size;
	cv.chunk = IMG_CONVERT_CHUNK;
	if (a->compress) {
		if (!cv.out->drv->pwrite_compressed) {
			img_fail(a->out_name, "format %s does not support compression", a->out_fmt);
			goto out;
		}
		if (block_cluster_size(cv.out, &cv.cluster) < 0)
			cv.cluster = 0;
		if (cv.cluster < IMG_SECTOR || cv.cluster > (64u << 20)) {
			img_fail(a->out_name, "cannot compress: cluster size %u", cv.cluster);
			goto out;
		}
		cv.chunk = (IMG_CONVERT_CHUNK + cv.cluster - 1) / cv.cluster * cv.cluster;
	}
	cv.chunks = (cv.size + cv.chunk - 1) / cv.chunk;
	cv.show_progress = a->progress && isatty(STDOUT_FILENO);
	pthread_mutex_init(&cv.lock, NULL);
	ret = img_convert_copy(&cv);
	pthread_mutex_destroy(&cv.lock);
	if (ret == 0 && a->new_uuid) {
		/* Only formats that carry a UUID get a new one (-ENOTSUP: nothing to do). */
		uint8_t uuid[16];
		int r = img_uuid_random(uuid);
		if (r == 0)
			r = block_set_uuid(cv.out, uuid);
		if (r < 0 && r != -ENOTSUP)
			ret = img_block_fail(a->out_name);
	}
	if (ret == 0 && block_flush(cv.out) < 0)
		ret = img_block_fail(a->out_name);
out:
	block_close(cv.out);
	block_close(cv.in);
	return ret;
}

static int img_convert_cache(const char *mode, int *flags)
{
	static const struct {
		const char *name;
		int flags;
	} modes[] = {{"writeback", 0},
		     {"none", BLOCK_OPEN_CACHE_NONE},
		     {"writethrough", BLOCK_OPEN_CACHE_DSYNC},
		     {"directsync", BLOCK_OPEN_CACHE_NONE | BLOCK_OPEN_CACHE_DSYNC},
		     {"unsafe", BLOCK_OPEN_CACHE_UNSAFE}};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(mode, modes[i].name)) {
			*flags = modes[i].flags;
			return 0;
		}
	return img_fail(mode,
			"unknown cache mode (writeback, none, writethrough, directsync, unsafe)");
}

/* -l: qemu-img's "snapshot.id=ID,snapshot.name=NAME" (either or both), or an ID or name. */
static int img_convert_snapshot_arg(struct img_convert_args *a, struct block_opts *sn,
				    const char *text)
{
	if (strncmp(text, "snapshot.", 9)) {
		a->snapshot_any = text;
		return 0;
	}
	if (block_opts_parse(sn, text) < 0)
		return img_fail("convert", "-l: invalid option list '%s'", text);
	a->snapshot_id = block_opts_get(sn, "snapshot.id");
	a->snapshot_name = block_opts_get(sn, "snapshot.name");
	const char *unused = block_opts_unused(sn);
	if (unused)
		return img_fail("convert", "-l: unknown option '%s' (snapshot.id, snapshot.name)",
				unused);
	return 0;
}

int img_convert_main(int argc, char **argv)
{
	static const struct option longopts[] = {{"force-share", no_argument, NULL, 'U'}, {0}};
	struct block_opts opts = {0}, snap_opts = {0};
	bool has_opts = false;
	/* As qemu-img, the output's default cache mode is unsafe: no flush at the end (-t writeback
	 * for one). */
	struct img_convert_args a = {.out_fmt = "raw",
				     .sparse = 4096,
				     .workers = 8,
				     .opts = &opts,
				     .out_flags = BLOCK_OPEN_CACHE_UNSAFE};
	int c, ret = 1, share = 0;

	img_getopt_reset();
	while ((c = getopt_long(argc, argv, "f:O:o:B:F:ncpS:m:t:T:l:s:WqU", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'f':
			a.in_fmt = optarg;
			break;
		case 'O':
			a.out_fmt = optarg;
			break;
		case 'o':
			if (block_opts_parse(&opts, optarg) < 0) {
				img_fail("convert", "invalid option list '%s' (want key=value,...)",
					 optarg);
				goto out;
			}
			has_opts = true;
			break;
		case 'B':
			a.backing = optarg;
			break;
		case 'F':
			a.backing_fmt = optarg;
			break;
		case 'n':
			a.no_create = true;
			break;
		case 'c':
			a.compress = true;
			break;
		case 'p':
			a.progress = true;
			break;
		case 'S':
			if (img_parse_size("convert", optarg, &a.sparse))
				goto out;
			if (a.sparse % IMG_SECTOR || a.sparse > (64u << 20)) {
				img_fail(
				    "convert",
				    "-S %s: the sparse size must be a multiple of 512 up to 64M",
				    optarg);
				goto out;
			}
			break;
		case 'm': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || end == optarg || n < 1 || n > IMG_CONVERT_MAX_WORKERS) {
				img_fail("convert", "-m %s: give 1 to %d requests in flight",
					 optarg, IMG_CONVERT_MAX_WORKERS);
				goto out;
			}
			a.workers = (int)n;
			break;
		}
		case 't':
			if (img_convert_cache(optarg, &a.out_flags))
				goto out;
			break;
		case 'T':
			if (img_convert_cache(optarg, &a.in_flags))
				goto out;
			break;
		case 'U':
			share = IMG_OPEN_SHARE; /* the input only: the output is always locked */
			break;
		case 'l':
			if (img_convert_snapshot_arg(&a, &snap_opts, optarg))
				goto out;
			break;
		case 's':
			a.snapshot_any = optarg;
			break;
		case 'W':
		case 'q':
			break;
		default:
			img_bad_option("convert", argc, argv);
			goto out;
		}
	}
	if (argc - optind != 2) {
		img_usage_fail("convert", "expects IN and OUT");
		goto out;
	}
	a.in_name = argv[optind];
	a.out_name = argv[optind + 1];
	a.in_flags |= share;
	if (a.no_create && (has_opts || a.backing)) {
		img_fail(a.out_name,
			 "-o and -B have no effect with -n (the output is not created)");
		goto out;
	}
	if (a.backing && (!a.backing[0] || !a.backing_fmt)) {
		img_fail(a.out_name, "-B needs a backing file name and its format (-F FMT)");
		goto out;
	}
	if (a.backing_fmt && !block_driver_find(a.backing_fmt)) {
		img_fail(a.out_name, "unknown backing format '%s'", a.backing_fmt);
		goto out;
	}
	if ((a.snapshot_id || a.snapshot_name) && a.snapshot_any) {
		img_fail("convert", "give the snapshot once (-l or -s)");
		goto out;
	}
	ret = img_convert_run(&a);
out:
	block_opts_free(&opts);
	block_opts_free(&snap_opts);
	return ret;
}
