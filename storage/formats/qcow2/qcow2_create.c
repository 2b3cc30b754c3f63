/* qcow2: image creation.
 *
 * Options: cluster_size (512..2M, power of two), compat (0.10|1.1), refcount_bits (1..64, power of
 * two; 16 with compat=0.10), preallocation (off|metadata|falloc|full), lazy_refcounts (on|off),
 * compression_type (zlib|zstd, compat=1.1 only), data_file (an external data file, compat=1.1),
 * data_file_raw (on: it stays a raw image of the disk; implies preallocation=metadata and no
 * backing file). The backing file comes from the create args.
 *
 * Layout: cluster 0 header, 1 refcount table, 2 refcount block; the L1 table and everything else
 * is then allocated through the ordinary allocator of an opened image.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/core/block_path.h"
#include "storage/formats/qcow2/qcow2.h"

struct create_opts {
	uint32_t cluster_bits;
	uint32_t version;
	uint32_t refcount_order;
	enum block_prealloc prealloc;
	bool lazy;
	uint8_t compression;
	const char *data_file; /* external data file name, or NULL */
	bool data_file_raw;
};

static int parse_opts(const char *filename, struct block_opts *opts, struct create_opts *o)
{
	uint64_t cluster = 1u << 16, refcount_bits = 16;
	const char *v;
	int ret;

	o->version = 3;
	o->prealloc = BLOCK_PREALLOC_OFF;
	o->lazy = false;
	o->compression = QCOW2_COMPRESS_ZLIB;
	ret = block_opts_get_size(opts, filename, "cluster_size", &cluster);
	if (ret == 0)
		ret = block_opts_get_size(opts, filename, "refcount_bits", &refcount_bits);
	if (ret == 0)
		ret = block_opts_get_prealloc(opts, filename, &o->prealloc);
	if (ret == 0)
		ret = block_opts_get_bool(opts, filename, "lazy_refcounts", &o->lazy);
	o->data_file = block_opts_get(opts, "data_file");
	o->data_file_raw = false;
	if (ret == 0)
		ret = block_opts_get_bool(opts, filename, "data_file_raw", &o->data_file_raw);
	if (ret < 0)
		return ret;
	if (cluster < 512 || cluster > (2u << 20) || (cluster & (cluster - 1)))
		return error_set(-EINVAL,
				 "%s: cluster_size %llu: must be a power of two from 512 to 2M",
				 filename, (unsigned long long)cluster);
	o->cluster_bits = (uint32_t)__builtin_ctzll(cluster);
	if (refcount_bits < 1 || refcount_bits > 64 || (refcount_bits & (refcount_bits - 1)))
		return error_set(-EINVAL, "%s: refcount_bits %llu: must be 1, 2, 4 ... 64",
				 filename, (unsigned long long)refcount_bits);
	o->refcount_order = (uint32_t)__builtin_ctzll(refcount_bits);
	if ((v = block_opts_get(opts, "compat"))) {
		if (!strcmp(v, "0.10") || !strcmp(v, "v2"))
			o->version = 2;
		else if (!strcmp(v, "1.1") || !strcmp(v, "v3"))
			o->version = 3;
		else
			return error_set(-EINVAL, "%s: compat %s: expected 0.10 or 1.1", filename,
					 v);
	}
	if ((v = block_opts_get(opts, "compression_type"))) {
		if (!strcmp(v, "zlib"))
			o->compression = QCOW2_COMPRESS_ZLIB;
		else if (!strcmp(v, "zstd"))
			o->compression = QCOW2_COMPRESS_ZSTD;
		else
			return error_set(-EINVAL, "%s: compression_type %s: expected zlib or zstd",
					 filename, v);
	}
	if (o->version == 2 && o->refcount_order != 4)
		return error_set(-EINVAL, "%s: compat=0.10 requires refcount_bits=16", filename);
	if (o->version == 2 && o->lazy)
		return error_set(-EINVAL, "%s: lazy_refcounts requires compat=1.1", filename);
	if (o->version == 2 && o->compression != QCOW2_COMPRESS_ZLIB)
		return error_set(-EINVAL, "%s: compression_type=zstd requires compat=1.1",
				 filename);
	if (o->data_file_raw && !o->data_file)
		return error_set(-EINVAL, "%s: data_file_raw requires data_file", filename);
	if (o->data_file && o->version == 2)
		return error_set(-EINVAL, "%s: data_file requires compat=1.1", filename);
	if (o->data_file && (!o->data_file[0] || strlen(o->data_file) > QCOW2_DATA_FILE_NAME_MAX))
		return error_set(-EINVAL, "%s: data_file name empty or too long", filename);
	/* A raw data file is the whole disk: every cluster mapped (qemu-img does the same). */
	if (o->data_file_raw && o->prealloc == BLOCK_PREALLOC_OFF)
		o->prealloc = BLOCK_PREALLOC_METADATA;
	return 0;
}

/* Feature name table (type, bit, name), as qemu-img shows in errors for unknown features. */
static int feature_table(struct qcow2_state *s)
{
	static const struct {
		uint8_t type, bit;
		const char *name;
	} f[] = {
	    {0, 0, "dirty bit"},	{0, 1, "corrupt bit"},	       {0, 2, "external data file"},
	    {0, 3, "compression type"}, {0, 4, "extended L2 entries"}, {1, 0, "lazy refcounts"},
	    {2, 0, "bitmaps"},		{2, 1, "raw external data"},
	};
	size_t n = sizeof(f) / sizeof(f[0]);

	s->feature_table = calloc(n, 48);
	if (!s->feature_table)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		s->feature_table[i * 48] = f[i].type;
		s->feature_table[i * 48 + 1] = f[i].bit;
		memcpy(s->feature_table + i * 48 + 2, f[i].name, strlen(f[i].name));
	}
	s->feature_table_len = n * 48;
	return 0;
}

static int create_layout(struct block_device *bs, struct qcow2_state *s)
{
	uint64_t cs = s->cluster_size;
	uint8_t *blk = calloc(1, cs);
	int ret;

	if (!blk)
		return -ENOMEM;
	s->refcount_table_offset = cs;
	s->refcount_table_clusters = 1;
	s->reftable_entries = cs / 8;
	s->reftable = calloc(s->reftable_entries, 8);
	s->l1 = calloc(1, 8);
	if (!s->reftable || !s->l1) {
		free(blk);
		return -ENOMEM;
	}
	s->reftable[0] = 2 * cs;
	for (int i = 0; i < 3; i++)
		qcow2_refcount_write_entry(s, blk, (uint64_t)i, 1);
	ret = host_file_pwrite(&bs->file, 2 * cs, blk, cs);
	free(blk);
	if (ret == 0)
		ret = qcow2_reftable_write(bs);
	if (ret == 0)
		ret = qcow2_header_write(bs, s);
	if (ret < 0)
		return error_set(ret, "%s: cannot write the new image", bs->filename);
	s->free_hint = 3;
	return 0;
}

/* The external data file: an existing file is kept (a raw image to put metadata over), grown to
 * the disk size if smaller; a new one is made sparse. Its name is stored as given and resolved as
 * an opened image's would be (inside the image's directory). */
static int create_data_file(const char *filename, const struct create_opts *o,
			    struct qcow2_state *s, uint64_t size)
{
	uint64_t cur;
	char *path;
	int ret = block_image_path_allowed(filename, o->data_file, true, &path);

	if (ret < 0)
		return ret;
	s->data_file_path = path;
	/* The image itself does not exist yet: compare where it will be. */
	char *self = NULL;
	ret = block_image_path_allowed(
	    filename, strrchr(filename, '/') ? strrchr(filename, '/') + 1 : filename, true, &self);
	bool same = ret == 0 && !strcmp(self, path);
	free(self);
	if (same)
		return error_set(-EINVAL, "%s: the data file cannot be the image itself", filename);
	s->data_file_name = strdup(o->data_file);
	if (!s->data_file_name)
		return -ENOMEM;
	ret = host_file_open(&s->data_file, path, HOST_FILE_RDWR);
	if (ret == -ENOENT)
		ret = host_file_open(&s->data_file, path, HOST_FILE_RDWR | HOST_FILE_CREATE);
	if (ret < 0) {
		s->data_file.fd = -1;
		return error_set(ret, "%s: cannot create the data file %s: %s", filename, path,
				 strerror(-ret));
	}
	ret = host_file_size(&s->data_file, &cur);
	if (ret == 0 && cur < size)
		ret = host_file_truncate(&s->data_file, size);
	if (ret < 0)
		return error_set(ret, "%s: cannot size the data file %s: %s", filename, path,
				 strerror(-ret));
	s->has_data_file = true;
	s->data_file_raw = o->data_file_raw;
	s->incompat |= QCOW2_INCOMPAT_DATA_FILE;
	if (o->data_file_raw)
		s->autoclear |= QCOW2_AUTOCLEAR_DATA_FILE_RAW;
	return 0;
}

int qcow2_create(const char *filename, const struct block_create_args *args)
{
	struct create_opts o;
	struct block_device bs;
	struct qcow2_state *s;
	uint64_t size = args->size;
	int ret;

	ret = parse_opts(filename, args->opts, &o);
	if (ret < 0)
		return ret;
	if (args->backing && o.data_file_raw)
		return error_set(-EINVAL, "%s: data_file_raw cannot be used with a backing file",
				 filename);
	if (args->backing && o.prealloc != BLOCK_PREALLOC_OFF)
		return error_set(-EINVAL, "%s: preallocation with a backing file is not supported",
				 filename);
	if (args->backing && strlen(args->backing) > 1023)
		return error_set(-EINVAL, "%s: backing file name too long", filename);
	if (size > (1ull << 62))
		return error_set(-EFBIG, "%s: size %llu too large", filename,
				 (unsigned long long)size);
	/* The disk is made of 512-byte sectors (as qemu-img rounds): a caller's odd size grows. */
	size = (size + 511) & ~511ull;

	memset(&bs, 0, sizeof(bs));
	bs.filename = (char *)filename;
	bs.flags = BLOCK_OPEN_RDWR;
	bs.size = size;
	s = qcow2_state_new();
	if (!s)
		return -ENOMEM;
	bs.state = s;
	s->version = o.version;
	s->cluster_bits = o.cluster_bits;
	s->refcount_order = o.refcount_order;
	s->compression_type = o.compression;
	if (o.compression)
		s->incompat |= QCOW2_INCOMPAT_COMPRESSION;
	if (o.lazy)
		s->compat |= QCOW2_COMPAT_LAZY_REFCOUNTS;
	qcow2_geometry(s);
	if (qcow2_l1_needed(s, size) * 8 > QCOW2_MAX_L1_BYTES) {
		qcow2_state_free(s);
		return error_set(-EFBIG, "%s: size %llu too large for cluster size %llu", filename,
				 (unsigned long long)size, (unsigned long long)s->cluster_size);
	}
	if (o.version == 3 && (ret = feature_table(s)) < 0) {
		qcow2_state_free(s);
		return ret;
	}
	bs.backing_name = (char *)args->backing;
	bs.backing_fmt = (char *)args->backing_fmt;
	if (o.data_file) {
		ret = create_data_file(filename, &o, s, size);
		if (ret < 0) {
			qcow2_state_free(s);
			return ret;
		}
	}

	ret = host_file_open(&bs.file, filename, HOST_FILE_RDWR | HOST_FILE_CREATE);
	if (ret < 0) {
		qcow2_state_free(s);
		return error_set(ret, "%s: cannot create: %s", filename, strerror(-ret));
	}
	ret = qcow2_state_setup(&bs, s);
	s->no_grow = true;
	if (s->has_data_file)
		s->l2_cache.data_sync = &s->data_file;
	if (ret == 0)
		ret = create_layout(&bs, s);
	if (ret == 0)
		ret = qcow2_l1_grow(&bs, (uint32_t)qcow2_l1_needed(s, size));
	if (ret == 0)
		ret = qcow2_preallocate(&bs, 0, size, o.prealloc);
	if (ret == 0)
		ret = qcow2_metadata_flush(&bs);
	if (ret == 0)
		ret = host_file_flush(&bs.file);
	qcow2_state_free(s);
	host_file_close(&bs.file);
	return ret;
}
