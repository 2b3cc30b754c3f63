/* qcow2: header parse, validation against hostile values, and header rewrite.
 *
 * Every field is checked before use: geometry, table positions against the file size, overlap of
 * the fixed metadata areas, and incompatible features (refused by name from the image's own feature
 * name table). Unknown header extensions are kept verbatim and written back on rewrite.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/qcow2/qcow2.h"

int qcow2_probe(const uint8_t *head, size_t len, const char *filename)
{
	(void)filename;
	if (len >= 8 && get_be32(head) == QCOW2_MAGIC &&
	    (get_be32(head + 4) == 2 || get_be32(head + 4) == 3))
		return 100;
	return 0;
}

void qcow2_geometry(struct qcow2_state *s)
{
	s->cluster_size = 1ull << s->cluster_bits;
	s->l2_esize = s->extended_l2 ? 16 : 8;
	s->l2_bits = s->cluster_bits - (s->extended_l2 ? 4 : 3);
	s->refblock_bits = s->cluster_bits + 3 - s->refcount_order;
	s->refcount_max =
	    s->refcount_order == 6 ? UINT64_MAX : (1ull << (1u << s->refcount_order)) - 1;
	s->csize_shift = 62 - (s->cluster_bits - 8);
	s->csize_mask = (1ull << (s->cluster_bits - 8)) - 1;
	s->cluster_offset_mask = (1ull << s->csize_shift) - 1;
}

/* Name of an incompatible feature bit, from the image's feature name table when present. */
static void feature_name(const struct qcow2_state *s, int bit, char *out, size_t out_len)
{
	static const char *const known[] = {"dirty bit", "corrupt bit", "external data file",
					    "compression type", "extended L2 entries"};

	for (size_t i = 0; s->feature_table && i + 48 <= s->feature_table_len; i += 48) {
		const uint8_t *f = s->feature_table + i;
		if (f[0] == 0 && f[1] == bit) {
			snprintf(out, out_len, "%.46s", (const char *)f + 2);
			return;
		}
	}
	if (bit < (int)(sizeof(known) / sizeof(known[0])))
		snprintf(out, out_len, "%s", known[bit]);
	else
		snprintf(out, out_len, "unknown incompatible feature %d", bit);
}

static int check_unsupported_features(struct block_device *bs, struct qcow2_state *s)
{
	uint64_t bad = s->incompat & ~QCOW2_INCOMPAT_SUPPORTED;
	char names[512] = "";
	size_t used = 0;

	if (!bad)
		return 0;
	for (int bit = 0; bit < 64; bit++) {
		char name[64];
		if (!(bad & (1ull << bit)))
			continue;
		feature_name(s, bit, name, sizeof(name));
		used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
					 used ? ", " : "", name);
		if (used >= sizeof(names))
			break;
	}
	return error_set(-ENOTSUP, "%s: unsupported qcow2 feature(s): %s", bs->filename, names);
}

static int parse_extensions(struct block_device *bs, struct qcow2_state *s, const uint8_t *hdr,
			    size_t start, size_t end)
{
	size_t pos = start;

	while (pos + 8 <= end) {
		uint32_t type = get_be32(hdr + pos), len = get_be32(hdr + pos + 4);
		size_t padded = ((size_t)len + 7) & ~(size_t)7;
		const uint8_t *data = hdr + pos + 8;

		if (type == QCOW2_EXT_END)
			return 0;
		if (len > end - pos - 8 || padded > end - pos - 8)
			return error_set(-EINVAL,
					 "%s: header extension %#x overruns the header cluster",
					 bs->filename, type);
		if (type == QCOW2_EXT_BACKING_FORMAT) {
			free(bs->backing_fmt);
			bs->backing_fmt = strndup((const char *)data, len);
			if (!bs->backing_fmt)
				return -ENOMEM;
		} else if (type == QCOW2_EXT_DATA_FILE) {
			if (len == 0 || len > QCOW2_DATA_FILE_NAME_MAX ||
			    memchr(data, 0, len) != NULL)
				return error_set(-EINVAL, "%s: invalid data file name (%u bytes)",
						 bs->filename, len);
			free(s->data_file_name);
			s->data_file_name = strndup((const char *)data, len);
			if (!s->data_file_name)
				return -ENOMEM;
		} else if (type == QCOW2_EXT_FEATURE_TABLE) {
			free(s->feature_table);
			s->feature_table = malloc(len ? len : 1);
			if (!s->feature_table)
				return -ENOMEM;
			memcpy(s->feature_table, data, len);
			s->feature_table_len = len;
		} else {
			/* Kept verbatim (bitmaps, encryption, unknown): written back untouched. */
			uint8_t *n = realloc(s->unknown_ext, s->unknown_ext_len + 8 + padded);
			if (!n)
				return -ENOMEM;
			s->unknown_ext = n;
			memcpy(n + s->unknown_ext_len, hdr + pos, 8 + padded);
			s->unknown_ext_len += 8 + padded;
		}
		pos += 8 + padded;
	}
	return 0;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

/* A metadata area must be cluster aligned and lie inside the file. */
static int check_area(struct block_device *bs, struct qcow2_state *s, const char *what,
		      uint64_t off, uint64_t len, uint64_t file_size)
{
	if (off & (s->cluster_size - 1))
		return error_set(-EINVAL, "%s: %s offset %#llx is not cluster aligned",
				 bs->filename, what, (unsigned long long)off);
	if (off > file_size || len > file_size - off)
		return error_set(-EINVAL, "%s: %s at %#llx (+%llu bytes) is beyond end of file",
				 bs->filename, what, (unsigned long long)off,
				 (unsigned long long)len);
	return 0;
}

static int validate_layout(struct block_device *bs, struct qcow2_state *s, uint64_t file_size)
{
	uint64_t l1_bytes = (uint64_t)s->l1_size * 8;
	uint64_t rt_bytes = (uint64_t)s->refcount_table_clusters << s->cluster_bits;
	uint64_t sn_bytes =
	    (uint64_t)s->nb_snapshots * 40; /* lower bound; entries are >= 40 bytes */
	int ret;

	if (l1_bytes > QCOW2_MAX_L1_BYTES)
		return error_set(-EFBIG, "%s: L1 table of %u entries is too large", bs->filename,
				 s->l1_size);
	if (qcow2_l1_needed(s, bs->size) > s->l1_size)
		return error_set(-EINVAL,
				 "%s: L1 table (%u entries) too small for the virtual size %llu",
				 bs->filename, s->l1_size, (unsigned long long)bs->size);
	if (rt_bytes > QCOW2_MAX_REFTABLE_BYTES || s->refcount_table_clusters == 0)
		return error_set(-EINVAL, "%s: refcount table size of %u clusters is invalid",
				 bs->filename, s->refcount_table_clusters);
	if (s->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return error_set(-EINVAL, "%s: too many snapshots (%u)", bs->filename,
				 s->nb_snapshots);
	if (s->l1_size &&
	    (ret = check_area(bs, s, "L1 table", s->l1_table_offset, l1_bytes, file_size)) < 0)
		return ret;
	ret = check_area(bs, s, "refcount table", s->refcount_table_offset, rt_bytes, file_size);
	if (ret < 0)
		return ret;
	if (s->nb_snapshots && (ret = check_area(bs, s, "snapshot table", s->snapshots_offset,
						 sn_bytes, file_size)) < 0)
		return ret;
	if (s->l1_size && s->l1_table_offset == 0)
		return error_set(-EINVAL, "%s: L1 table overlaps the header", bs->filename);
	if (s->refcount_table_offset == 0)
		return error_set(-EINVAL, "%s: refcount table overlaps the header", bs->filename);
	if (s->nb_snapshots && s->snapshots_offset == 0)
		return error_set(-EINVAL, "%s: snapshot table overlaps the header", bs->filename);
	if (ranges_overlap(s->l1_table_offset, l1_bytes, s->refcount_table_offset, rt_bytes))
		return error_set(-EINVAL, "%s: L1 table overlaps the refcount table", bs->filename);
	if (s->nb_snapshots &&
	    (ranges_overlap(s->snapshots_offset, sn_bytes, s->refcount_table_offset, rt_bytes) ||
	     ranges_overlap(s->snapshots_offset, sn_bytes, s->l1_table_offset, l1_bytes)))
		return error_set(-EINVAL, "%s: snapshot table overlaps other metadata",
				 bs->filename);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Two table entries naming one refcount block would make every count in it ambiguous. */
static int check_duplicate_refblocks(struct block_device *bs, struct qcow2_state *s)
{
	uint64_t *v = malloc(s->reftable_entries * 8);
	uint64_t n = 0;
	int ret = 0;

	if (!v)
		return -ENOMEM;
	for (uint64_t i = 0; i < s->reftable_entries; i++)
		if (s->reftable[i])
			v[n++] = s->reftable[i];
	qsort(v, n, 8, cmp_u64);
	for (uint64_t i = 1; i < n; i++) {
		if (v[i] == v[i - 1]) {
			ret = error_set(-EINVAL, "%s: refcount block at %#llx is listed twice",
					bs->filename, (unsigned long long)v[i]);
			break;
		}
	}
	free(v);
	return ret;
}

static int read_tables(struct block_device *bs, struct qcow2_state *s, uint64_t file_size)
{
	uint64_t rt_bytes = (uint64_t)s->refcount_table_clusters << s->cluster_bits;
	int ret;

	s->l1 = calloc(s->l1_size ? s->l1_size : 1, 8);
	s->reftable_entries = rt_bytes / 8;
	s->reftable = calloc(s->reftable_entries, 8);
	if (!s->l1 || !s->reftable)
		return -ENOMEM;
	if (s->l1_size) {
		ret = host_file_pread(&bs->file, s->l1_table_offset, s->l1, (size_t)s->l1_size * 8);
		if (ret < 0)
			return error_set(ret, "%s: cannot read the L1 table", bs->filename);
	}
	ret = host_file_pread(&bs->file, s->refcount_table_offset, s->reftable, rt_bytes);
	if (ret < 0)
		return error_set(ret, "%s: cannot read the refcount table", bs->filename);
	for (uint32_t i = 0; i < s->l1_size; i++) {
		s->l1[i] = get_be64((uint8_t *)&s->l1[i]);
		uint64_t off = s->l1[i] & QCOW2_OFFSET_MASK;
		if (off & (s->cluster_size - 1))
			return error_set(-EINVAL, "%s: L1 entry %u: L2 offset %#llx unaligned",
					 bs->filename, i, (unsigned long long)off);
		if (off && off >= file_size)
			return error_set(-EINVAL,
					 "%s: L1 entry %u: L2 table at %#llx beyond end of file",
					 bs->filename, i, (unsigned long long)off);
	}
	uint64_t rt_off = s->refcount_table_offset, l1_off = s->l1_table_offset;
	uint64_t l1_bytes = (uint64_t)s->l1_size * 8;
	for (uint64_t i = 0; i < s->reftable_entries; i++) {
		s->reftable[i] = get_be64((uint8_t *)&s->reftable[i]);
		uint64_t off = s->reftable[i];
		if (off & (s->cluster_size - 1))
			return error_set(-EINVAL, "%s: refcount table entry %llu unaligned (%#llx)",
					 bs->filename, (unsigned long long)i,
					 (unsigned long long)off);
		if (off && off >= file_size)
			return error_set(
			    -EINVAL, "%s: refcount block %llu at %#llx beyond end of file",
			    bs->filename, (unsigned long long)i, (unsigned long long)off);
		if (off && (off < s->cluster_size || (off >= rt_off && off - rt_off < rt_bytes) ||
			    (off >= l1_off && off - l1_off < l1_bytes)))
			return error_set(
			    -EINVAL, "%s: refcount block %llu at %#llx overlaps other metadata",
			    bs->filename, (unsigned long long)i, (unsigned long long)off);
	}
	return check_duplicate_refblocks(bs, s);
}

int qcow2_header_read(struct block_device *bs, struct qcow2_state *s)
{
	uint8_t h[QCOW2_V3_HEADER_LEN + 8];
	uint64_t file_size, backing_off;
	uint32_t backing_len;
	uint8_t *cluster = NULL;
	int ret;

	ret = host_file_size(&bs->file, &file_size);
	if (ret < 0)
		return error_set(ret, "%s: cannot get the file size", bs->filename);
	if (file_size < QCOW2_V2_HEADER_LEN)
		return error_set(-EINVAL, "%s: truncated qcow2 header (%llu bytes)", bs->filename,
				 (unsigned long long)file_size);
	memset(h, 0, sizeof(h));
	ret = host_file_pread(&bs->file, 0, h, sizeof(h));
	if (ret < 0)
		return error_set(ret, "%s: cannot read the header", bs->filename);
	if (get_be32(h) != QCOW2_MAGIC)
		return error_set(-EINVAL, "%s: bad qcow2 magic", bs->filename);
	s->version = get_be32(h + 4);
	if (s->version != 2 && s->version != 3)
		return error_set(-ENOTSUP, "%s: unsupported qcow2 version %u", bs->filename,
				 s->version);
	backing_off = get_be64(h + 8);
	backing_len = get_be32(h + 16);
	s->cluster_bits = get_be32(h + 20);
	bs->size = get_be64(h + 24);
	uint32_t crypt = get_be32(h + 32);
	s->l1_size = get_be32(h + 36);
	s->l1_table_offset = get_be64(h + 40);
	s->refcount_table_offset = get_be64(h + 48);
	s->refcount_table_clusters = get_be32(h + 56);
	s->nb_snapshots = get_be32(h + 60);
	s->snapshots_offset = get_be64(h + 64);
	s->refcount_order = 4;
	s->header_length = QCOW2_V2_HEADER_LEN;
	if (s->version == 3) {
		if (file_size < QCOW2_V3_HEADER_LEN)
			return error_set(-EINVAL, "%s: truncated qcow2 v3 header", bs->filename);
		s->incompat = get_be64(h + 72);
		s->compat = get_be64(h + 80);
		s->autoclear = get_be64(h + 88);
		s->refcount_order = get_be32(h + 96);
		s->header_length = get_be32(h + 100);
		if (s->header_length < QCOW2_V3_HEADER_LEN || s->header_length % 8)
			return error_set(-EINVAL, "%s: invalid header length %u", bs->filename,
					 s->header_length);
		if (s->header_length > QCOW2_V3_HEADER_LEN)
			s->compression_type = h[104];
	}
	s->extended_l2 = !!(s->incompat & QCOW2_INCOMPAT_EXTL2);
	if (s->extended_l2 && (bs->flags & BLOCK_OPEN_RDWR))
		return error_set(-ENOTSUP,
				 "%s: images with extended L2 entries can only be opened read-only",
				 bs->filename);
	if (s->extended_l2 && s->cluster_bits < 14)
		return error_set(-EINVAL, "%s: extended L2 entries need clusters of 16 KiB or more",
				 bs->filename);
	if (s->cluster_bits < QCOW2_MIN_CLUSTER_BITS || s->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return error_set(-EINVAL, "%s: unsupported cluster size 2^%u", bs->filename,
				 s->cluster_bits);
	s->cluster_size = 1ull << s->cluster_bits;
	if (s->header_length > s->cluster_size)
		return error_set(-EINVAL, "%s: header length %u exceeds the cluster size",
				 bs->filename, s->header_length);
	if (s->refcount_order > 6)
		return error_set(-EINVAL, "%s: refcount width 2^%u bits is invalid (max 64)",
				 bs->filename, s->refcount_order);
	if (crypt != 0)
		return error_set(-ENOTSUP, "%s: encrypted qcow2 images are not supported",
				 bs->filename);
	if (s->compression_type > QCOW2_COMPRESS_ZSTD)
		return error_set(-ENOTSUP, "%s: unknown compression type %u", bs->filename,
				 s->compression_type);
	if (s->compression_type != QCOW2_COMPRESS_ZLIB &&
	    !(s->incompat & QCOW2_INCOMPAT_COMPRESSION))
		return error_set(-EINVAL, "%s: compression type set without its feature bit",
				 bs->filename);
	if (bs->size > (1ull << 62))
		return error_set(-EFBIG, "%s: virtual size %llu is too large", bs->filename,
				 (unsigned long long)bs->size);

	qcow2_geometry(s);

	/* The header cluster: extensions and the backing file name. */
	size_t hc_len = (size_t)(s->cluster_size < file_size ? s->cluster_size : file_size);
	cluster = calloc(1, s->cluster_size);
	if (!cluster)
		return -ENOMEM;
	ret = host_file_pread(&bs->file, 0, cluster, hc_len);
	if (ret < 0) {
		ret = error_set(ret, "%s: cannot read the header cluster", bs->filename);
		goto out;
	}
	size_t ext_end = s->cluster_size;
	if (backing_off) {
		if (backing_len > 1023 || backing_off >= s->cluster_size ||
		    backing_len > s->cluster_size - backing_off || backing_off < s->header_length) {
			ret = error_set(-EINVAL,
					"%s: backing file name (offset %#llx, %u bytes) "
					"is not inside the header cluster",
					bs->filename, (unsigned long long)backing_off, backing_len);
			goto out;
		}
		ext_end = (size_t)backing_off;
	}
	ret = parse_extensions(bs, s, cluster, s->header_length, ext_end);
	if (ret < 0)
		goto out;
	ret = check_unsupported_features(bs, s);
	if (ret < 0)
		goto out;
	if (backing_off && backing_len) {
		bs->backing_name = strndup((const char *)cluster + backing_off, backing_len);
		if (!bs->backing_name) {
			ret = -ENOMEM;
			goto out;
		}
	}
	ret = validate_layout(bs, s, file_size);
	if (ret < 0)
		goto out;
	ret = read_tables(bs, s, file_size);
out:
	free(cluster);
	return ret;
}

/* Rewrite the whole header cluster: fields, extensions, backing name. */
int qcow2_header_write(struct block_device *bs, struct qcow2_state *s)
{
	uint8_t *c = calloc(1, s->cluster_size);
	size_t pos;
	int ret;

	if (!c)
		return -ENOMEM;
	put_be32(c, QCOW2_MAGIC);
	put_be32(c + 4, s->version);
	put_be32(c + 20, s->cluster_bits);
	put_be64(c + 24, bs->size);
	put_be32(c + 36, s->l1_size);
	put_be64(c + 40, s->l1_table_offset);
	put_be64(c + 48, s->refcount_table_offset);
	put_be32(c + 56, s->refcount_table_clusters);
	put_be32(c + 60, s->nb_snapshots);
	put_be64(c + 64, s->snapshots_offset);
	pos = QCOW2_V2_HEADER_LEN;
	if (s->version == 3) {
		s->header_length = 112;
		put_be64(c + 72, s->incompat);
		put_be64(c + 80, s->compat);
		put_be64(c + 88, s->autoclear);
		put_be32(c + 96, s->refcount_order);
		put_be32(c + 100, s->header_length);
		c[104] = s->compression_type;
		pos = s->header_length;
	}
	size_t bfmt_len = bs->backing_fmt ? strlen(bs->backing_fmt) : 0;
	size_t bname_len = bs->backing_name ? strlen(bs->backing_name) : 0;
	size_t dname_len = s->data_file_name ? strlen(s->data_file_name) : 0;
	size_t need = pos + (bfmt_len ? 8 + ((bfmt_len + 7) & ~7ul) : 0) +
		      (dname_len ? 8 + ((dname_len + 7) & ~7ul) : 0) + s->unknown_ext_len + 8 +
		      bname_len;
	size_t ft_len = s->feature_table ? 8 + ((s->feature_table_len + 7) & ~7ul) : 0;
	/* The feature name table is informative only: left out when it does not fit. */
	bool with_ft = s->version == 3 && ft_len && need + ft_len <= s->cluster_size;
	if (need > s->cluster_size || bname_len > 1023) {
		free(c);
		return error_set(-ENOSPC, "%s: header does not fit in one cluster", bs->filename);
	}
	if (bfmt_len) {
		put_be32(c + pos, QCOW2_EXT_BACKING_FORMAT);
		put_be32(c + pos + 4, (uint32_t)bfmt_len);
		memcpy(c + pos + 8, bs->backing_fmt, bfmt_len);
		pos += 8 + ((bfmt_len + 7) & ~7ul);
	}
	if (dname_len) {
		put_be32(c + pos, QCOW2_EXT_DATA_FILE);
		put_be32(c + pos + 4, (uint32_t)dname_len);
		memcpy(c + pos + 8, s->data_file_name, dname_len);
		pos += 8 + ((dname_len + 7) & ~7ul);
	}
	if (with_ft) {
		put_be32(c + pos, QCOW2_EXT_FEATURE_TABLE);
		put_be32(c + pos + 4, (uint32_t)s->feature_table_len);
		memcpy(c + pos + 8, s->feature_table, s->feature_table_len);
		pos += 8 + ((s->feature_table_len + 7) & ~7ul);
	}
	if (s->unknown_ext_len) {
		memcpy(c + pos, s->unknown_ext, s->unknown_ext_len);
		pos += s->unknown_ext_len;
	}
	pos += 8; /* end-of-extensions marker (zeroes) */
	if (bname_len) {
		put_be64(c + 8, pos);
		put_be32(c + 16, (uint32_t)bname_len);
		memcpy(c + pos, bs->backing_name, bname_len);
		pos += bname_len;
	}
	ret = host_file_pwrite(&bs->file, 0, c, s->cluster_size < 4096 ? s->cluster_size : pos);
	free(c);
	if (ret < 0)
		return error_set(ret, "%s: cannot write the header", bs->filename);
	return 0;
}

/* Rewrite only the v3 feature words (dirty/corrupt/autoclear bits). */
int qcow2_header_update_features(struct block_device *bs, struct qcow2_state *s)
{
	uint8_t f[24];
	int ret;

	if (s->version < 3)
		return 0;
	put_be64(f, s->incompat);
	put_be64(f + 8, s->compat);
	put_be64(f + 16, s->autoclear);
	ret = host_file_pwrite(&bs->file, 72, f, sizeof(f));
	if (ret < 0)
		return error_set(ret, "%s: cannot update the header", bs->filename);
	return 0;
}
