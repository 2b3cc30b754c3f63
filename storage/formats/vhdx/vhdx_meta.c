/* VHDX metadata: CRC-32C, GUIDs, the two headers, the region table and the metadata region. */
#include <errno.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/vhdx/vhdx.h"
#include "lib/uuid.h"

const uint8_t vhdx_guid_bat[16] = {0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42,
				   0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08};
const uint8_t vhdx_guid_metadata[16] = {0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b,
					0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e};
const uint8_t vhdx_guid_file_params[16] = {0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d,
					   0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b};
const uint8_t vhdx_guid_disk_size[16] = {0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76, 0x48,
					 0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8};
const uint8_t vhdx_guid_page83[16] = {0xab, 0x12, 0xca, 0xbe, 0xe6, 0xb2, 0x23, 0x45,
				      0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46};
const uint8_t vhdx_guid_logical_sector[16] = {0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09, 0x47,
					      0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f};
const uint8_t vhdx_guid_physical_sector[16] = {0xc7, 0x48, 0xa3, 0xcd, 0x5d, 0x44, 0x71, 0x44,
					       0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56};
const uint8_t vhdx_guid_parent_locator[16] = {0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45,
					      0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c};

static uint32_t vhdx_crc_table[256];

static void __attribute__((constructor)) vhdx_crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1; /* Castagnoli, reflected */
		vhdx_crc_table[i] = c;
	}
}

static uint32_t vhdx_crc_update(uint32_t crc, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		crc = vhdx_crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return crc;
}

uint32_t vhdx_crc32c(const void *buf, size_t len)
{
	return ~vhdx_crc_update(~0u, buf, len);
}

uint32_t vhdx_checksum(const uint8_t *buf, size_t len, size_t crc_off)
{
	static const uint8_t zero[4];
	uint32_t crc = vhdx_crc_update(~0u, buf, crc_off);

	crc = vhdx_crc_update(crc, zero, 4);
	return ~vhdx_crc_update(crc, buf + crc_off + 4, len - crc_off - 4);
}

int vhdx_guid_random(uint8_t guid[16])
{
	if (random_fill(guid, 16) < 0)
		return -EIO;
	guid[7] = (guid[7] & 0x0f) | 0x40; /* version 4, in the little-endian third field */
	guid[8] = (guid[8] & 0x3f) | 0x80;
	return 0;
}

bool vhdx_guid_is_zero(const uint8_t guid[16])
{
	static const uint8_t zero[16];
	return memcmp(guid, zero, 16) == 0;
}

static const char *vhdx_header_problem(const uint8_t *h)
{
	if (memcmp(h + VHDX_H_SIG, "head", 4))
		return "no signature 'head'";
	if (get_le32(h + VHDX_H_CRC) != vhdx_checksum(h, VHDX_HEADER_SIZE, VHDX_H_CRC))
		return "checksum mismatch";
	if (get_le16(h + VHDX_H_VERSION) != 1)
		return "version is not 1";
	if (get_le16(h + VHDX_H_LOG_VERSION) != 0)
		return "log version is not 0";
	return NULL;
}

int vhdx_headers_read(struct block_device *bs, struct vhdx_state *s, uint64_t fsize)
{
	uint8_t h[2][VHDX_HEADER_SIZE];
	const char *why[2];
	int ret;

	ret = host_file_pread(&bs->file, VHDX_HEADER1, h[0], VHDX_HEADER_SIZE);
	if (ret == 0)
		ret = host_file_pread(&bs->file, VHDX_HEADER2, h[1], VHDX_HEADER_SIZE);
	if (ret < 0)
		return error_set(ret, "%s: cannot read the VHDX headers: %s", bs->filename,
				 strerror(-ret));
	why[0] = vhdx_header_problem(h[0]);
	why[1] = vhdx_header_problem(h[1]);
	if (why[0] && why[1])
		return error_set(-EINVAL, "%s: no valid VHDX header (header 1: %s; header 2: %s)",
				 bs->filename, why[0], why[1]);
	int cur = why[0]   ? 1
		  : why[1] ? 0
			   : get_le64(h[1] + VHDX_H_SEQ) > get_le64(h[0] + VHDX_H_SEQ);
	memcpy(s->header, h[cur], VHDX_HEADER_SIZE);
	s->header_slot = cur;
	s->log_offset = get_le64(s->header + VHDX_H_LOG_OFFSET);
	s->log_length = get_le32(s->header + VHDX_H_LOG_LENGTH);
	if (s->log_offset < VHDX_MIB || s->log_offset % VHDX_MIB || s->log_length % VHDX_MIB ||
	    s->log_length == 0 || s->log_length > VHDX_LOG_MAX || s->log_offset > fsize ||
	    fsize - s->log_offset < s->log_length)
		return error_set(-EINVAL,
				 "%s: VHDX log (%llu bytes at offset %llu) misplaced or outside "
				 "the file",
				 bs->filename, (unsigned long long)s->log_length,
				 (unsigned long long)s->log_offset);
	return 0;
}

int vhdx_header_update(struct block_device *bs, struct vhdx_state *s)
{
	for (int i = 0; i < 2; i++) {
		int slot = !s->header_slot;
		put_le64(s->header + VHDX_H_SEQ, get_le64(s->header + VHDX_H_SEQ) + 1);
		put_le32(s->header + VHDX_H_CRC, 0);
		put_le32(s->header + VHDX_H_CRC, vhdx_crc32c(s->header, VHDX_HEADER_SIZE));
		int ret = host_file_pwrite(&bs->file, slot ? VHDX_HEADER2 : VHDX_HEADER1, s->header,
					   VHDX_HEADER_SIZE);
		if (ret == 0)
			ret = host_file_flush(&bs->file);
		if (ret < 0)
			return error_set(ret, "%s: cannot write the VHDX header: %s", bs->filename,
					 strerror(-ret));
		s->header_slot = slot;
	}
	return 0;
}

static bool vhdx_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int vhdx_region_table(struct block_device *bs, struct vhdx_state *s, const uint8_t *t,
			     uint64_t fsize)
{
	uint32_t n = get_le32(t + 8);
	bool have_bat = false, have_meta = false;

	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = t + 16 + 32 * i;
		uint64_t off = get_le64(e + 16), len = get_le32(e + 24);
		bool required = get_le32(e + 28) & 1;
		bool is_bat = !memcmp(e, vhdx_guid_bat, 16),
		     is_meta = !memcmp(e, vhdx_guid_metadata, 16);
		if (!is_bat && !is_meta) {
			if (required)
				return error_set(-ENOTSUP, "%s: unknown required VHDX region %u",
						 bs->filename, i);
			continue;
		}
		if ((is_bat && have_bat) || (is_meta && have_meta))
			return error_set(-EINVAL, "%s: VHDX region table lists the %s twice",
					 bs->filename, is_bat ? "BAT" : "metadata");
		if (off < VHDX_MIB || off % VHDX_MIB || len == 0 || len % VHDX_MIB || off > fsize ||
		    fsize - off < len)
			return error_set(-EINVAL,
					 "%s: VHDX %s region (%llu bytes at offset %llu) "
					 "misplaced or outside the file",
					 bs->filename, is_bat ? "BAT" : "metadata",
					 (unsigned long long)len, (unsigned long long)off);
		if (vhdx_overlap(off, len, s->log_offset, s->log_length))
			return error_set(-EINVAL, "%s: VHDX %s region overlaps the log",
					 bs->filename, is_bat ? "BAT" : "metadata");
		if (is_bat) {
			s->bat_offset = off;
			s->bat_length = len;
			have_bat = true;
		} else {
			s->meta_offset = off;
			s->meta_length = len;
			have_meta = true;
		}
	}
	if (!have_bat || !have_meta)
		return error_set(-EINVAL, "%s: VHDX region table has no %s region", bs->filename,
				 have_bat ? "metadata" : "BAT");
	if (vhdx_overlap(s->bat_offset, s->bat_length, s->meta_offset, s->meta_length))
		return error_set(-EINVAL, "%s: VHDX BAT and metadata regions overlap",
				 bs->filename);
	return 0;
}

int vhdx_regions_read(struct block_device *bs, struct vhdx_state *s, uint64_t fsize)
{
	uint8_t t[VHDX_REGION_SIZE];
	const char *why = NULL;

	for (int i = 0; i < 2; i++) {
		int ret = host_file_pread(&bs->file, i ? VHDX_REGION2 : VHDX_REGION1, t, sizeof(t));
		if (ret < 0)
			return error_set(ret, "%s: cannot read the VHDX region table: %s",
					 bs->filename, strerror(-ret));
		if (memcmp(t, "regi", 4))
			why = "no signature 'regi'";
		else if (get_le32(t + 4) != vhdx_checksum(t, sizeof(t), 4))
			why = "checksum mismatch";
		else if (get_le32(t + 8) > VHDX_MAX_ENTRIES)
			why = "too many entries";
		else
			return vhdx_region_table(bs, s, t, fsize);
	}
	return error_set(-EINVAL, "%s: no valid VHDX region table (%s)", bs->filename, why);
}

/* Read the metadata item `guid` of exactly `len` bytes into out; -ENOENT when absent. */
static int vhdx_meta_item(struct block_device *bs, struct vhdx_state *s, const uint8_t *table,
			  const uint8_t *guid, const char *name, void *out, uint32_t len)
{
	uint16_t n = get_le16(table + 10);

	for (uint16_t i = 0; i < n; i++) {
		const uint8_t *e = table + 32 + 32 * i;
		if (memcmp(e, guid, 16))
			continue;
		uint32_t off = get_le32(e + 16), ilen = get_le32(e + 20);
		if (ilen < len || off < VHDX_META_TABLE_SIZE || off > s->meta_length ||
		    s->meta_length - off < ilen)
			return error_set(-EINVAL,
					 "%s: VHDX metadata item '%s' (%u bytes at %u) invalid",
					 bs->filename, name, ilen, off);
		if (guid == vhdx_guid_disk_size)
			s->size_item = s->meta_offset + off;
		int ret = host_file_pread(&bs->file, s->meta_offset + off, out, len);
		return ret < 0 ? error_set(ret, "%s: cannot read VHDX metadata: %s", bs->filename,
					   strerror(-ret))
			       : 0;
	}
	return -ENOENT;
}

int vhdx_metadata_read(struct block_device *bs, struct vhdx_state *s)
{
	uint8_t t[VHDX_META_TABLE_SIZE], fp[8], sz[8], ls[4], ps[4];
	int ret;

	ret = host_file_pread(&bs->file, s->meta_offset, t, sizeof(t));
	if (ret < 0)
		return error_set(ret, "%s: cannot read the VHDX metadata table: %s", bs->filename,
				 strerror(-ret));
	if (memcmp(t, "metadata", 8) || get_le16(t + 10) > VHDX_MAX_ENTRIES)
		return error_set(-EINVAL, "%s: invalid VHDX metadata table", bs->filename);
	for (uint16_t i = 0; i < get_le16(t + 10); i++) {
		const uint8_t *e = t + 32 + 32 * i;
		bool known =
		    !memcmp(e, vhdx_guid_file_params, 16) || !memcmp(e, vhdx_guid_disk_size, 16) ||
		    !memcmp(e, vhdx_guid_page83, 16) || !memcmp(e, vhdx_guid_logical_sector, 16) ||
		    !memcmp(e, vhdx_guid_physical_sector, 16) ||
		    !memcmp(e, vhdx_guid_parent_locator, 16);
		if (!known && (get_le32(e + 24) & 4))
			return error_set(-ENOTSUP, "%s: unknown required VHDX metadata item %u",
					 bs->filename, i);
	}
	struct {
		const uint8_t *guid;
		const char *name;
		void *out;
		uint32_t len;
	} items[] = {
	    {vhdx_guid_file_params, "file parameters", fp, 8},
	    {vhdx_guid_disk_size, "virtual disk size", sz, 8},
	    {vhdx_guid_page83, "page 83 data", s->page83, 16},
	    {vhdx_guid_logical_sector, "logical sector size", ls, 4},
	    {vhdx_guid_physical_sector, "physical sector size", ps, 4},
	};
	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		ret = vhdx_meta_item(bs, s, t, items[i].guid, items[i].name, items[i].out,
				     items[i].len);
		if (ret == -ENOENT)
			return error_set(-EINVAL, "%s: VHDX metadata item '%s' missing",
					 bs->filename, items[i].name);
		if (ret < 0)
			return ret;
	}
	s->block_size = get_le32(fp);
	if (get_le32(fp + 4) & 2)
		return error_set(-ENOTSUP, "%s: differencing VHDX images are not supported",
				 bs->filename);
	if (s->block_size < VHDX_BLOCK_MIN || s->block_size > VHDX_BLOCK_MAX ||
	    (s->block_size & (s->block_size - 1)))
		return error_set(-EINVAL, "%s: invalid VHDX block size %u", bs->filename,
				 s->block_size);
	s->logical_sector = get_le32(ls);
	s->physical_sector = get_le32(ps);
	if ((s->logical_sector != 512 && s->logical_sector != 4096) ||
	    (s->physical_sector != 512 && s->physical_sector != 4096))
		return error_set(-EINVAL, "%s: invalid VHDX sector sizes %u/%u", bs->filename,
				 s->logical_sector, s->physical_sector);
	bs->size = get_le64(sz);
	if (bs->size > VHDX_MAX_SIZE || bs->size % s->logical_sector)
		return error_set(-EINVAL, "%s: invalid VHDX virtual disk size %llu", bs->filename,
				 (unsigned long long)bs->size);
	s->chunk_ratio = ((uint64_t)1 << 23) * s->logical_sector / s->block_size;
	s->payload_blocks = (bs->size + s->block_size - 1) / s->block_size;
	s->bat_entries =
	    s->payload_blocks ? s->payload_blocks + (s->payload_blocks - 1) / s->chunk_ratio : 0;
	if (s->bat_entries > s->bat_length / 8)
		return error_set(-EINVAL,
				 "%s: VHDX BAT region (%llu bytes) too small for %llu entries",
				 bs->filename, (unsigned long long)s->bat_length,
				 (unsigned long long)s->bat_entries);
	return 0;
}
