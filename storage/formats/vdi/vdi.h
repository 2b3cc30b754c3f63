/* VirtualBox VDI images: the driver's private interface, shared by storage/vdi*.c.
 *
 * On-disk layout (all fields little-endian), as VirtualBox's VDICore.h describes version 1.1:
 *   0x000  pre-header: 64 bytes of text, signature 0xbeda107f, version 0x00010001
 *   0x048  header: cbHeader (0x180 as QEMU writes it, 0x190 with the LCHS geometry VirtualBox
 *          adds), type, flags, szComment[256], offBlocks, offData, legacy geometry, cbDisk,
 *          cbBlock, cbBlockExtra, cBlocks, cBlocksAllocated, four UUIDs (create, modify,
 *          linkage = parent's create UUID, parent-modify)
 *   offBlocks  the block map: one 32-bit entry per block of the virtual disk, the index of the
 *          block's data in the data area, or VDI_BLOCK_FREE (unallocated: zeroes, or the parent in
 * a differencing image) or VDI_BLOCK_ZERO (reads zeroes) offData    data blocks, each cbBlockExtra
 * + cbBlock bytes, indices 0..cBlocksAllocated-1
 *
 * VirtualBox and QEMU both allocate the next block at index cBlocksAllocated, so this driver keeps
 * the used indices dense (0..allocated-1): discard moves the last block into the freed slot.
 */
#ifndef MINIVMM_STORAGE_VDI_H
#define MINIVMM_STORAGE_VDI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "storage/core/block.h"

#define VDI_SIGNATURE 0xbeda107fu
#define VDI_VERSION_1_1 0x00010001u
#define VDI_TEXT "<<< Oracle VM VirtualBox Disk Image >>>\n"

/* Byte offsets of header fields from the start of the file. */
enum {
	VDI_OFF_SIGNATURE = 0x40,
	VDI_OFF_VERSION = 0x44,
	VDI_OFF_HDR_SIZE = 0x48,
	VDI_OFF_TYPE = 0x4c,
	VDI_OFF_FLAGS = 0x50,
	VDI_OFF_COMMENT = 0x54,
	VDI_OFF_BMAP = 0x154,
	VDI_OFF_DATA = 0x158,
	VDI_OFF_CYLINDERS = 0x15c,
	VDI_OFF_HEADS = 0x160,
	VDI_OFF_SECTORS = 0x164,
	VDI_OFF_SECTOR_SIZE = 0x168,
	VDI_OFF_DISK_SIZE = 0x170,
	VDI_OFF_BLOCK_SIZE = 0x178,
	VDI_OFF_BLOCK_EXTRA = 0x17c,
	VDI_OFF_BLOCKS = 0x180,
	VDI_OFF_ALLOCATED = 0x184,
	VDI_OFF_UUID_CREATE = 0x188,
	VDI_OFF_UUID_MODIFY = 0x198,
	VDI_OFF_UUID_LINK = 0x1a8,
	VDI_OFF_UUID_PARENT_MODIFY = 0x1b8,
	VDI_OFF_LCHS = 0x1c8,
};

#define VDI_PRE_HEADER_SIZE 0x48u
#define VDI_HEADER1_SIZE 0x180u	    /* VDIHEADER1 */
#define VDI_HEADER1PLUS_SIZE 0x190u /* VDIHEADER1PLUS: with the LCHS geometry */
#define VDI_COMMENT_SIZE 256u
#define VDI_SECTOR 512u
#define VDI_HEAD_MAX 4096u /* we keep the file's first page in memory */

enum { VDI_TYPE_NORMAL = 1, VDI_TYPE_FIXED = 2, VDI_TYPE_UNDO = 3, VDI_TYPE_DIFF = 4 };

#define VDI_BLOCK_FREE 0xffffffffu
#define VDI_BLOCK_ZERO 0xfffffffeu
#define VDI_IS_ALLOCATED(e) ((e) < VDI_BLOCK_ZERO)

#define VDI_BLOCK_SIZE_DEFAULT (1u << 20)
#define VDI_BLOCK_SIZE_MIN 512u
#define VDI_BLOCK_SIZE_MAX (256u << 20)
/* A sanity bound on the block map (256 MiB of entries in memory, as much again for the reverse
 * map): 64 TiB with 1 MiB blocks. */
#define VDI_BLOCKS_MAX (1u << 26)

/* The parent's name is kept in szComment behind this prefix ("minivmm-backing:FMT:NAME"): a field
 * VirtualBox stores but never interprets. Differencing images VirtualBox wrote carry no name; their
 * parent is found by its create UUID among the *.vdi files beside the image and one directory up
 * (VirtualBox keeps snapshots in a Snapshots/ folder under the base image's folder). */
#define VDI_BACKING_PREFIX "minivmm-backing:"

struct vdi_state {
	/* Readers and writers of data hold it shared; moving a data block (discard, compaction,
	 * growing the map) holds it exclusive, so no I/O runs on a block while it moves. */
	pthread_rwlock_t io_lock;
	/* Serialises allocation and every metadata write (header, map). */
	pthread_mutex_t meta_lock;

	uint8_t head[VDI_HEAD_MAX]; /* the file's bytes [0, head_len): header and what follows */
	uint32_t head_len;
	uint32_t header_end; /* 0x48 + cbHeader */

	uint32_t type;
	uint32_t block_size;
	uint32_t block_extra;
	uint32_t blocks; /* cBlocks */
	uint64_t offset_bmap;
	uint64_t offset_data;
	uint64_t disk_size;

	uint32_t *bmap;	       /* cBlocks entries, host order; read with atomic loads */
	uint32_t *owner;       /* data index -> virtual block, VDI_BLOCK_FREE if none */
	uint32_t allocated;    /* entries in use; also the next data index (indices are dense) */
	uint64_t file_size;    /* under meta_lock */
	bool modify_uuid_done; /* uuidModify refreshed since open */
	bool tolerant;	       /* opened by check: bad entries are reported, not refused */
};

static inline uint64_t vdi_block_bytes(const struct vdi_state *s)
{
	return (uint64_t)s->block_size + s->block_extra;
}
/* Host offset of the data of data index idx. */
static inline uint64_t vdi_data_offset(const struct vdi_state *s, uint32_t idx)
{
	return s->offset_data + (uint64_t)idx * vdi_block_bytes(s) + s->block_extra;
}
static inline uint32_t vdi_entry(const struct vdi_state *s, uint32_t blk)
{
	return __atomic_load_n(&s->bmap[blk], __ATOMIC_ACQUIRE);
}
static inline void vdi_set_entry(struct vdi_state *s, uint32_t blk, uint32_t v)
{
	__atomic_store_n(&s->bmap[blk], v, __ATOMIC_RELEASE);
}

/* vdi_uuid.c: VDI stores RTUUIDs with the first three fields little-endian; the block layer and
 * users see the RFC 4122 byte order. */
void vdi_uuid_from_disk(uint8_t out[16], const uint8_t *disk);
void vdi_uuid_to_disk(uint8_t *disk, const uint8_t uuid[16]);
int vdi_uuid_generate(uint8_t *disk); /* a random (version 4) UUID, in disk order */
bool vdi_uuid_is_null(const uint8_t *disk);
void vdi_uuid_format(char out[37], const uint8_t *disk);

/* vdi_meta.c: metadata writes (callers hold meta_lock or io_lock exclusive). */
int vdi_write_header(struct block_device *bs);
int vdi_write_bmap(struct block_device *bs, uint32_t first, uint32_t count);
int vdi_commit_entry(struct block_device *bs, uint32_t blk);
int vdi_refresh_modify_uuid(struct block_device *bs);
int vdi_set_allocated(struct block_device *bs, uint32_t allocated);
int vdi_compact(struct block_device *bs);
int vdi_free_block(struct block_device *bs, uint32_t blk, uint32_t new_entry);
int vdi_copy_data(struct block_device *bs, uint32_t from, uint32_t to);

/* vdi_parent.c: finding and checking the parent of a differencing image. */
int vdi_parent_open_name(struct block_device *bs);
int vdi_parent_read_uuids(const char *path, uint8_t create[16], uint8_t modify[16]);
char *vdi_path_beside(const char *image, const char *name);

/* vdi_io.c */
int vdi_preadv(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt);
int vdi_pwritev(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt);
int vdi_flush(struct block_device *bs);
int vdi_discard(struct block_device *bs, uint64_t offset, uint64_t len);
int vdi_write_zeroes(struct block_device *bs, uint64_t offset, uint64_t len, int flags);
int vdi_block_status(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t *pnum,
		     int *status, uint64_t *map_offset);

/* vdi_create.c */
int vdi_create(const char *filename, const struct block_create_args *args);
/* Makes [start, end) of the file read as zeroes as p asks (falloc, full) and sets its size to end.
 */
int vdi_prealloc(struct host_file *f, uint64_t start, uint64_t end, enum block_prealloc p);

/* vdi_resize.c */
int vdi_truncate(struct block_device *bs, uint64_t new_size, enum block_prealloc prealloc,
		 bool shrink_allowed);

/* vdi_check.c */
int vdi_check(struct block_device *bs, struct block_check_result *res, int fix);
int vdi_info(struct block_device *bs, struct json_object *out);
int vdi_get_uuid(struct block_device *bs, uint8_t uuid[16]);
int vdi_set_uuid(struct block_device *bs, const uint8_t uuid[16]);
int vdi_set_backing(struct block_device *bs, const char *backing, const char *backing_fmt);

#endif
