/* Creating Parallels images (`img create -f parallels`), option cluster_size (1 MiB by default).
 * The layout is QEMU's: "WithouFreSpacExt" magic, BAT in cluster units, data from the first
 * cluster boundary after the BAT. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/endian.h"
#include "storage/formats/parallels/parallels.h"

int prl_create(const char *filename, const struct block_create_args *args)
{
	uint64_t csize = PRL_CLUSTER_DEFAULT;
	uint8_t h[PRL_HEADER_SIZE] = {0};
	struct host_file f;
	int ret;

	ret = block_opts_get_size(args->opts, filename, "cluster_size", &csize);
	if (ret < 0)
		return ret;
	if (csize < PRL_SECTOR || csize > PRL_CLUSTER_MAX || (csize & (csize - 1)))
		return error_set(-EINVAL,
				 "%s: cluster_size %llu must be a power of two from 512 to 256M",
				 filename, (unsigned long long)csize);
	uint32_t cluster = (uint32_t)csize;
	if (args->backing)
		return error_set(-ENOTSUP, "%s: Parallels images have no backing file", filename);
	uint64_t sectors = (args->size + PRL_SECTOR - 1) / PRL_SECTOR;
	uint64_t clusters = (args->size + cluster - 1) / cluster;
	if (clusters > PRL_MAX_ENTRIES)
		return error_set(-EFBIG, "%s: size %llu too large for %u-byte clusters", filename,
				 (unsigned long long)args->size, cluster);
	uint64_t data = (PRL_HEADER_SIZE + clusters * 4 + cluster - 1) / cluster * cluster;

	memcpy(h, PRL_MAGIC_EXT, 16);
	uint32_t v32[] = {2, 16, (uint32_t)(sectors / 16 / 32), cluster / PRL_SECTOR,
			  (uint32_t)clusters};
	for (int i = 0; i < 5; i++)
		put_le32(h + PRL_H_VERSION + 4 * i, v32[i]);
	put_le64(h + PRL_H_SECTORS, sectors);
	put_le32(h + PRL_H_DATA_OFF, (uint32_t)(data / PRL_SECTOR));

	ret = host_file_open(&f, filename, HOST_FILE_CREATE | HOST_FILE_RDWR);
	if (ret < 0)
		return error_set(ret, "%s: cannot create: %s", filename, strerror(-ret));
	/* The BAT is all zeroes: growing the file provides it. */
	ret = host_file_truncate(&f, data);
	if (ret == 0)
		ret = host_file_pwrite(&f, 0, h, sizeof(h));
	if (ret == 0)
		ret = host_file_flush(&f);
	host_file_close(&f);
	if (ret < 0) {
		unlink(filename);
		return error_set(ret, "%s: cannot write the Parallels header: %s", filename,
				 strerror(-ret));
	}
	return 0;
}
