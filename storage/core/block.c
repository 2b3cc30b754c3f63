/* The block-layer core: driver registry, format probing, opening images with their backing chains,
 * and the checked entry points every caller goes through.
 *
 * Drivers trust nothing they did not check themselves, and the core checks everything that is not
 * format-specific once, here: ranges against the virtual size, writes on read-only images, chains
 * that loop or are too deep.  Backing chains are opened by the core, not by drivers, so that every
 * format resolves names, detects loops and applies cache flags the same way.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/core/block.h"
#include "storage/core/block_probe_guard.h"
#include "storage/core/block_path.h"
#include "storage/core/disk_lock.h"

#define BLOCK_MAX_DRIVERS 32
#define BLOCK_ZERO_CHUNK (1u << 20)

static const struct block_driver *block_registry[BLOCK_MAX_DRIVERS];
static size_t block_registry_count;

void block_driver_register(const struct block_driver *drv)
{
	if (block_registry_count < BLOCK_MAX_DRIVERS)
		block_registry[block_registry_count++] = drv;
}

const struct block_driver *block_driver_find(const char *name)
{
	for (size_t i = 0; name && i < block_registry_count; i++)
		if (strcmp(block_registry[i]->name, name) == 0)
			return block_registry[i];
	return NULL;
}

const struct block_driver *const *block_drivers(size_t *count)
{
	*count = block_registry_count;
	return block_registry;
}

/* ---- Probing ---- */

int block_host_file_flags(int flags)
{
	int hf = 0;

	if (flags & BLOCK_OPEN_RDWR)
		hf |= HOST_FILE_RDWR;
	if (flags & BLOCK_OPEN_CACHE_NONE)
		hf |= HOST_FILE_DIRECT;
	if (flags & BLOCK_OPEN_CACHE_DSYNC)
		hf |= HOST_FILE_DSYNC;
	if (flags & BLOCK_OPEN_CACHE_UNSAFE)
		hf |= HOST_FILE_UNSAFE;
	return hf;
}

size_t block_probe_window(void)
{
	size_t max = 0;
	for (size_t i = 0; i < block_registry_count; i++)
		if (block_registry[i]->probe && block_registry[i]->probe_bytes > max)
			max = block_registry[i]->probe_bytes;
	return max;
}

const struct block_driver *block_probe_head(const uint8_t *head, size_t len, const char *filename)
{
	const struct block_driver *best = NULL;
	int best_score = 0;

	for (size_t i = 0; i < block_registry_count; i++) {
		const struct block_driver *drv = block_registry[i];
		if (!drv->probe)
			continue;
		/* No probe sees more than it declared: the guarded window covers all it reads. */
		size_t n = len < drv->probe_bytes ? len : drv->probe_bytes;
		int score = drv->probe(head, n, filename);
		if (score > best_score) {
			best_score = score;
			best = drv;
		}
	}
	return best;
}

static int block_probe_file(struct host_file *f, const char *filename,
			    const struct block_driver **out)
{
	const struct block_driver *best;
	size_t window = block_probe_window();
	uint64_t size;
	uint8_t *head;
	int ret;

	ret = host_file_size(f, &size);
	if (ret < 0)
		return error_set(ret, "%s: cannot get size: %s", filename, strerror(-ret));
	size_t len = size < window ? (size_t)size : window;
	head = malloc(window ? window : 1);
	if (!head)
		return error_set(-ENOMEM, "%s: out of memory", filename);
	ret = len ? host_file_pread(f, 0, head, len) : 0;
	if (ret < 0) {
		free(head);
		return error_set(ret, "%s: cannot read header: %s", filename, strerror(-ret));
	}
	best = block_probe_head(head, len, filename);
	free(head);
	if (!best)
		best = block_driver_find("raw");
	if (!best)
		return error_set(-ENOENT, "%s: unknown image format and no raw driver", filename);
	*out = best;
	return 0;
}

/* Why host_file_open() failed, in words: -ENODEV is its "not a disk" (FIFO, socket, device). */
static const char *block_open_strerror(int err)
{
	return err == -ENODEV ? "not a regular file or block device" : strerror(-err);
}

int block_probe(const char *filename, const struct block_driver **drv)
{
	struct host_file f;
	int ret = host_file_open(&f, filename, 0);

	if (ret < 0)
		return error_set(ret, "%s: cannot open: %s", filename, block_open_strerror(ret));
	ret = block_probe_file(&f, filename, drv);
	host_file_close(&f);
	return ret;
}

/* ---- Opening and closing ---- */

struct block_chain_link {
	dev_t dev;
	ino_t ino;
	const char *filename;		     /* the image that names the next one down */
	const struct block_chain_link *next; /* the image above; NULL at the top */
};

/* The backing name is relative to the directory of the image that records it. */
static char *block_backing_path(const char *image, const char *backing)
{
	const char *slash = strrchr(image, '/');
	char *path;

	if (backing[0] == '/' || !slash)
		return strdup(backing);
	size_t dirlen = (size_t)(slash - image) + 1;
	path = malloc(dirlen + strlen(backing) + 1);
	if (!path)
		return NULL;
	memcpy(path, image, dirlen);
	strcpy(path + dirlen, backing);
	return path;
}

static int block_open_chain(const char *filename, const char *fmt, int flags, int depth,
			    const struct block_chain_link *above, struct block_device **out);

static int block_open_backing(struct block_device *bs, int depth,
			      const struct block_chain_link *self)
{
	const char *name = bs->backing_name;
	int ret;

	if (!name[0])
		return error_set(-EINVAL, "%s: empty backing file name", bs->filename);
	if (strncmp(name, "json:", 5) == 0 || strstr(name, "://"))
		return error_set(-ENOTSUP, "%s: unsupported backing file name '%s'", bs->filename,
				 name);
	if (bs->backing_fmt && !block_driver_find(bs->backing_fmt))
		return error_set(-ENOTSUP, "%s: unknown backing file format '%s'", bs->filename,
				 bs->backing_fmt);
	if (depth + 1 >= BLOCK_MAX_CHAIN)
		return error_set(-ELOOP, "%s: backing chain deeper than %d images", bs->filename,
				 BLOCK_MAX_CHAIN);
	char *path = block_backing_path(bs->filename, name);
	if (!path)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	/* The image is untrusted: it may name only files beside it, or ones the user allowed. */
	ret = block_path_check(bs->filename, "backing file", name, path);
	if (ret < 0) {
		free(path);
		return ret;
	}
	/* Backing files are never written; they keep the top image's cache mode. */
	int bflags = bs->flags & (BLOCK_OPEN_CACHE_NONE | BLOCK_OPEN_CACHE_DSYNC |
				  BLOCK_OPEN_CACHE_UNSAFE | BLOCK_OPEN_CHECK | BLOCK_OPEN_LOCK);
	ret = block_open_chain(path, bs->backing_fmt, bflags, depth + 1, self, &bs->backing);
	/* Name the top image once; the innermost message names the file at fault. */
	if (ret < 0 && depth == 0)
		error_wrap(ret, "%s: in its backing chain", bs->filename);
	free(path);
	return ret;
}

/* A directory is an image only for a format stored as one (a bundle): open the file it names. */
static int block_open_directory(const char *dir, const char *fmt, int flags, int depth,
				const struct block_chain_link *above, struct block_device **out)
{
	size_t n;
	const struct block_driver *const *drv = block_drivers(&n);

	for (size_t i = 0; i < n; i++) {
		if (!drv[i]->open_directory || (fmt && strcmp(fmt, drv[i]->name)))
			continue;
		char *path = NULL;
		const char *inner_fmt = NULL;
		int ret = drv[i]->open_directory(dir, &path, &inner_fmt);
		if (ret == -ENOENT && !fmt)
			continue; /* not this format's bundle (its descriptor is missing) */
		if (ret < 0)
			return ret;
		/* The descriptor names the file: it must stay in the bundle (symlinks resolved). */
		char *desc = NULL;
		if (asprintf(&desc, "%s/", dir) < 0)
			desc = NULL;
		ret = desc ? block_path_check(desc, "image file", path, path)
			   : error_set(-ENOMEM, "%s: out of memory", dir);
		free(desc);
		if (ret == 0)
			ret = block_open_chain(path, inner_fmt, flags, depth, above, out);
		free(path);
		return ret;
	}
	return error_set(-EISDIR, "%s: cannot open: a directory, not a disk image", dir);
}

static int block_open_chain(const char *filename, const char *fmt, int flags, int depth,
			    const struct block_chain_link *above, struct block_device **out)
{
	struct block_device *bs;
	struct block_chain_link self;
	struct stat st;
	int ret;

	*out = NULL;
	if (stat(filename, &st) == 0 && S_ISDIR(st.st_mode))
		return block_open_directory(filename, fmt, flags, depth, above, out);
	bs = calloc(1, sizeof(*bs));
	if (!bs)
		return error_set(-ENOMEM, "%s: out of memory", filename);
	bs->file.fd = -1;
	bs->flags = flags;
	bs->filename = strdup(filename);
	if (!bs->filename) {
		free(bs);
		return error_set(-ENOMEM, "%s: out of memory", filename);
	}
	ret = host_file_open(&bs->file, filename, block_host_file_flags(flags));
	if (ret == -EINVAL && (flags & BLOCK_OPEN_CACHE_NONE)) {
		error_set(ret, "%s: cannot open with cache=none: the file system has no O_DIRECT",
			  filename);
		goto fail;
	} else if (ret < 0) {
		error_set(ret, "%s: cannot open: %s", filename, block_open_strerror(ret));
		goto fail;
	}
	if (fstat(bs->file.fd, &st) < 0) {
		ret = error_set(-errno, "%s: cannot stat: %s", filename, strerror(errno));
		goto fail;
	}
	/* By device and inode: another name, a symlink or a hard link is the same file. */
	for (const struct block_chain_link *l = above; l; l = l->next) {
		if (l->dev == st.st_dev && l->ino == st.st_ino) {
			ret = error_set(-ELOOP, "%s: backing chain loop: its backing file %s is %s",
					above->filename, filename,
					l == above ? "the image itself" : "already in the chain");
			goto fail;
		}
	}
	/* Before probing: a driver's open may write (log replay, dirty or in-use flags), and even a
	 * read of a file a VM is writing can see half-updated metadata. */
	if (flags & BLOCK_OPEN_LOCK) {
		ret = disk_lock_file(bs, flags & BLOCK_OPEN_RDWR);
		if (ret < 0 && ret != -ENOLCK)
			goto fail;
	}
	if (fmt) {
		bs->drv = block_driver_find(fmt);
		if (!bs->drv) {
			ret = error_set(-ENOTSUP, "%s: unknown format '%s'", filename, fmt);
			goto fail;
		}
	} else {
		ret = block_probe_file(&bs->file, filename, &bs->drv);
		if (ret < 0)
			goto fail;
		bs->flags |= BLOCK_OPEN_PROBED;
	}
	error_clear();
	ret = bs->drv->open(bs);
	if (ret < 0) {
		if (!error_recorded())
			error_set(ret, "%s: cannot open %s image: %s", filename, bs->drv->name,
				  strerror(-ret));
		bs->drv = NULL; /* open failed: the driver's close must not run */
		goto fail;
	}
	if (bs->size > INT64_MAX) {
		ret = error_set(-EFBIG, "%s: virtual size %llu too large", filename,
				(unsigned long long)bs->size);
		goto fail;
	}
	if ((bs->flags & BLOCK_OPEN_PROBED) && (bs->flags & BLOCK_OPEN_RDWR) && !bs->drv->probe &&
	    (ret = block_probe_guard_open(bs)) < 0)
		goto fail;
	if (bs->backing_name && !(flags & BLOCK_OPEN_NO_BACKING)) {
		self.dev = st.st_dev;
		self.ino = st.st_ino;
		self.filename = bs->filename;
		self.next = above;
		ret = block_open_backing(bs, depth, &self);
		if (ret < 0)
			goto fail;
	}
	*out = bs;
	return 0;
fail:
	block_close(bs);
	return ret;
}

int block_open(const char *filename, const char *fmt, int flags, struct block_device **out)
{
	if (!filename || !filename[0]) {
		*out = NULL;
		return error_set(-EINVAL, "empty image file name");
	}
	return block_open_chain(filename, fmt, flags, 0, NULL, out);
}

void block_close(struct block_device *bs)
{
	if (!bs)
		return;
	if (bs->backing)
		block_close(bs->backing);
	if (bs->drv && bs->drv->close)
		bs->drv->close(bs);
	block_probe_guard_close(bs);
	host_file_close(&bs->file);
	free(bs->backing_name);
	free(bs->backing_fmt);
	free(bs->filename);
	free(bs);
}

/* ---- Creation ---- */

int block_create(const char *fmt, const char *filename, const struct block_create_args *args)
{
	const struct block_driver *drv = block_driver_find(fmt);
	struct block_create_args a = *args;
	struct stat st;
	int ret;

	if (!drv)
		return error_set(-ENOTSUP, "%s: unknown format '%s'", filename,
				 fmt ? fmt : "(none)");
	if (!drv->create)
		return error_set(-ENOTSUP, "%s: format %s cannot create images", filename,
				 drv->name);
	if (a.backing && !drv->has_backing)
		return error_set(-ENOTSUP, "%s: format %s has no backing files", filename,
				 drv->name);
	if (stat(filename, &st) == 0)
		return error_set(-EEXIST, "%s: file exists", filename);
	/* No size given with a backing file: take the backing file's. */
	if (a.size == 0 && a.backing) {
		struct block_device *b;
		char *path = block_backing_path(filename, a.backing);
		if (!path)
			return error_set(-ENOMEM, "%s: out of memory", filename);
		ret = block_open(path, a.backing_fmt, 0, &b);
		free(path);
		if (ret < 0)
			return ret;
		a.size = b->size;
		block_close(b);
	}
	error_clear();
	ret = drv->create(filename, &a);
	if (ret < 0) {
		if (!error_recorded())
			error_set(ret, "%s: cannot create %s image: %s", filename, drv->name,
				  strerror(-ret));
		return ret;
	}
	const char *unused = a.opts ? block_opts_unused(a.opts) : NULL;
	if (unused) {
		unlink(filename); /* it did not exist before: we made it */
		return error_set(-EINVAL, "%s: format %s does not support option '%s'", filename,
				 drv->name, unused);
	}
	return 0;
}

/* ---- Synchronous I/O ---- */

static int block_check_range(struct block_device *bs, uint64_t offset, uint64_t len)
{
	if (offset > bs->size || len > bs->size - offset)
		return error_set(-EINVAL, "%s: request [%llu, +%llu) beyond the virtual size %llu",
				 bs->filename, (unsigned long long)offset, (unsigned long long)len,
				 (unsigned long long)bs->size);
	return 0;
}

static int block_check_write(struct block_device *bs, uint64_t offset, uint64_t len)
{
	if (!(bs->flags & BLOCK_OPEN_RDWR))
		return error_set(-EROFS, "%s: image opened read-only", bs->filename);
	return block_check_range(bs, offset, len);
}

static int block_unsupported(struct block_device *bs, const char *what)
{
	return error_set(-ENOTSUP, "%s: format %s does not support %s", bs->filename, bs->drv->name,
			 what);
}

int block_preadv(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	size_t len = iov_size(iov, iovcnt);
	int ret = block_check_range(bs, offset, len);

	if (ret < 0 || len == 0)
		return ret;
	return bs->drv->preadv(bs, offset, iov, iovcnt);
}

int block_pwritev(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	size_t len = iov_size(iov, iovcnt);
	int ret = block_check_write(bs, offset, len);

	if (ret < 0 || len == 0)
		return ret;
	if (!bs->drv->pwritev)
		return block_unsupported(bs, "writes");
	int locked = block_probe_guard_begin(bs, offset, len, iov, iovcnt);
	if (locked < 0)
		return locked;
	ret = bs->drv->pwritev(bs, offset, iov, iovcnt);
	block_probe_guard_end(bs, locked);
	return ret;
}

int block_pread(struct block_device *bs, uint64_t offset, void *buf, size_t len)
{
	struct iovec v = {buf, len};
	return block_preadv(bs, offset, &v, 1);
}

int block_pwrite(struct block_device *bs, uint64_t offset, const void *buf, size_t len)
{
	struct iovec v = {(void *)buf, len};
	return block_pwritev(bs, offset, &v, 1);
}

int block_flush(struct block_device *bs)
{
	int ret;

	if (!(bs->flags & BLOCK_OPEN_RDWR))
		return 0;
	ret = bs->drv->flush ? bs->drv->flush(bs) : host_file_flush(&bs->file);
	if (ret < 0 && !bs->drv->flush)
		error_set(ret, "%s: flush failed: %s", bs->filename, strerror(-ret));
	return ret;
}

int block_discard(struct block_device *bs, uint64_t offset, uint64_t len)
{
	int ret = block_check_write(bs, offset, len);

	if (ret < 0 || len == 0)
		return ret;
	if (!bs->drv->discard)
		return block_unsupported(bs, "discard");
	/* Raw discard punches a hole: the window then reads as zeroes, checked as such. */
	int locked = block_probe_guard_begin(bs, offset, len, NULL, 0);
	if (locked < 0)
		return locked;
	ret = bs->drv->discard(bs, offset, len);
	block_probe_guard_end(bs, locked);
	return ret;
}

int block_write_zeroes(struct block_device *bs, uint64_t offset, uint64_t len, int flags)
{
	int ret = block_check_write(bs, offset, len);

	if (ret < 0 || len == 0)
		return ret;
	if (flags & ~BLOCK_ZERO_MAY_UNMAP)
		return error_set(-EINVAL, "%s: unknown write_zeroes flags %#x", bs->filename,
				 flags);
	if (bs->drv->write_zeroes) {
		int locked = block_probe_guard_begin(bs, offset, len, NULL, 0);
		if (locked < 0)
			return locked;
		ret = bs->drv->write_zeroes(bs, offset, len, flags);
		block_probe_guard_end(bs, locked);
		return ret;
	}
	/* No shortcut in the format: write a buffer of zeroes. */
	size_t chunk = len < BLOCK_ZERO_CHUNK ? (size_t)len : BLOCK_ZERO_CHUNK;
	void *zero = calloc(1, chunk);
	if (!zero)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	while (len && ret == 0) {
		size_t n = len < chunk ? (size_t)len : chunk;
		ret = block_pwrite(bs, offset, zero, n);
		offset += n;
		len -= n;
	}
	free(zero);
	return ret;
}

int block_status(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t *pnum,
		 int *status, uint64_t *map_offset)
{
	int ret = block_check_range(bs, offset, len);

	if (ret < 0)
		return ret;
	if (len == 0)
		return error_set(-EINVAL, "%s: block_status of an empty range", bs->filename);
	*map_offset = 0;
	if (!bs->drv->block_status) {
		*pnum = len;
		*status = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED;
		return 0;
	}
	ret = bs->drv->block_status(bs, offset, len, pnum, status, map_offset);
	if (ret == 0 && (*pnum == 0 || *pnum > len))
		return error_set(-EIO, "%s: driver %s returned a bad status length", bs->filename,
				 bs->drv->name);
	return ret;
}

int block_truncate(struct block_device *bs, uint64_t new_size, enum block_prealloc prealloc,
		   bool shrink_allowed)
{
	if (!(bs->flags & BLOCK_OPEN_RDWR))
		return error_set(-EROFS, "%s: image opened read-only", bs->filename);
	if (new_size > INT64_MAX)
		return error_set(-EFBIG, "%s: size %llu too large", bs->filename,
				 (unsigned long long)new_size);
	if (new_size < bs->size && !shrink_allowed)
		return error_set(-EINVAL, "%s: shrinking from %llu to %llu bytes needs --shrink",
				 bs->filename, (unsigned long long)bs->size,
				 (unsigned long long)new_size);
	if (!bs->drv->truncate)
		return block_unsupported(bs, "resizing");
	return bs->drv->truncate(bs, new_size, prealloc, shrink_allowed);
}

int block_read_backing(struct block_device *bs, uint64_t offset, const struct iovec *iov,
		       int iovcnt)
{
	size_t len = iov_size(iov, iovcnt);
	struct block_device *b = bs->backing;
	size_t avail = 0;
	int ret = 0;

	if (b && offset < b->size)
		avail = b->size - offset < len ? (size_t)(b->size - offset) : len;
	if (avail == len) {
		return block_preadv(b, offset, iov, iovcnt);
	} else if (avail) {
		struct iovec stack[16], *part = stack;
		if (iovcnt > 16) {
			part = malloc(sizeof(*part) * iovcnt);
			if (!part)
				return error_set(-ENOMEM, "%s: out of memory", bs->filename);
		}
		int n = iov_slice(iov, iovcnt, 0, avail, part, iovcnt);
		ret = n < 0 ? n : block_preadv(b, offset, part, n);
		if (part != stack)
			free(part);
		if (ret < 0)
			return ret;
	}
	iov_memset(iov, iovcnt, avail, 0, len - avail);
	return 0;
}

/* ---- Image operations beyond I/O (check, info, rebase, UUIDs, snapshots) ---- */

/* Callers reach these through the core only, so that a missing operation and a write to a
 * read-only image give the same error, named the same way, whatever the format. */
static int block_op_missing(struct block_device *bs, const char *what)
{
	return error_set(-ENOTSUP, "%s: format %s does not support %s", bs->filename, bs->drv->name,
			 what);
}

static int block_op_writable(struct block_device *bs)
{
	if (!(bs->flags & BLOCK_OPEN_RDWR))
		return error_set(-EROFS, "%s: image opened read-only", bs->filename);
	return 0;
}

int block_check(struct block_device *bs, struct block_check_result *res, int fix)
{
	memset(res, 0, sizeof(*res));
	if (!bs->drv->check)
		return block_op_missing(bs, "checks");
	if (fix && block_op_writable(bs) < 0)
		return -EROFS;
	return bs->drv->check(bs, res, fix);
}

int block_info(struct block_device *bs, struct json_object *out)
{
	if (!bs->drv->info)
		return block_op_missing(bs, "format-specific information");
	return bs->drv->info(bs, out);
}

int block_set_backing(struct block_device *bs, const char *backing, const char *backing_fmt)
{
	if (!bs->drv->set_backing)
		return block_op_missing(bs, "changing the backing file");
	if (block_op_writable(bs) < 0)
		return -EROFS;
	return bs->drv->set_backing(bs, backing, backing_fmt);
}

int block_get_uuid(struct block_device *bs, uint8_t uuid[16])
{
	if (!bs->drv->get_uuid)
		return block_op_missing(bs, "UUIDs");
	return bs->drv->get_uuid(bs, uuid);
}

int block_set_uuid(struct block_device *bs, const uint8_t uuid[16])
{
	if (!bs->drv->set_uuid)
		return block_op_missing(bs, "UUIDs");
	if (block_op_writable(bs) < 0)
		return -EROFS;
	return bs->drv->set_uuid(bs, uuid);
}

int block_snapshot_create(struct block_device *bs, const char *name)
{
	if (!bs->drv->snapshot_create)
		return block_op_missing(bs, "internal snapshots");
	if (block_op_writable(bs) < 0)
		return -EROFS;
	return bs->drv->snapshot_create(bs, name);
}

int block_snapshot_list(struct block_device *bs, struct block_snapshot **list, int *count)
{
	*list = NULL;
	*count = 0;
	if (!bs->drv->snapshot_list)
		return block_op_missing(bs, "internal snapshots");
	return bs->drv->snapshot_list(bs, list, count);
}

int block_snapshot_apply(struct block_device *bs, const char *name_or_id)
{
	if (!bs->drv->snapshot_apply)
		return block_op_missing(bs, "internal snapshots");
	if (block_op_writable(bs) < 0)
		return -EROFS;
	return bs->drv->snapshot_apply(bs, name_or_id);
}

int block_snapshot_delete(struct block_device *bs, const char *name_or_id)
{
	if (!bs->drv->snapshot_delete)
		return block_op_missing(bs, "internal snapshots");
	if (block_op_writable(bs) < 0)
		return -EROFS;
	return bs->drv->snapshot_delete(bs, name_or_id);
}

int block_snapshot_load_tmp(struct block_device *bs, const char *id, const char *name)
{
	if (!bs->drv->snapshot_load_tmp)
		return block_op_missing(bs, "internal snapshots");
	if (bs->flags & BLOCK_OPEN_RDWR)
		return error_set(-EINVAL, "%s: a snapshot is read only from a read-only image",
				 bs->filename);
	if (!id && !name)
		return error_set(-EINVAL, "%s: no snapshot ID or name given", bs->filename);
	return bs->drv->snapshot_load_tmp(bs, id, name);
}

int block_snapshot_load_tmp_by_id_or_name(struct block_device *bs, const char *id_or_name)
{
	int ret = block_snapshot_load_tmp(bs, id_or_name, NULL);

	if (ret == -ENOENT)
		ret = block_snapshot_load_tmp(bs, NULL, id_or_name);
	if (ret == -ENOENT)
		ret = error_set(-ENOENT, "%s: no snapshot with ID or name '%s'", bs->filename,
				id_or_name);
	return ret;
}

int block_cluster_size(struct block_device *bs, uint32_t *size)
{
	*size = 0;
	if (!bs->drv->cluster_size)
		return block_op_missing(bs, "a cluster size");
	*size = bs->drv->cluster_size(bs);
	return 0;
}
