/* Creating VHDX images (`img create -f vhdx`).
 *
 * Options: subformat=dynamic|fixed (dynamic by default), block_size (1M..256M, a power of two; by
 * default QEMU's choice from the disk size), log_size (a multiple of 1M, 1M by default).
 * Layout: the header section (identifier, two headers, two region tables) in the first MiB, then
 * the log, the metadata region (1 MiB), the BAT, and for a fixed disk every block in order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/endian.h"
#include "storage/formats/vhdx/vhdx.h"

/* A size option within [min, max]: a power of two, or a multiple of 1M. */
static int vhdx_size_opt(struct block_opts *opts, const char *filename, const char *key,
			 uint64_t min, uint64_t max, bool pow2, uint64_t *out)
{
	uint64_t v;
	int ret;

	if (!block_opts_get(opts, key))
		return 0;
	ret = block_opts_get_size(opts, filename, key, &v);
	if (ret < 0)
		return ret;
	if (v < min || v > max || (pow2 && (v & (v - 1))) || (!pow2 && v % VHDX_MIB))
		return error_set(-EINVAL, "%s: %s %llu must be %s from %lluM to %lluM", filename,
				 key, (unsigned long long)v,
				 pow2 ? "a power of two" : "a multiple of 1M",
				 (unsigned long long)(min >> 20), (unsigned long long)(max >> 20));
	*out = v;
	return 0;
}

static void vhdx_meta_entry(uint8_t *table, int i, const uint8_t *guid, uint32_t off, uint32_t len,
			    uint32_t flags)
{
	uint8_t *e = table + 32 + 32 * i;
	memcpy(e, guid, 16);
	put_le32(e + 16, off);
	put_le32(e + 20, len);
	put_le32(e + 24, flags);
}

/* The header section: identifier, headers (sequence 1 and 2), region tables. */
static int vhdx_write_header_section(struct host_file *f, uint64_t log_size, uint64_t meta_off,
				     uint64_t bat_off, uint64_t bat_len)
{
	uint8_t *buf = calloc(1, VHDX_REGION2 + VHDX_REGION_SIZE);
	int ret;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, "vhdxfile", 8);
	const char *creator = "minivmm";
	for (size_t i = 0; creator[i]; i++)
		buf[8 + 2 * i] = (uint8_t)creator[i]; /* UTF-16LE */
	uint8_t *h = buf + VHDX_HEADER1;
	memcpy(h, "head", 4);
	ret =
	    vhdx_guid_random(h + VHDX_H_FILE_GUID) ? -EIO : vhdx_guid_random(h + VHDX_H_DATA_GUID);
	put_le16(h + VHDX_H_LOG_VERSION, 0);
	put_le16(h + VHDX_H_VERSION, 1);
	put_le32(h + VHDX_H_LOG_LENGTH, (uint32_t)log_size);
	put_le64(h + VHDX_H_LOG_OFFSET, VHDX_MIB);
	memcpy(buf + VHDX_HEADER2, h, VHDX_HEADER_SIZE);
	for (int i = 0; i < 2; i++) {
		uint8_t *hh = buf + (i ? VHDX_HEADER2 : VHDX_HEADER1);
		put_le64(hh + VHDX_H_SEQ, i + 1);
		put_le32(hh + VHDX_H_CRC, vhdx_crc32c(hh, VHDX_HEADER_SIZE));
	}
	uint8_t *r = buf + VHDX_REGION1;
	memcpy(r, "regi", 4);
	put_le32(r + 8, 2);
	memcpy(r + 16, vhdx_guid_bat, 16);
	put_le64(r + 32, bat_off);
	put_le32(r + 40, (uint32_t)bat_len);
	put_le32(r + 44, 1);
	memcpy(r + 48, vhdx_guid_metadata, 16);
	put_le64(r + 64, meta_off);
	put_le32(r + 72, (uint32_t)VHDX_MIB);
	put_le32(r + 76, 1);
	put_le32(r + 4, vhdx_crc32c(r, VHDX_REGION_SIZE));
	memcpy(buf + VHDX_REGION2, r, VHDX_REGION_SIZE);
	if (ret == 0)
		ret = host_file_pwrite(f, 0, buf, VHDX_REGION2 + VHDX_REGION_SIZE);
	free(buf);
	return ret;
}

static int vhdx_write_metadata(struct host_file *f, uint64_t meta_off, uint64_t size,
			       uint32_t block_size, bool fixed)
{
	uint8_t *m = calloc(1, VHDX_META_TABLE_SIZE + 64);
	uint8_t *items = m + VHDX_META_TABLE_SIZE;
	int ret;

	if (!m)
		return -ENOMEM;
	memcpy(m, "metadata", 8);
	put_le16(m + 10, 5);
	const uint32_t base = VHDX_META_TABLE_SIZE, req = 4, vd = 2;
	vhdx_meta_entry(m, 0, vhdx_guid_file_params, base + 0, 8, req);
	vhdx_meta_entry(m, 1, vhdx_guid_disk_size, base + 8, 8, req | vd);
	vhdx_meta_entry(m, 2, vhdx_guid_page83, base + 16, 16, req | vd);
	vhdx_meta_entry(m, 3, vhdx_guid_logical_sector, base + 32, 4, req | vd);
	vhdx_meta_entry(m, 4, vhdx_guid_physical_sector, base + 36, 4, req | vd);
	put_le32(items + 0, block_size);
	put_le32(items + 4, fixed ? 1 : 0); /* LeaveBlocksAllocated */
	put_le64(items + 8, size);
	ret = vhdx_guid_random(items + 16);
	put_le32(items + 32, 512);
	put_le32(items + 36, 4096);
	if (ret == 0)
		ret = host_file_pwrite(f, meta_off, m, VHDX_META_TABLE_SIZE + 64);
	free(m);
	return ret;
}

static uint32_t vhdx_default_block(uint64_t size)
{
	if (size > (32ull << 40))
		return 64u << 20;
	if (size > (100ull << 30))
		return 32u << 20;
	if (size > (1ull << 30))
		return 16u << 20;
	return 8u << 20;
}

int vhdx_create(const char *filename, const struct block_create_args *args)
{
	const char *sub = block_opts_get(args->opts, "subformat");
	uint64_t block = 0, log_size = VHDX_MIB;
	bool fixed = false;
	struct host_file f;
	int ret;

	ret = vhdx_size_opt(args->opts, filename, "block_size", VHDX_BLOCK_MIN, VHDX_BLOCK_MAX,
			    true, &block);
	if (ret == 0)
		ret = vhdx_size_opt(args->opts, filename, "log_size", VHDX_MIB, VHDX_LOG_MAX, false,
				    &log_size);
	if (ret < 0)
		return ret;
	if (sub && !strcmp(sub, "fixed"))
		fixed = true;
	else if (sub && strcmp(sub, "dynamic"))
		return error_set(-EINVAL, "%s: unknown VHDX subformat '%s' (dynamic or fixed)",
				 filename, sub);
	if (args->backing)
		return error_set(-ENOTSUP, "%s: differencing VHDX images cannot be created",
				 filename);
	uint64_t size = (args->size + 511) / 512 * 512;
	if (size > VHDX_MAX_SIZE)
		return error_set(-EFBIG, "%s: size %llu bytes exceeds the VHDX maximum of 64 TiB",
				 filename, (unsigned long long)args->size);
	if (!block)
		block = vhdx_default_block(size);
	uint64_t chunk = (1ull << 23) * 512 / block;
	uint64_t blocks = (size + block - 1) / block;
	uint64_t entries = blocks ? blocks + (blocks - 1) / chunk : 0;
	uint64_t meta_off = VHDX_MIB + log_size, bat_off = meta_off + VHDX_MIB;
	uint64_t bat_len = (entries * 8 + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB;
	if (!bat_len)
		bat_len = VHDX_MIB;
	uint64_t data_off = bat_off + bat_len;

	ret = host_file_open(&f, filename, HOST_FILE_CREATE | HOST_FILE_RDWR);
	if (ret < 0)
		return error_set(ret, "%s: cannot create: %s", filename, strerror(-ret));
	ret = host_file_truncate(&f, data_off + (fixed ? blocks * block : 0));
	if (ret == 0)
		ret = vhdx_write_header_section(&f, log_size, meta_off, bat_off, bat_len);
	if (ret == 0)
		ret = vhdx_write_metadata(&f, meta_off, size, (uint32_t)block, fixed);
	if (ret == 0 && fixed) {
		uint8_t *bat = calloc(1, entries * 8 + 8);
		if (!bat)
			ret = -ENOMEM;
		for (uint64_t b = 0; bat && b < blocks; b++)
			put_le64(bat + (b + b / chunk) * 8,
				 (data_off + b * block) | VHDX_BAT_FULLY_PRESENT);
		if (bat)
			ret = host_file_pwrite(&f, bat_off, bat, entries * 8);
		free(bat);
	}
	if (ret == 0)
		ret = host_file_flush(&f);
	host_file_close(&f);
	if (ret < 0) {
		unlink(filename);
		return error_set(ret, "%s: cannot write the VHDX metadata: %s", filename,
				 strerror(-ret));
	}
	return 0;
}
