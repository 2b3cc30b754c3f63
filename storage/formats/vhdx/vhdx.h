/* Microsoft VHDX images (format name "vhdx"): the driver's private interface, shared by
 * storage/vhdx*.c.
 *
 * On-disk layout (little-endian), from Microsoft's [MS-VHDX] specification:
 *   0      file type identifier ("vhdxfile")
 *   64K    header 1, 128K header 2 ("head", CRC-32C, sequence number: the valid one with the higher
 *          sequence number is current)
 *   192K   region table 1, 256K region table 2 ("regi", CRC-32C): where the BAT and the metadata
 *          region are
 *   1M..   the log (its offset and length in the header), the BAT, the metadata region (file
 *          parameters, virtual disk size, sector sizes, page 83 data), payload blocks; every one
 *          of them 1 MiB aligned.
 * The BAT holds 64-bit entries: state in bits 0-2, file offset in MiB in bits 20-63; one sector
 * bitmap entry follows every `chunk_ratio` payload entries.
 */
#ifndef MINIVMM_STORAGE_VHDX_H
#define MINIVMM_STORAGE_VHDX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "storage/core/block.h"

#define VHDX_MIB (1ull << 20)
#define VHDX_HEADER_SIZE 4096u
#define VHDX_HEADER1 (64u << 10)
#define VHDX_HEADER2 (128u << 10)
#define VHDX_REGION1 (192u << 10)
#define VHDX_REGION2 (256u << 10)
#define VHDX_REGION_SIZE (64u << 10)
#define VHDX_META_TABLE_SIZE (64u << 10)
#define VHDX_MAX_ENTRIES 2047u
#define VHDX_BLOCK_MIN (1u << 20)
#define VHDX_BLOCK_MAX (256u << 20)
#define VHDX_MAX_SIZE (64ull << 40) /* 64 TiB, the specification's limit */
#define VHDX_LOG_MAX (1ull << 30)   /* larger logs are refused as absurd */
#define VHDX_LOG_SECTOR 4096u

/* BAT entry states. */
enum {
	VHDX_BAT_NOT_PRESENT = 0,
	VHDX_BAT_UNDEFINED = 1,
	VHDX_BAT_ZERO = 2,
	VHDX_BAT_UNMAPPED = 3,
	VHDX_BAT_FULLY_PRESENT = 6,
	VHDX_BAT_PARTIALLY_PRESENT = 7,
};
#define VHDX_BAT_STATE(e) ((unsigned)((e)&7))
#define VHDX_BAT_OFFSET(e) ((e) & ~(VHDX_MIB - 1))

/* Header field offsets. */
enum {
	VHDX_H_SIG = 0,
	VHDX_H_CRC = 4,
	VHDX_H_SEQ = 8,
	VHDX_H_FILE_GUID = 16,
	VHDX_H_DATA_GUID = 32,
	VHDX_H_LOG_GUID = 48,
	VHDX_H_LOG_VERSION = 64,
	VHDX_H_VERSION = 66,
	VHDX_H_LOG_LENGTH = 68,
	VHDX_H_LOG_OFFSET = 72,
};

/* GUIDs as stored on disk (first three fields little-endian). */
extern const uint8_t vhdx_guid_bat[16], vhdx_guid_metadata[16];
extern const uint8_t vhdx_guid_file_params[16], vhdx_guid_disk_size[16], vhdx_guid_page83[16];
extern const uint8_t vhdx_guid_logical_sector[16], vhdx_guid_physical_sector[16];
extern const uint8_t vhdx_guid_parent_locator[16];

struct vhdx_state {
	uint8_t header[VHDX_HEADER_SIZE]; /* the current header, as on disk */
	int header_slot;		  /* 0 or 1: where the current header is */
	uint64_t log_offset, log_length;
	uint64_t log_seq; /* sequence number of the last log entry written */
	uint64_t bat_offset, bat_length;
	uint64_t meta_offset, meta_length;
	uint32_t block_size;
	uint32_t logical_sector, physical_sector;
	uint8_t page83[16];
	uint64_t size_item; /* file offset of the virtual disk size item */
	uint64_t chunk_ratio;
	uint64_t payload_blocks, bat_entries;
	uint64_t *bat;	      /* host order; read without the lock, set under it */
	uint64_t file_end;    /* 1 MiB aligned: the next block goes here */
	bool session_open;    /* the GUIDs were renewed and the log GUID set for this session */
	pthread_mutex_t lock; /* allocation and header updates */
};

uint32_t vhdx_crc32c(const void *buf, size_t len);
/* CRC-32C of buf with the 4-byte field at crc_off counted as zero. */
uint32_t vhdx_checksum(const uint8_t *buf, size_t len, size_t crc_off);
int vhdx_guid_random(uint8_t guid[16]);
bool vhdx_guid_is_zero(const uint8_t guid[16]);

/* The BAT index of payload block `block`: one sector-bitmap entry follows every chunk_ratio. */
static inline uint64_t vhdx_bat_index(const struct vhdx_state *s, uint64_t block)
{
	return block + block / s->chunk_ratio;
}

/* Headers: read both and pick the current one; write a new one (sequence + 1) in the other slot,
 * flushed; done twice so that both slots hold it. */
int vhdx_headers_read(struct block_device *bs, struct vhdx_state *s, uint64_t fsize);
int vhdx_header_update(struct block_device *bs, struct vhdx_state *s);
/* Region table and metadata: fill the BAT/metadata location and the disk parameters. */
int vhdx_regions_read(struct block_device *bs, struct vhdx_state *s, uint64_t fsize);
int vhdx_metadata_read(struct block_device *bs, struct vhdx_state *s);

/* The log: replay a dirty log (read-write opens only), and write one 4 KiB sector through it. */
int vhdx_log_replay(struct block_device *bs, struct vhdx_state *s, uint64_t fsize);
int vhdx_log_write_sector(struct block_device *bs, struct vhdx_state *s, uint64_t file_offset,
			  const uint8_t data[VHDX_LOG_SECTOR]);
/* The one-sector entry vhdx_log_write_sector writes (exposed for the tests). */
#define VHDX_LOG_ENTRY_SIZE (2 * VHDX_LOG_SECTOR)
void vhdx_log_entry_build(uint8_t e[VHDX_LOG_ENTRY_SIZE], const uint8_t log_guid[16], uint64_t seq,
			  uint64_t file_size, uint64_t file_offset,
			  const uint8_t data[VHDX_LOG_SECTOR]);
/* Called before the first write of a session: renew the write GUIDs, set the log GUID. */
int vhdx_session_begin(struct block_device *bs, struct vhdx_state *s);

int vhdx_preadv(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt);
int vhdx_pwritev(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt);
int vhdx_create(const char *filename, const struct block_create_args *args);
int vhdx_check(struct block_device *bs, struct block_check_result *res, int fix);
int vhdx_truncate(struct block_device *bs, uint64_t new_size, enum block_prealloc prealloc,
		  bool shrink_allowed);

#endif
