/* The block layer: one interface for every disk-image format, with backing chains handled once.
 *
 * A format driver fills a static `struct block_driver` and registers it with BLOCK_DRIVER() below.
 * The core (storage/core/block.c) probes, opens backing chains, detects loops and offers the
 * generic helpers below; controllers and the image tool only ever call block_*() functions, never a
 * driver.
 *
 * Conventions:
 *  - every function returns 0 (or a non-negative count) on success and -errno on failure; on
 * failure it also records a one-line message naming the file and the problem (error_msg()).
 *  - offsets and lengths are bytes in the virtual disk; reads and writes are full (no short
 * counts); a range beyond the virtual size is -EINVAL.
 *  - drivers are thread-safe: preadv/pwritev/flush/discard/write_zeroes/block_status may be called
 *    concurrently from several threads on one image (metadata under the driver's own lock).
 */
#ifndef MINIVMM_STORAGE_BLOCK_H
#define MINIVMM_STORAGE_BLOCK_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "lib/error.h"
#include "lib/iov.h"
#include "storage/core/host_file.h"

struct json_object;
struct block_device;

/* Flags for block_open(). */
enum {
	BLOCK_OPEN_RDWR = 1 << 0,	  /* otherwise read-only */
	BLOCK_OPEN_NO_BACKING = 1 << 1,	  /* do not open the backing chain (info, rebase -u) */
	BLOCK_OPEN_CACHE_NONE = 1 << 2,	  /* O_DIRECT on every file of the chain */
	BLOCK_OPEN_CACHE_DSYNC = 1 << 3,  /* O_DSYNC: every write is durable when it completes */
	BLOCK_OPEN_CACHE_UNSAFE = 1 << 4, /* flushes are ignored */
	BLOCK_OPEN_CHECK = 1 << 5, /* opened by `check`: tolerate inconsistencies to report them */
	/* The format was probed, not given: set by the core when fmt is NULL, and by a caller
	 * opening with a format an earlier probe found (a VM's recorded format), so that a raw
	 * image opened read-write keeps its probe-window guard (block_probe_window). */
	BLOCK_OPEN_PROBED = 1 << 6,
	/* Lock each file of the chain before its driver reads it (storage/core/disk_lock.h): a
	 * write lock on a file opened RDWR, read locks on the others; -EBUSY naming the VM
	 * that holds one. A file system without locks leaves the file unlocked
	 * (disk_lock_unsupported() counts it). */
	BLOCK_OPEN_LOCK = 1 << 7,
};

/* Allocation status of a range (block_status). */
enum {
	BLOCK_STATUS_DATA = 1 << 0, /* reads return data stored somewhere (this layer or below) */
	BLOCK_STATUS_ZERO = 1 << 1, /* reads return zeroes */
	BLOCK_STATUS_ALLOCATED = 1 << 2, /* this layer decides the content (not the backing file) */
	BLOCK_STATUS_OFFSET_VALID = 1 << 3, /* *map_offset holds the host-file offset of the data */
	BLOCK_STATUS_COMPRESSED = 1 << 4,
};

/* Flags for write_zeroes. */
enum {
	BLOCK_ZERO_MAY_UNMAP = 1 << 0, /* the driver may deallocate instead of writing zeroes */
};

/* Preallocation modes (create and truncate). */
enum block_prealloc {
	BLOCK_PREALLOC_OFF = 0, /* thin */
	BLOCK_PREALLOC_METADATA,
	BLOCK_PREALLOC_FALLOC, /* thick, lazy: fallocate() */
	BLOCK_PREALLOC_FULL,   /* thick, eager: zeroes written */
};

/* A key=value option list, as given to `img create -o`. Drivers take the keys they know; the core
 * rejects any key no driver took (block_opts_unused). */
struct block_opt {
	char *key;
	char *value;
	bool used;
};
struct block_opts {
	struct block_opt *v;
	size_t n;
};

struct block_create_args {
	uint64_t size;		 /* virtual size in bytes (0 with a backing file: take its size) */
	const char *backing;	 /* backing file name as it will be stored in the image, or NULL */
	const char *backing_fmt; /* its format name, or NULL */
	struct block_opts
	    *opts; /* format options (cluster_size, compat, preallocation, subformat...) */
};

/* One entry of `check`. */
struct block_check_result {
	uint64_t corruptions; /* found */
	uint64_t leaks;	      /* found */
	uint64_t corruptions_fixed;
	uint64_t leaks_fixed;
	uint64_t check_errors; /* the check itself failed to read something */
	uint64_t allocated_clusters;
	uint64_t total_clusters;
	uint64_t fragmented_clusters;
	uint64_t compressed_clusters;
	uint64_t image_end_offset;
};
enum { BLOCK_CHECK_FIX_LEAKS = 1, BLOCK_CHECK_FIX_ERRORS = 2 };

/* An internal snapshot (qcow2). */
struct block_snapshot {
	char id[32];
	char name[256];
	uint64_t vm_state_size;
	uint64_t date_sec;
	uint32_t date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t disk_size;
};

struct block_driver {
	const char *name; /* "raw", "qcow2", "vdi", "vmdk", "vpc", "vhdx", "parallels" */
	const char *description;
	bool has_backing; /* the format can record a backing file */

	/* Score 0..100 that `head` (the first bytes of the file: at most probe_bytes, fewer if the
	 * file is shorter) is this format. raw is never probed: it is the fallback, or asked for by
	 * name. */
	int (*probe)(const uint8_t *head, size_t len, const char *filename);
	/* The most bytes of the head probe looks at; the core never passes more. The largest over
	 * all drivers is the window a probed raw image guards (block_probe_window). */
	size_t probe_bytes;

	/* bs->file is open (bs->flags tell read-only or not); fill bs->size, bs->state, and for a
	 * format with a backing file bs->backing_name/backing_fmt (the core opens the chain). */
	int (*open)(struct block_device *bs);
	void (*close)(struct block_device *bs);
	int (*create)(const char *filename, const struct block_create_args *args);

	int (*preadv)(struct block_device *bs, uint64_t offset, const struct iovec *iov,
		      int iovcnt);
	int (*pwritev)(struct block_device *bs, uint64_t offset, const struct iovec *iov,
		       int iovcnt);
	int (*flush)(struct block_device *bs); /* NULL: block_flush flushes the host file */
	int (*discard)(struct block_device *bs, uint64_t offset, uint64_t len);
	int (*write_zeroes)(struct block_device *bs, uint64_t offset, uint64_t len, int flags);
	/* Status of [offset, offset+len): sets *pnum to the length (>0) of the leading run with one
	 * status, *status to BLOCK_STATUS_* bits, *map_offset when OFFSET_VALID. */
	int (*block_status)(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t *pnum,
			    int *status, uint64_t *map_offset);
	int (*truncate)(struct block_device *bs, uint64_t new_size, enum block_prealloc prealloc,
			bool shrink_allowed);
	int (*check)(struct block_device *bs, struct block_check_result *res, int fix);
	/* Format-specific fields for `info` ("format-specific" in qemu-img's JSON). */
	int (*info)(struct block_device *bs, struct json_object *out);
	/* Record a new backing file name/format in the image header (rebase). */
	int (*set_backing)(struct block_device *bs, const char *backing, const char *backing_fmt);
	/* The image's UUID, if the format carries one (VDI, VHD, VHDX, VMDK). */
	int (*get_uuid)(struct block_device *bs, uint8_t uuid[16]);
	int (*set_uuid)(struct block_device *bs, const uint8_t uuid[16]);

	int (*snapshot_create)(struct block_device *bs, const char *name);
	int (*snapshot_list)(struct block_device *bs, struct block_snapshot **list, int *count);
	int (*snapshot_apply)(struct block_device *bs, const char *name_or_id);
	int (*snapshot_delete)(struct block_device *bs, const char *name_or_id);
	/* On an image opened read-only, before any I/O: reads become the snapshot's (the virtual
	 * size stays the image's, as in qemu), found by ID and name when both are given, else by
	 * the one given. */
	int (*snapshot_load_tmp)(struct block_device *bs, const char *id, const char *name);

	/* The smallest aligned unit of allocation (cluster, grain, block); 0 when not meaningful.
	 */
	uint32_t (*cluster_size)(struct block_device *bs);

	/* A format stored as a directory (a Parallels .hdd bundle): the image file inside it to
	 * open instead (malloc'ed) and that file's format. Asked only when the path is a directory.
	 */
	int (*open_directory)(const char *dir, char **path, const char **fmt);

	/* Write one compressed cluster (convert -c): offset cluster-aligned, len one cluster or the
	 * tail of the disk.  NULL when the format cannot store compressed data. */
	int (*pwrite_compressed)(struct block_device *bs, uint64_t offset, const void *buf,
				 size_t len);

	/* For the io_uring engine (storage/core/block_aio_uring.c): where [offset, offset+len)
	 * lives when it is one contiguous run of bs->file that needs nothing else from the driver
	 * (no allocation, copy on write, decompression or backing read): 0 and *host, and the run
	 * stays valid (its clusters are not reused) until aio_map_end; 1 when the request must go
	 * through preadv/pwritev instead.  NULL: every request goes through preadv/pwritev. */
	int (*aio_map)(struct block_device *bs, uint64_t offset, uint64_t len, bool write,
		       uint64_t *host);
	void (*aio_map_end)(struct block_device *bs);
	/* For the io_uring engine, a write aio_map refused: when it fills whole new clusters (no
	 * old content to copy), reserve them: 0 and *host, where the caller writes the data and
	 * then calls aio_alloc_end with the write's result (0 or -errno); only then do the clusters
	 * become part of the disk (the driver maps them, or frees them on an error).  1: the
	 * request must go through pwritev.  NULL: allocating writes always go through pwritev.
	 * With may_block false, aio_alloc_end does no I/O: -EWOULDBLOCK, with nothing changed, when
	 * it would need some (an L2 table not in the cache); the caller, which must not block (an
	 * event loop), calls it again with may_block true from a thread that may. */
	int (*aio_alloc)(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t *host);
	int (*aio_alloc_end)(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t host,
			     int result, bool may_block);
};

struct block_device {
	const struct block_driver *drv;
	char *filename;
	struct host_file file; /* the image file itself */
	int flags;	       /* BLOCK_OPEN_* */
	uint64_t size;	       /* virtual size in bytes */
	void *state;	       /* the driver's */
	/* backing_name/backing_fmt are malloc'ed by the driver's open and freed by block_close. */
	char *backing_name;	      /* as recorded in the image (set by the driver's open) */
	char *backing_fmt;	      /* as recorded, or NULL: probed */
	struct block_device *backing; /* opened by the core; NULL when none */
	/* A probed raw image opened read-write: serialises writes to the probe window (see
	 * block_pwritev). NULL otherwise. */
	struct block_probe_guard *probe_guard;
};

/* ---- Registry and lifecycle (storage/core/block.c) ---- */
/* Drivers register themselves at start-up: `BLOCK_DRIVER(block_driver_qcow2);` in the driver's
 * file. */
void block_driver_register(const struct block_driver *drv);
#define BLOCK_DRIVER(drv)                                                                          \
	static void __attribute__((constructor)) drv##_register(void)                              \
	{                                                                                          \
		block_driver_register(&(drv));                                                     \
	}
const struct block_driver *block_driver_find(const char *name);
const struct block_driver *const *block_drivers(size_t *count);
/* Probe `filename` (raw when nothing matches). */
int block_probe(const char *filename, const struct block_driver **drv);
/* The format `head` (the first len bytes of an image) probes as: the best-scoring driver, NULL
 * when none recognises it (raw). */
const struct block_driver *block_probe_head(const uint8_t *head, size_t len, const char *filename);
/* The largest head any registered driver's probe reads (the maximum of their probe_bytes).
 *
 * A raw image whose format was probed (BLOCK_OPEN_PROBED) is guarded like QEMU's (CVE-2008-2004):
 * a write, write-zeroes or discard touching its first block_probe_window() bytes is checked
 * against every probe with the write applied to the current head, and refused with -EPERM when
 * the image would then probe as another format (a guest could otherwise make its disk a qcow2
 * or VMDK naming any host file, read at the next probe). The check and the write run under one
 * lock per image, so concurrent writes cannot each pass against the old head and together
 * build a header. */
size_t block_probe_window(void);
/* Whether a write to [offset, ...) of bs goes through that check: asynchronous engines must then
 * use block_pwritev/block_write_zeroes/block_discard, never the file directly. */
bool block_probe_guarded(const struct block_device *bs, uint64_t offset);
/* Open an image; fmt NULL means probe. Opens the backing chain (resolved relative to the image's
 * directory), refusing loops and chains deeper than BLOCK_MAX_CHAIN. */
#define BLOCK_MAX_CHAIN 64
int block_open(const char *filename, const char *fmt, int flags, struct block_device **out);
void block_close(struct block_device *bs);
int block_create(const char *fmt, const char *filename, const struct block_create_args *args);

/* host_file_open() flags for a file opened with BLOCK_OPEN_* `flags` (its cache mode). */
int block_host_file_flags(int flags);

/* ---- I/O (synchronous, thread-safe) ---- */
int block_preadv(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt);
int block_pwritev(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt);
int block_pread(struct block_device *bs, uint64_t offset, void *buf, size_t len);
int block_pwrite(struct block_device *bs, uint64_t offset, const void *buf, size_t len);
int block_flush(struct block_device *bs);
int block_discard(struct block_device *bs, uint64_t offset, uint64_t len);
int block_write_zeroes(struct block_device *bs, uint64_t offset, uint64_t len, int flags);
int block_status(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t *pnum,
		 int *status, uint64_t *map_offset);
int block_truncate(struct block_device *bs, uint64_t new_size, enum block_prealloc prealloc,
		   bool shrink_allowed);

/* For drivers: read [offset, offset+len) of bs's *backing* content into iov: from bs->backing where
 * there is one (zeroes past the backing file's end), zeroes otherwise. */
int block_read_backing(struct block_device *bs, uint64_t offset, const struct iovec *iov,
		       int iovcnt);

/* ---- Mapped I/O for drivers (storage/core/block_map_io.c) ---- */
/* Where one run of a request lives. */
enum block_map_kind {
	BLOCK_MAP_HOST,	   /* in `file` at `host` */
	BLOCK_MAP_ZERO,	   /* reads as zeroes */
	BLOCK_MAP_BACKING, /* reads as the backing content (block_read_backing) */
	BLOCK_MAP_DRIVER,  /* ops->io does it (compressed data, copy-on-write...) */
};
struct block_map {
	enum block_map_kind kind;
	uint64_t len;		/* bytes of the run: 1 .. the length asked */
	uint64_t host;		/* HOST: offset in the file; DRIVER: the driver's own value */
	struct host_file *file; /* HOST: NULL means bs->file */
	const char *name;	/* HOST: the file's name in messages; NULL means bs->filename */
};
struct block_map_ops {
	/* Describe the leading run of [offset, offset+len) in *m (zeroed on entry); -errno, with a
	 * error_set() message, fails the request. */
	int (*map)(struct block_device *bs, void *opaque, uint64_t offset, uint64_t len,
		   struct block_map *m);
	/* Do one run the core does not: DRIVER runs, and on writes every run that is not HOST (the
	 * driver allocates). part/n are the run's bytes of the request. */
	int (*io)(struct block_device *bs, void *opaque, uint64_t offset, const struct block_map *m,
		  const struct iovec *part, int n);
	/* Optional: called once for every run map described, after its I/O (done or failed), e.g.
	 * to let go of what map pinned. */
	void (*end)(struct block_device *bs, void *opaque, const struct block_map *m);
};
/* Cut a request into the runs ops->map describes and read or write each: host runs with
 * host_file_preadv/pwritev (a failure names the file and host offset), zero and backing runs of a
 * read here, the rest through ops->io. Stops at the first failure. */
int block_map_preadv(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt,
		     const struct block_map_ops *ops, void *opaque);
int block_map_pwritev(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt,
		      const struct block_map_ops *ops, void *opaque);

/* ---- Errors: error_set() and error_msg() (lib/error.h, included above) ---- */

/* ---- Options ---- */
int block_opts_parse(struct block_opts *opts, const char *text);      /* "a=1,b=2"; appends */
const char *block_opts_get(struct block_opts *opts, const char *key); /* marks it used */
void block_opts_free(struct block_opts *opts);
/* Name of the first option nobody used, or NULL. */
const char *block_opts_unused(const struct block_opts *opts);
/* Typed lookups for create options (each marks its key used). An absent key leaves *out alone and
 * is 0; a bad value is -EINVAL with a message naming file, key and value. Booleans: on/off,
 * true/false, yes/no, 1/0 (any case). Sizes: decimal bytes, optionally K, M, G or T (binary; then
 * optionally B or iB). Preallocation ("preallocation"): off, metadata, falloc or full. */
int block_opts_get_bool(struct block_opts *opts, const char *file, const char *key, bool *out);
int block_opts_get_size(struct block_opts *opts, const char *file, const char *key, uint64_t *out);
int block_opts_get_prealloc(struct block_opts *opts, const char *file, enum block_prealloc *out);

/* iovec helpers: lib/iov.h (included above). */

/* Write one whole cluster compressed (see pwrite_compressed); -ENOTSUP when the format has none.
 * Inline so that adding it touched only this header. */
static inline int block_pwrite_compressed(struct block_device *bs, uint64_t offset, const void *buf,
					  size_t len)
{
	if (!bs->drv->pwrite_compressed)
		return error_set(-ENOTSUP, "%s: format '%s' cannot write compressed data",
				 bs->filename, bs->drv->name);
	if (offset > bs->size || len > bs->size - offset)
		return error_set(-EINVAL, "%s: compressed write beyond the end of the disk",
				 bs->filename);
	return bs->drv->pwrite_compressed(bs, offset, buf, len);
}

/* ---- Image operations beyond I/O (storage/core/block.c) ---- */
/* Each is -ENOTSUP (with a message naming the format) when the driver has no such operation, and
 * those that write (check with fix, set_*, snapshot create/apply/delete) -EROFS on an image not
 * opened BLOCK_OPEN_RDWR. */
int block_check(struct block_device *bs, struct block_check_result *res, int fix);
/* Format-specific fields for `info`, added to out. */
int block_info(struct block_device *bs, struct json_object *out);
int block_set_backing(struct block_device *bs, const char *backing, const char *backing_fmt);
int block_get_uuid(struct block_device *bs, uint8_t uuid[16]);
int block_set_uuid(struct block_device *bs, const uint8_t uuid[16]);
int block_snapshot_create(struct block_device *bs, const char *name);
/* *list is malloc'ed (free() it); NULL and 0 on failure. */
int block_snapshot_list(struct block_device *bs, struct block_snapshot **list, int *count);
int block_snapshot_apply(struct block_device *bs, const char *name_or_id);
int block_snapshot_delete(struct block_device *bs, const char *name_or_id);
/* Reads of an image opened read-only become those of an internal snapshot (`convert -l`), before
 * any I/O: by ID and name when both are given, else by the one given; -ENOENT naming it when no
 * snapshot matches, -EINVAL when the image is open read-write. */
int block_snapshot_load_tmp(struct block_device *bs, const char *id, const char *name);
/* The same by one word, as qemu-img's `-l NAME` and `-s NAME`: an ID first, then a name. */
int block_snapshot_load_tmp_by_id_or_name(struct block_device *bs, const char *id_or_name);
/* *size: the driver's cluster_size (0 when not meaningful for this image). */
int block_cluster_size(struct block_device *bs, uint32_t *size);

#endif
