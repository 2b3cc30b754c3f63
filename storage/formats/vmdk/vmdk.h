/* VMware VMDK images: the driver's private interface, shared by storage/vmdk*.c.
 *
 * From VMware's "Virtual Disk Format 5.0": a disk is a text descriptor (a file of its own, or
 * embedded in a sparse extent) listing extents, each a range of sectors of the virtual disk:
 *   FLAT/VMFS "file" offset   the sectors, as they are, in the file from `offset`
 *   SPARSE "file"             a hosted sparse extent: header "KDMV" (little-endian), grain
 * directory (GD) -> grain tables (GT) -> grains; a redundant GD/GT copy optional; compressed grains
 * (deflate, zlib stream) behind a 12-byte marker in streamOptimized images, whose GD may sit in a
 * footer at the end ZERO                      reads zeroes A GT entry is a grain's sector in the
 * file, 0 = unallocated (the parent's data, or zeroes), or 1 = zeroed grain when the header has the
 * zeroed-grain flag.
 */
#ifndef MINIVMM_STORAGE_VMDK_H
#define MINIVMM_STORAGE_VMDK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "storage/core/block.h"

#define VMDK_SECTOR 512u
#define VMDK_MAGIC 0x564d444bu /* "KDMV" read as little-endian */
#define VMDK_GD_AT_END 0xffffffffffffffffull

/* Sparse header flags. */
enum {
	VMDK_FLAG_NL_DETECT = 1u << 0,
	VMDK_FLAG_RGD = 1u << 1,
	VMDK_FLAG_ZERO_GRAIN = 1u << 2,
	VMDK_FLAG_COMPRESSED = 1u << 16,
	VMDK_FLAG_MARKERS = 1u << 17,
};

/* Sparse header field offsets. */
enum {
	VMDK_H_MAGIC = 0,
	VMDK_H_VERSION = 4,
	VMDK_H_FLAGS = 8,
	VMDK_H_CAPACITY = 12,
	VMDK_H_GRAIN = 20,
	VMDK_H_DESC_OFFSET = 28,
	VMDK_H_DESC_SIZE = 36,
	VMDK_H_GTES = 44,
	VMDK_H_RGD_OFFSET = 48,
	VMDK_H_GD_OFFSET = 56,
	VMDK_H_OVERHEAD = 64,
	VMDK_H_UNCLEAN = 72,
	VMDK_H_NL_CHARS = 73,
	VMDK_H_COMPRESS_ALGO = 77,
};

#define VMDK_GRAIN_MAX 2048u	       /* sectors (1 MiB) */
#define VMDK_GTES_MAX 512u	       /* entries per grain table, as VMware and QEMU use */
#define VMDK_GD_MAX (1u << 24)	       /* directory entries held in memory (64 MiB) */
#define VMDK_CAPACITY_MAX (1ull << 37) /* sectors: 64 TiB per extent */
#define VMDK_SIZE_MAX (1ull << 46)     /* bytes: 64 TiB per disk */
#define VMDK_DESC_MAX (1u << 20)       /* bytes of descriptor text */
#define VMDK_EXTENTS_MAX 4096u
#define VMDK_GT_CACHE 64 /* grain tables cached per extent */
#define VMDK_GTE_ZERO 1u

enum vmdk_extent_type { VMDK_EXT_FLAT, VMDK_EXT_SPARSE, VMDK_EXT_ZERO };

struct vmdk_gt_slot {
	uint32_t index; /* GD index, UINT32_MAX when empty */
	uint64_t used;	/* LRU clock */
	uint32_t *e;	/* host order */
};

struct vmdk_extent {
	enum vmdk_extent_type type;
	bool read_only;	      /* RDONLY or NOACCESS in the descriptor */
	struct host_file own; /* the extent's file when it is not the image file */
	struct host_file *f;  /* &own or &bs->file */
	char *name;	      /* path, for messages */
	uint64_t start;	      /* first virtual sector */
	uint64_t sectors;
	uint64_t flat_offset; /* FLAT: bytes into the file */

	/* SPARSE */
	uint32_t version, flags;
	uint64_t capacity; /* sectors */
	uint32_t grain;	   /* sectors */
	uint32_t gtes;	   /* entries per GT */
	uint32_t gd_entries;
	uint32_t *gd, *rgd;		/* host order; rgd NULL without a redundant directory */
	uint64_t gd_offset, rgd_offset; /* sectors */
	bool compressed, markers, zero_grain, footer; /* footer: GD at end, read-only */
	uint64_t file_end;    /* bytes: where the next grain or table goes */
	pthread_mutex_t lock; /* GT cache, allocation, the grain cache below */
	struct vmdk_gt_slot gt[VMDK_GT_CACHE];
	uint64_t clock;
	uint8_t *zgrain;     /* the last decompressed grain */
	uint64_t zgrain_off; /* its sector in the file, 0 when none */
};

struct vmdk_state {
	struct vmdk_extent *ext;
	unsigned n;
	char *desc;			 /* descriptor text (NUL-terminated) */
	bool embedded;			 /* descriptor lives in extent 0's file */
	uint64_t desc_offset, desc_size; /* bytes, embedded descriptors */
	uint32_t cid, parent_cid;
	bool cid_updated; /* a new CID was written at the first write since open */
	char create_type[64];
	pthread_mutex_t desc_lock;
};

/* Descriptor (vmdk_desc.c). */
/* Value of `key` in the descriptor (quotes removed) copied into out; -ENOENT when absent. */
int vmdk_desc_get(const char *desc, const char *key, char *out, size_t outlen);
/* Set key = "value" (quoted when quote): replaces the line or appends one. Returns a new string. */
char *vmdk_desc_set(const char *desc, const char *key, const char *value, bool quote);
char *vmdk_desc_del(const char *desc, const char *key); /* a new string without key's line */
int vmdk_desc_parse(struct block_device *bs, struct vmdk_state *s);
/* Replace the descriptor text (under desc_lock) after applying set/del of keys. */
int vmdk_desc_update(struct block_device *bs, const char *const *keys, const char *const *values,
		     const bool *quote, int n);
int vmdk_cid_refresh(struct block_device *bs);
int vmdk_desc_write(struct block_device *bs, struct vmdk_state *s, const char *text);

/* Sparse extents (vmdk_sparse.c). */
int vmdk_sparse_open(struct block_device *bs, struct vmdk_extent *e, const uint8_t *hdr,
		     uint64_t fsize);
/* A text descriptor file: parse it and open its extents (vmdk_extents.c). */
int vmdk_open_text(struct block_device *bs, struct vmdk_state *s, uint64_t fsize);
void vmdk_extent_free(struct vmdk_extent *e);
/* The GT entry of the grain holding extent sector `sector` (under e->lock). */
int vmdk_gte_get(struct block_device *bs, struct vmdk_extent *e, uint64_t sector, uint32_t *gte);
int vmdk_gte_set(struct block_device *bs, struct vmdk_extent *e, uint64_t sector, uint32_t gte);
int vmdk_grain_read_compressed(struct block_device *bs, struct vmdk_extent *e, uint32_t gte);
int vmdk_grain_deflate(struct vmdk_extent *e, uint64_t lba, const uint8_t *grain, uint8_t **out,
		       size_t *total);
int vmdk_grain_append(struct vmdk_extent *e, const uint8_t *buf, size_t total, uint64_t *sector);

/* I/O (vmdk_io.c). */
int vmdk_preadv(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt);
int vmdk_pwritev(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt);
int vmdk_block_status(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t *pnum,
		      int *status, uint64_t *map_offset);
int vmdk_flush(struct block_device *bs);
int vmdk_write_zeroes(struct block_device *bs, uint64_t offset, uint64_t len, int flags);

int vmdk_create(const char *filename, const struct block_create_args *args);
int vmdk_check(struct block_device *bs, struct block_check_result *res, int fix);
char *vmdk_path_join(const char *base, const char *name);

#endif
