/* Microsoft VHD images (format name "vpc"): the driver's private interface, shared by
 * storage/vhd*.c.
 *
 * On-disk layout (all fields big-endian), from Microsoft's "Virtual Hard Disk Image Format
 * Specification" 1.0:
 *   fixed:    the disk's bytes, then a 512-byte footer (cookie "conectix")
 *   dynamic:  footer copy at 0, dynamic header (cookie "cxsparse", 1024 bytes) at the footer's data
 *             offset, the BAT (one 32-bit sector number per block, 0xffffffff = unallocated), the
 *             blocks (a sector bitmap rounded up to 512 bytes, then block_size bytes of data), and
 *             the footer again in the last 512 bytes of the file.
 * Both structures carry a one's-complement checksum of their bytes with the checksum field zeroed.
 */
#ifndef MINIVMM_STORAGE_VHD_H
#define MINIVMM_STORAGE_VHD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "storage/core/block.h"

#define VHD_SECTOR 512u
#define VHD_FOOTER_SIZE 512u
#define VHD_DYN_HEADER_SIZE 1024u
#define VHD_COOKIE "conectix"
#define VHD_DYN_COOKIE "cxsparse"
#define VHD_BAT_FREE 0xffffffffu
#define VHD_NO_OFFSET 0xffffffffffffffffull

enum { VHD_TYPE_FIXED = 2, VHD_TYPE_DYNAMIC = 3, VHD_TYPE_DIFF = 4 };

/* Footer field offsets. */
enum {
	VHD_F_COOKIE = 0,
	VHD_F_FEATURES = 8,
	VHD_F_VERSION = 12,
	VHD_F_DATA_OFFSET = 16,
	VHD_F_TIMESTAMP = 24,
	VHD_F_CREATOR_APP = 28,
	VHD_F_CREATOR_VER = 32,
	VHD_F_CREATOR_OS = 36,
	VHD_F_ORIG_SIZE = 40,
	VHD_F_CUR_SIZE = 48,
	VHD_F_CYLS = 56,
	VHD_F_HEADS = 58,
	VHD_F_SECS = 59,
	VHD_F_TYPE = 60,
	VHD_F_CHECKSUM = 64,
	VHD_F_UUID = 68,
	VHD_F_SAVED = 84,
};

/* Dynamic header field offsets. */
enum {
	VHD_D_COOKIE = 0,
	VHD_D_DATA_OFFSET = 8,
	VHD_D_TABLE_OFFSET = 16,
	VHD_D_VERSION = 24,
	VHD_D_MAX_ENTRIES = 28,
	VHD_D_BLOCK_SIZE = 32,
	VHD_D_CHECKSUM = 36,
	VHD_D_PARENT_UUID = 40,
	VHD_D_PARENT_TIME = 56,
	VHD_D_PARENT_NAME = 64,
	VHD_D_LOCATORS = 576,
};

/* 65535 cylinders x 16 heads x 255 sectors: the largest CHS geometry a footer can hold. */
#define VHD_MAX_GEOMETRY (65535ull * 16 * 255)
/* 2040 GiB, the largest disk the format's tools create. */
#define VHD_MAX_SECTORS 0xff000000ull
#define VHD_BLOCK_SIZE_DEFAULT (2u << 20)
#define VHD_BLOCK_SIZE_MAX (256u << 20)
/* Bound on the BAT held in memory (64 MiB): 32 TiB with 2 MiB blocks, far past the 2040 GiB limit.
 */
#define VHD_MAX_ENTRIES (1u << 24)
/* Seconds between the Unix epoch and the VHD epoch (2000-01-01 00:00:00 UTC). */
#define VHD_EPOCH 946684800u

struct vhd_state {
	uint8_t footer[VHD_FOOTER_SIZE]; /* as on disk, checksum valid */
	uint32_t type;
	/* dynamic images */
	uint64_t header_offset;
	uint64_t bat_offset;
	uint32_t max_entries;
	uint32_t block_size;
	uint32_t bitmap_size; /* bytes before each block's data, a multiple of 512 */
	uint32_t *bat;	      /* host order; read without the lock, set under it */
	bool diff;	      /* differencing: sector bitmaps say which sectors are here */
	uint8_t *full;	      /* diff: 1 when the block's bitmap is known to be all ones */
	uint64_t footer_pos;  /* where the trailing footer sits: the next block goes there */
	pthread_mutex_t lock; /* allocation */
};

uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t skip_off);
/* The CHS geometry the specification derives from a sector count (appendix "CHS Calculation"). */
void vhd_geometry(uint64_t sectors, uint16_t *cyls, uint8_t *heads, uint8_t *secs);
/* Fill a footer (checksum included). */
void vhd_footer_fill(uint8_t *f, uint32_t type, uint64_t size, uint64_t data_offset,
		     const uint8_t uuid[16], const char creator[4]);
void vhd_footer_set_checksum(uint8_t *f);

int vhd_preadv(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt);
int vhd_pwritev(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt);
int vhd_block_status(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t *pnum,
		     int *status, uint64_t *map_offset);
int vhd_create(const char *filename, const struct block_create_args *args);
int vhd_parent_open(struct block_device *bs, const uint8_t *hdr, uint64_t fsize);
int vhd_parent_fill(const char *filename, uint8_t *hdr, const char *backing, uint64_t loc_off,
		    uint8_t *loc_data);
int vhd_set_backing(struct block_device *bs, const char *backing, const char *backing_fmt);

#endif
