/* Parallels disk images (format name "parallels"): the driver's private interface.
 *
 * On-disk layout (little-endian), from QEMU's docs/interop/parallels.txt:
 *   a 64-byte header (magic "WithoutFreeSpace" or "WithouFreSpacExt", version 2, geometry, cluster
 *   size in sectors ("tracks"), BAT entry count, disk size in sectors, the in-use (dirty) flag,
 *   the data offset in sectors), the BAT right after it (one 32-bit entry per cluster, 0 = not
 *   allocated), then the clusters from the data offset on.  A BAT entry is a sector number with the
 *   old magic and a cluster number (units of "tracks" sectors) with the "Ext" magic.
 */
#ifndef MINIVMM_STORAGE_PARALLELS_H
#define MINIVMM_STORAGE_PARALLELS_H

#include <pthread.h>
#include <stdint.h>

#include "storage/core/block.h"

#define PRL_SECTOR 512u
#define PRL_HEADER_SIZE 64u
#define PRL_MAGIC "WithoutFreeSpace"
#define PRL_MAGIC_EXT "WithouFreSpacExt"
#define PRL_INUSE 0x746f6e59u /* "Ynot": the image is open for writing */
#define PRL_CLUSTER_DEFAULT (1u << 20)
#define PRL_CLUSTER_MAX (256u << 20)
/* Bound on the BAT held in memory (256 MiB of entries). */
#define PRL_MAX_ENTRIES (1u << 26)

enum {
	PRL_H_MAGIC = 0,
	PRL_H_VERSION = 16,
	PRL_H_HEADS = 20,
	PRL_H_CYLS = 24,
	PRL_H_TRACKS = 28,
	PRL_H_BAT_ENTRIES = 32,
	PRL_H_SECTORS = 36,
	PRL_H_INUSE = 44,
	PRL_H_DATA_OFF = 48,
	PRL_H_FLAGS = 52,
	PRL_H_EXT_OFF = 56,
};

struct prl_state {
	uint8_t header[PRL_HEADER_SIZE];
	uint32_t cluster_size;	 /* bytes */
	uint32_t off_multiplier; /* sectors per BAT unit */
	uint32_t bat_entries;
	uint32_t *bat;	      /* host order; read without the lock, set under it */
	uint64_t data_start;  /* bytes: where clusters may begin */
	uint64_t data_end;    /* bytes: the next cluster goes here */
	pthread_mutex_t lock; /* allocation */
};

int prl_preadv(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt);
int prl_pwritev(struct block_device *bs, uint64_t offset, const struct iovec *iov, int iovcnt);
int prl_block_status(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t *pnum,
		     int *status, uint64_t *map_offset);
int prl_create(const char *filename, const struct block_create_args *args);
int prl_check(struct block_device *bs, struct block_check_result *res, int fix);
int prl_truncate(struct block_device *bs, uint64_t new_size, enum block_prealloc prealloc,
		 bool shrink_allowed);
/* A bundle directory (.hdd): the path of the image in use (malloc'ed) and its format ("parallels"
 * or "raw"), from DiskDescriptor.xml. */
int prl_bundle_image(const char *dir, char **path, const char **fmt);

#endif
