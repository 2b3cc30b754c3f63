/* qcow2 driver internals, shared by the storage/qcow2*.c files.
 *
 * Locking: every field below is guarded by `lock` except the constants fixed at open (cluster
 * geometry, version, features). Data I/O runs outside the lock; `io_inflight` counts such I/O so
 * that freed clusters are only returned to the allocator when nobody can still be reading or
 * writing them, and `alloc_inflight` names guest clusters being allocated so two writers never
 * allocate the same guest cluster twice.
 *
 * Crash-safety ordering: refcount blocks are written (and synced) before any L2 table that points
 * at newly counted clusters; a new L2 table is synced before the L1 entry pointing at it; freed
 * clusters are only decremented after the L2 tables that stopped referencing them are synced.
 */
#ifndef MINIVMM_STORAGE_QCOW2_H
#define MINIVMM_STORAGE_QCOW2_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "storage/core/block.h"

#define QCOW2_MAGIC 0x514649fbu
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_L1_BYTES (32u << 20)
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)
#define QCOW2_MAX_SNAPSHOTS 65536
#define QCOW2_V2_HEADER_LEN 72
#define QCOW2_V3_HEADER_LEN 104

/* Incompatible feature bits. */
#define QCOW2_INCOMPAT_DIRTY (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ull << 4)
#define QCOW2_INCOMPAT_SUPPORTED                                                                   \
	(QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DATA_FILE |                \
	 QCOW2_INCOMPAT_COMPRESSION | QCOW2_INCOMPAT_EXTL2)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)
#define QCOW2_AUTOCLEAR_BITMAPS (1ull << 0)
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW (1ull << 1) /* the data file reads as a raw image */

/* Header extension types. */
#define QCOW2_EXT_END 0
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857u
#define QCOW2_EXT_BITMAPS 0x23852875u
#define QCOW2_EXT_DATA_FILE 0x44415441u /* "DATA": the external data file's name */
#define QCOW2_DATA_FILE_NAME_MAX 1023

/* L1/L2 entry bits. */
#define QCOW2_OFLAG_COPIED (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO (1ull << 0)
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ull
#define QCOW2_L1_RESERVED 0x7f000000000001ffull
#define QCOW2_L2_RESERVED 0x3f000000000001feull

enum { QCOW2_COMPRESS_ZLIB = 0, QCOW2_COMPRESS_ZSTD = 1 };

/* A cache of cluster-sized metadata tables (L2 tables or refcount blocks), kept as on disk
 * (big-endian), bounded, least-recently-used eviction. */
struct qcow2_cache_entry {
	uint64_t offset; /* host offset; 0 = empty slot */
	uint8_t *data;
	uint64_t lru;
	int refs; /* pinned while > 0 */
	bool dirty;
};
struct qcow2_cache {
	struct qcow2_cache_entry *e;
	int n;
	uint64_t tick;
	struct qcow2_cache *depends; /* flushed (and synced) before any write of this cache */
	struct host_file *data_sync; /* synced too before any write (external data file) */
	bool unsynced;		     /* entries written since the last sync */
	struct block_device *bs;
};

struct qcow2_snapshot {
	uint64_t l1_table_offset;
	uint32_t l1_size;
	char *id;
	char *name;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t vm_state_size;
	uint64_t disk_size;
	bool has_disk_size;
	uint64_t icount;
	bool has_icount;
	uint32_t extra_size; /* as read; extra bytes beyond what we know are dropped on rewrite */
};

struct qcow2_state {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled when alloc_inflight or io_inflight change */

	/* Fixed at open. */
	uint32_t version;
	uint32_t cluster_bits;
	uint64_t cluster_size;
	uint32_t l2_bits;  /* entries per L2 table = 1 << l2_bits */
	uint32_t l2_esize; /* bytes per L2 entry: 8, or 16 with extended L2 (subclusters) */
	bool extended_l2;  /* subcluster bitmaps; supported read-only */
	uint32_t refcount_order;
	uint32_t refblock_bits; /* entries per refcount block = 1 << refblock_bits */
	uint64_t refcount_max;
	uint32_t csize_shift; /* compressed descriptor: sector-count field position */
	uint64_t csize_mask;
	uint64_t cluster_offset_mask; /* compressed descriptor: host offset bits */
	uint8_t compression_type;
	bool read_only;
	/* External data file (incompatible bit 2): every guest cluster lives there at its own
	 * guest offset, unrefcounted; the qcow2 file holds metadata only. */
	bool has_data_file;
	bool data_file_raw;	    /* autoclear bit 1: it reads as a raw image too */
	char *data_file_name;	    /* as in the header extension */
	char *data_file_path;	    /* resolved (storage/core/block_path.c) */
	struct host_file data_file; /* fd -1 when none */

	/* Header, as in the file. */
	uint64_t incompat, compat, autoclear;
	uint32_t header_length;
	uint64_t l1_table_offset;
	uint32_t l1_size;
	uint64_t *l1; /* host-endian copy; authoritative, written at metadata flush when dirty */
	bool l1_dirty;
	uint64_t refcount_table_offset;
	uint32_t refcount_table_clusters;
	uint64_t *reftable; /* host-endian copy */
	uint64_t reftable_entries;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	struct qcow2_snapshot *snapshots;
	uint8_t *unknown_ext; /* header extensions we do not interpret, preserved verbatim */
	size_t unknown_ext_len;
	uint8_t *feature_table; /* feature name table extension payload, or NULL */
	size_t feature_table_len;

	struct qcow2_cache l2_cache;
	struct qcow2_cache rb_cache;
	uint64_t free_hint; /* no free cluster below this index */
	/* Next free byte for a compressed stream, inside a host cluster already counted for the
	 * streams before it; 0 = start a new host cluster. Reset when that cluster is freed. */
	uint64_t compress_next;

	uint64_t *pending_free; /* host offsets to decrement once L2s are synced */
	size_t pending_n, pending_cap;
	int io_inflight;
	uint64_t *alloc_inflight; /* guest cluster indexes */
	int alloc_n, alloc_cap;

	/* Image file size management (qcow2_grow.c). */
	bool file_len_known, grown;
	bool no_grow;	   /* img create: the file keeps exactly the size its writes give it */
	uint64_t open_len; /* file size when first grown: never trimmed below */
	uint64_t file_len; /* file size as last read or grown */
};

static inline struct qcow2_state *qcow2_state(struct block_device *bs)
{
	return bs->state;
}

/* The file guest data clusters live in, and its name for messages. */
static inline struct host_file *qcow2_data(struct block_device *bs)
{
	struct qcow2_state *s = bs->state;
	return s->has_data_file ? &s->data_file : &bs->file;
}
static inline const char *qcow2_data_name(struct block_device *bs)
{
	struct qcow2_state *s = bs->state;
	return s->has_data_file ? s->data_file_path : bs->filename;
}

/* qcow2.c */
struct qcow2_state *qcow2_state_new(void);
int qcow2_state_setup(struct block_device *bs, struct qcow2_state *s);
void qcow2_state_free(struct qcow2_state *s);
int qcow2_preallocate(struct block_device *bs, uint64_t from, uint64_t to,
		      enum block_prealloc mode);

/* qcow2_header.c */
void qcow2_geometry(struct qcow2_state *s); /* derived fields from cluster_bits, refcount_order */
int qcow2_header_read(struct block_device *bs, struct qcow2_state *s);
int qcow2_header_write(struct block_device *bs, struct qcow2_state *s);
int qcow2_header_update_features(struct block_device *bs, struct qcow2_state *s);
int qcow2_probe(const uint8_t *head, size_t len, const char *filename);

/* qcow2_cache.c */
int qcow2_cache_init(struct qcow2_cache *c, struct block_device *bs, int entries, size_t size);
void qcow2_cache_destroy(struct qcow2_cache *c);
/* Pins and returns the table at `offset`; read from disk unless `fresh` (then zero-filled). */
int qcow2_cache_get(struct qcow2_cache *c, uint64_t offset, bool fresh, uint8_t **data);
void qcow2_cache_put(struct qcow2_cache *c, uint8_t *data);
void qcow2_cache_mark_dirty(struct qcow2_cache *c, uint8_t *data);
int qcow2_cache_write(struct qcow2_cache *c); /* write dirty entries (no sync) */
int qcow2_cache_flush(struct qcow2_cache *c); /* write dirty entries and sync */
bool qcow2_cache_is_dirty(const struct qcow2_cache *c);
void qcow2_cache_discard(struct qcow2_cache *c, uint64_t offset);   /* drop without writing */
bool qcow2_cache_has(const struct qcow2_cache *c, uint64_t offset); /* cached: get does no I/O */

/* qcow2_grow.c */
/* Make the image file at least `end` bytes long, growing it a step ahead (lock held). */
void qcow2_file_grow(struct block_device *bs, uint64_t end);
/* Give back the grown tail beyond the last cluster in use (at close). */
void qcow2_file_trim(struct block_device *bs);

/* qcow2_refcount.c */
int qcow2_refcount_get(struct block_device *bs, uint64_t cluster, uint64_t *rc);
int qcow2_refcount_update(struct block_device *bs, uint64_t cluster, int64_t delta);
/* Allocate n contiguous clusters (refcount 1 each); returns the host offset in *offset. */
int qcow2_alloc_clusters(struct block_device *bs, uint64_t n, uint64_t *offset);
/* qcow2_alloc_clusters(bs, n) would do no I/O now (refcount blocks cached, none to add). */
bool qcow2_alloc_cached(struct block_device *bs, uint64_t n);
/* Decrement the refcount of [offset, offset+len) clusters once synced L2s no longer reference it.
 */
int qcow2_free_deferred(struct block_device *bs, uint64_t offset, uint64_t len);
int qcow2_free_now(struct block_device *bs, uint64_t offset, uint64_t len);
int qcow2_apply_pending_frees(struct block_device *bs);
uint64_t qcow2_refcount_read_entry(const struct qcow2_state *s, const uint8_t *blk, uint64_t i);
void qcow2_refcount_write_entry(const struct qcow2_state *s, uint8_t *blk, uint64_t i, uint64_t v);
int qcow2_reftable_write(struct block_device *bs);

/* qcow2_cluster.c */
enum qcow2_ctype {
	QCOW2_C_UNALLOCATED,
	QCOW2_C_ZERO_PLAIN, /* zero flag, no host cluster */
	QCOW2_C_ZERO_ALLOC, /* zero flag with a preallocated host cluster */
	QCOW2_C_NORMAL,
	QCOW2_C_COMPRESSED,
};
enum qcow2_ctype qcow2_l2_type(const struct qcow2_state *s, uint64_t entry);
/* L2 entry for the guest offset (0 when the L2 table is absent). */
int qcow2_l2_lookup(struct block_device *bs, uint64_t offset, uint64_t *entry);
/* Longest run from `offset` (at most len bytes) with one type and contiguous host clusters. */
int qcow2_map(struct block_device *bs, uint64_t offset, uint64_t len, enum qcow2_ctype *type,
	      uint64_t *entry, uint64_t *bytes);
/* Set the L2 entry of a guest cluster, allocating/copying the L2 table as needed. */
int qcow2_l2_set(struct block_device *bs, uint64_t offset, uint64_t entry);
/* Release a host cluster described by an L2 entry (deferred until the L2 change is synced). */
int qcow2_entry_free(struct block_device *bs, uint64_t entry);
int qcow2_metadata_flush(struct block_device *bs);
int qcow2_l1_write(struct block_device *bs);
uint64_t qcow2_l1_needed(const struct qcow2_state *s, uint64_t size);
int qcow2_l1_grow(struct block_device *bs, uint32_t new_size);

/* qcow2_compress.c */
int qcow2_decompress(const struct qcow2_state *s, const uint8_t *src, size_t src_len, uint8_t *dst,
		     size_t dst_len);
/* Returns the compressed length, or -ENOSPC if it would not be smaller than max. */
ssize_t qcow2_compress(const struct qcow2_state *s, const uint8_t *src, size_t src_len,
		       uint8_t *dst, size_t max);
int qcow2_read_compressed(struct block_device *bs, uint64_t entry, uint8_t *cluster);
int qcow2_pwrite_compressed(struct block_device *bs, uint64_t offset, const void *buf, size_t len);

/* qcow2_io.c */
/* With the lock held: wait until no writer is allocating guest cluster `cluster`. */
void qcow2_wait_allocation(struct qcow2_state *s, uint64_t cluster);
int qcow2_preadv(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt);
int qcow2_aio_map(struct block_device *bs, uint64_t offset, uint64_t len, bool write,
		  uint64_t *host);
void qcow2_aio_map_end(struct block_device *bs);
int qcow2_aio_alloc(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t *host);
int qcow2_aio_alloc_end(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t host,
			int result, bool may_block);
int qcow2_pwritev(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt);
int qcow2_flush(struct block_device *bs);
int qcow2_discard(struct block_device *bs, uint64_t offset, uint64_t len);
int qcow2_write_zeroes(struct block_device *bs, uint64_t offset, uint64_t len, int flags);
int qcow2_block_status(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t *pnum,
		       int *status, uint64_t *map_offset);

/* qcow2_check.c */
int qcow2_check(struct block_device *bs, struct block_check_result *res, int fix);

/* qcow2_snapshot.c */
int qcow2_snapshots_read(struct block_device *bs, struct qcow2_state *s);
void qcow2_snapshots_free(struct qcow2_state *s);
int qcow2_snapshot_list(struct block_device *bs, struct block_snapshot **list, int *count);
/* Set COPIED exactly where the on-disk refcount is 1 (active L1 and its L2 tables). */
int qcow2_fix_copied_flags(struct block_device *bs);
int qcow2_snapshot_create(struct block_device *bs, const char *name);
int qcow2_snapshot_apply(struct block_device *bs, const char *name_or_id);
int qcow2_snapshot_delete(struct block_device *bs, const char *name_or_id);
/* Read-only images: make the snapshot (by ID and/or name) the content that reads return. */
int qcow2_snapshot_load_tmp(struct block_device *bs, const char *id, const char *name);

/* qcow2_data_file.c */
/* Open the data file the header names (after qcow2_header_read); 0 when there is none. */
int qcow2_data_file_open(struct block_device *bs, struct qcow2_state *s);
void qcow2_data_file_close(struct qcow2_state *s);
/* -ENOTSUP naming `what` when the image has a data file (snapshots, compressed clusters). */
int qcow2_data_file_refuse(struct block_device *bs, const char *what);

/* qcow2_create.c */
int qcow2_create(const char *filename, const struct block_create_args *args);

#endif
