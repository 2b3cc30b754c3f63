/* Creating Parallels images (`img create -f parallels`), option cluster_size (1 MiB by default).
 * The layout is QEMU's: "WithouFreSpacExt" magic, BAT in cluster units, data from the first
 * cluster boundary after the BAT. */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/parallels.h"

static int prl_parse_cluster(const char *filename, const char *text, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (!text)
		return 0;
	v = strtoull(text, &end, 0);
	if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	else if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	if (end == text || *end || v < PRL_SECTOR || v > PRL_CLUSTER_MAX || (v & (v - 1)))
		return block_error(-EINVAL,
				   "%s: cluster_size '%s' must be a power of two from 512 to 256M",
				   filename, text);
	*out = (uint32_t)v;
	return 0;
}

int prl_create(const char *filename, const struct block_create_args *args)
{
	uint32_t cluster = PRL_CLUSTER_DEFAULT;
	uint8_t h[PRL_HEADER_SIZE] = {0};
	struct host_file f;
	int ret;

	ret = prl_parse_cluster(filename, block_opts_get(args->opts, "cluster_size"), &cluster);
	if (ret < 0)
		return ret;
	if (args->backing)
		return block_error(-ENOTSUP, "%s: Parallels images have no backing file", filename);
	uint64_t sectors = (args->size + PRL_SECTOR - 1) / PRL_SECTOR;
	uint64_t clusters = (args->size + cluster - 1) / cluster;
	if (clusters > PRL_MAX_ENTRIES)
		return block_error(-EFBIG, "%s: size %llu too large for %u-byte clusters", filename,
				   (unsigned long long)args->size, cluster);
	uint64_t data = (PRL_HEADER_SIZE + clusters * 4 + cluster - 1) / cluster * cluster;

	memcpy(h, PRL_MAGIC_EXT, 16);
	uint32_t v32[] = {2, 16, (uint32_t)(sectors / 16 / 32), cluster / PRL_SECTOR,
			  (uint32_t)clusters};
	for (int i = 0; i < 5; i++) {
		uint32_t le = htole32(v32[i]);
		memcpy(h + PRL_H_VERSION + 4 * i, &le, 4);
	}
	uint64_t le64 = htole64(sectors);
	memcpy(h + PRL_H_SECTORS, &le64, 8);
	uint32_t le = htole32((uint32_t)(data / PRL_SECTOR));
	memcpy(h + PRL_H_DATA_OFF, &le, 4);

	ret = host_file_open(&f, filename, HOST_FILE_CREATE | HOST_FILE_RDWR);
	if (ret < 0)
		return block_error(ret, "%s: cannot create: %s", filename, strerror(-ret));
	/* The BAT is all zeroes: growing the file provides it. */
	ret = host_file_truncate(&f, data);
	if (ret == 0)
		ret = host_file_pwrite(&f, 0, h, sizeof(h));
	if (ret == 0)
		ret = host_file_flush(&f);
	host_file_close(&f);
	if (ret < 0) {
		unlink(filename);
		return block_error(ret, "%s: cannot write the Parallels header: %s", filename,
				   strerror(-ret));
	}
	return 0;
}
