/* Creating VMDK images (`img create -f vmdk`), laid out as qemu-img lays them out.
 *
 * Options: subformat=monolithicSparse (default) | monolithicFlat | twoGbMaxExtentSparse |
 * twoGbMaxExtentFlat | streamOptimized; adapter_type=ide (default) | lsilogic | buslogic |
 * legacyESX; hwversion (default 4); compat6 (hwversion 6); toolsversion; zeroed_grain=on|off.
 * A backing file must be a VMDK image: its CID becomes the new image's parentCID.
 *
 * A sparse extent: header, descriptor area (sectors 1-20), redundant GD and its grain tables, GD
 * and its grain tables, grains from the next grain boundary. Split subformats put at most 2 GiB in
 * each extent file, named NAME-s001.vmdk / NAME-f001.vmdk; monolithicFlat uses NAME-flat.vmdk.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/endian.h"
#include "storage/formats/vmdk/vmdk.h"
#include "lib/uuid.h"

#define VMDK_SPLIT_SECTORS (2ull << 30 >> 9)
#define VMDK_GRAIN_DEFAULT 128u
#define VMDK_DESC_SECTORS 20u

struct vmdk_create_opts {
	const char *sub, *adapter, *hw, *tools;
	bool flat, split, stream, zeroed;
};

static int vmdk_create_opts(const char *file, struct block_opts *o, struct vmdk_create_opts *c)
{
	bool compat6 = false;
	int ret;

	c->sub = block_opts_get(o, "subformat");
	c->adapter = block_opts_get(o, "adapter_type");
	c->hw = block_opts_get(o, "hwversion");
	c->tools = block_opts_get(o, "toolsversion");
	ret = block_opts_get_bool(o, file, "compat6", &compat6);
	if (ret == 0)
		ret = block_opts_get_bool(o, file, "zeroed_grain", &c->zeroed);
	if (ret < 0)
		return ret;
	if (!c->sub)
		c->sub = "monolithicSparse";
	c->flat = !strcmp(c->sub, "monolithicFlat") || !strcmp(c->sub, "twoGbMaxExtentFlat");
	c->split = !strcmp(c->sub, "twoGbMaxExtentSparse") || !strcmp(c->sub, "twoGbMaxExtentFlat");
	c->stream = !strcmp(c->sub, "streamOptimized");
	if (!c->flat && !c->split && !c->stream && strcmp(c->sub, "monolithicSparse"))
		return error_set(-EINVAL,
				 "%s: unknown VMDK subformat '%s' (monolithicSparse, "
				 "monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat, "
				 "streamOptimized)",
				 file, c->sub);
	if (!c->adapter)
		c->adapter = "ide";
	if (strcmp(c->adapter, "ide") && strcmp(c->adapter, "lsilogic") &&
	    strcmp(c->adapter, "buslogic") && strcmp(c->adapter, "legacyESX"))
		return error_set(-EINVAL,
				 "%s: unknown adapter_type '%s' (ide, lsilogic, buslogic, "
				 "legacyESX)",
				 file, c->adapter);
	if (compat6 && c->hw)
		return error_set(-EINVAL, "%s: compat6 and hwversion are mutually exclusive", file);
	if (!c->hw)
		c->hw = compat6 ? "6" : "4";
	for (const char *p = c->hw; *p; p++)
		if (*p < '0' || *p > '9' || p - c->hw > 8)
			return error_set(-EINVAL, "%s: hwversion '%s' is not a number", file,
					 c->hw);
	if (!c->tools)
		c->tools = "2147483647";
	for (const char *p = c->tools; *p; p++)
		if (*p < '0' || *p > '9' || p - c->tools > 10)
			return error_set(-EINVAL, "%s: toolsversion '%s' is not a number", file,
					 c->tools);
	if (!c->hw[0] || !c->tools[0])
		return error_set(-EINVAL, "%s: empty hwversion or toolsversion", file);
	return 0;
}

/* Write one sparse extent of `capacity` sectors into f; desc (may be NULL) is embedded. */
static int vmdk_write_sparse(struct host_file *f, uint64_t capacity, const char *desc,
			     const struct vmdk_create_opts *c)
{
	uint64_t grain = VMDK_GRAIN_DEFAULT, gtes = 512, gt_sectors = gtes * 4 / VMDK_SECTOR;
	uint64_t gt_count = (capacity + grain * gtes - 1) / (grain * gtes);
	uint64_t gd_sectors = (gt_count * 4 + VMDK_SECTOR - 1) / VMDK_SECTOR;
	uint64_t rgd = 1 + VMDK_DESC_SECTORS;
	uint64_t gd = rgd + gd_sectors + gt_count * gt_sectors;
	uint64_t overhead = (gd + gd_sectors + gt_count * gt_sectors + grain - 1) / grain * grain;
	uint8_t hdr[VMDK_SECTOR] = {0};
	uint8_t *dir;
	int ret;

	if (desc && strlen(desc) > VMDK_DESC_SECTORS * VMDK_SECTOR)
		return -ENAMETOOLONG;
	put_le32(hdr + VMDK_H_MAGIC, VMDK_MAGIC);
	put_le32(hdr + VMDK_H_VERSION, c->stream ? 3 : c->zeroed ? 2 : 1);
	put_le32(hdr + VMDK_H_FLAGS,
		 VMDK_FLAG_NL_DETECT | VMDK_FLAG_RGD | (c->zeroed ? VMDK_FLAG_ZERO_GRAIN : 0) |
		     (c->stream ? VMDK_FLAG_COMPRESSED | VMDK_FLAG_MARKERS : 0));
	put_le64(hdr + VMDK_H_CAPACITY, capacity);
	put_le64(hdr + VMDK_H_GRAIN, grain);
	put_le64(hdr + VMDK_H_DESC_OFFSET, 1);
	put_le64(hdr + VMDK_H_DESC_SIZE, VMDK_DESC_SECTORS);
	put_le32(hdr + VMDK_H_GTES, (uint32_t)gtes);
	put_le64(hdr + VMDK_H_RGD_OFFSET, rgd);
	put_le64(hdr + VMDK_H_GD_OFFSET, gd);
	put_le64(hdr + VMDK_H_OVERHEAD, overhead);
	memcpy(hdr + VMDK_H_NL_CHARS, "\n \r\n", 4);
	if (c->stream)
		hdr[VMDK_H_COMPRESS_ALGO] = 1;

	dir = calloc(1, gd_sectors * VMDK_SECTOR + 1);
	if (!dir)
		return -ENOMEM;
	ret = host_file_truncate(f, overhead * VMDK_SECTOR);
	if (ret == 0)
		ret = host_file_pwrite(f, 0, hdr, sizeof(hdr));
	if (ret == 0 && desc)
		ret = host_file_pwrite(f, VMDK_SECTOR, desc, strlen(desc));
	for (int copy = 0; copy < 2 && ret == 0; copy++) {
		uint64_t base = copy ? gd : rgd;
		for (uint64_t i = 0; i < gt_count; i++)
			put_le32(dir + 4 * i, (uint32_t)(base + gd_sectors + i * gt_sectors));
		ret = host_file_pwrite(f, base * VMDK_SECTOR, dir, gd_sectors * VMDK_SECTOR);
	}
	free(dir);
	return ret;
}

static char *vmdk_extent_path(const char *filename, const struct vmdk_create_opts *c, unsigned i)
{
	size_t len = strlen(filename);
	size_t stem = len > 5 && !strcmp(filename + len - 5, ".vmdk") ? len - 5 : len;
	char *p = malloc(stem + 32);

	if (!p)
		return NULL;
	if (c->split)
		snprintf(p, stem + 32, "%.*s-%c%03u.vmdk", (int)stem, filename, c->flat ? 'f' : 's',
			 i + 1);
	else
		snprintf(p, stem + 32, "%.*s-flat.vmdk", (int)stem, filename);
	return p;
}

static const char *vmdk_base(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* The parent's CID (it must be a VMDK image). */
static int vmdk_parent_cid(const char *filename, const struct block_create_args *a, uint32_t *cid)
{
	struct block_device *b;
	char *path = vmdk_path_join(filename, a->backing);
	int ret;

	if (!path)
		return error_set(-ENOMEM, "%s: out of memory", filename);
	if (a->backing_fmt && strcmp(a->backing_fmt, "vmdk")) {
		free(path);
		return error_set(-EINVAL, "%s: backing file format %s: a VMDK parent must be vmdk",
				 filename, a->backing_fmt);
	}
	ret = block_open(path, "vmdk", BLOCK_OPEN_NO_BACKING, &b);
	free(path);
	if (ret < 0)
		return ret;
	*cid = ((struct vmdk_state *)b->state)->cid;
	block_close(b);
	return 0;
}

static int vmdk_random_cid(uint32_t *cid)
{
	do {
		if (random_fill(cid, sizeof(*cid)) < 0)
			return -EIO;
	} while (*cid >= 0xfffffffeu);
	return 0;
}

static char *vmdk_make_desc(const char *filename, const struct block_create_args *a,
			    const struct vmdk_create_opts *c, uint32_t cid, uint32_t pcid,
			    uint64_t sectors, unsigned extents)
{
	size_t cap =
	    2048 + (a->backing ? strlen(a->backing) : 0) + extents * (strlen(filename) + 64);
	char *d = malloc(cap);
	size_t n = 0;
	unsigned heads = strcmp(c->adapter, "ide") ? 255 : 16;

	if (!d)
		return NULL;
	n += (size_t)snprintf(d + n, cap - n,
			      "# Disk DescriptorFile\nversion=1\nCID=%08" PRIx32
			      "\nparentCID=%08" PRIx32 "\ncreateType=\"%s\"\n",
			      cid, pcid, c->sub);
	if (a->backing)
		n += (size_t)snprintf(d + n, cap - n, "parentFileNameHint=\"%s\"\n", a->backing);
	n += (size_t)snprintf(d + n, cap - n, "\n# Extent description\n");
	for (unsigned i = 0; i < extents; i++) {
		uint64_t left = sectors - (uint64_t)i * VMDK_SPLIT_SECTORS;
		uint64_t len = c->split && left > VMDK_SPLIT_SECTORS ? VMDK_SPLIT_SECTORS : left;
		char *path = c->flat || c->split ? vmdk_extent_path(filename, c, i) : NULL;
		const char *name = path ? vmdk_base(path) : vmdk_base(filename);
		n += (size_t)snprintf(d + n, cap - n, "RW %" PRIu64 " %s \"%s\"%s\n", len,
				      c->flat ? "FLAT" : "SPARSE", name, c->flat ? " 0" : "");
		free(path);
	}
	n += (size_t)snprintf(d + n, cap - n,
			      "\n# The Disk Data Base\n#DDB\n\n"
			      "ddb.virtualHWVersion = \"%s\"\n"
			      "ddb.geometry.cylinders = \"%" PRIu64 "\"\n"
			      "ddb.geometry.heads = \"%u\"\n"
			      "ddb.geometry.sectors = \"63\"\n"
			      "ddb.adapterType = \"%s\"\n"
			      "ddb.toolsVersion = \"%s\"\n",
			      c->hw, sectors / (heads * 63), heads, c->adapter, c->tools);
	if (n >= cap) {
		free(d);
		return NULL;
	}
	return d;
}

static int vmdk_create_extents(const char *filename, const struct vmdk_create_opts *c,
			       uint64_t sectors, unsigned extents, unsigned *made)
{
	for (unsigned i = 0; i < extents; i++) {
		uint64_t left = sectors - (uint64_t)i * VMDK_SPLIT_SECTORS;
		uint64_t len = c->split && left > VMDK_SPLIT_SECTORS ? VMDK_SPLIT_SECTORS : left;
		char *path = vmdk_extent_path(filename, c, i);
		struct host_file f;
		int ret;

		if (!path)
			return error_set(-ENOMEM, "%s: out of memory", filename);
		ret = host_file_open(&f, path, HOST_FILE_CREATE | HOST_FILE_RDWR);
		if (ret < 0) {
			error_set(ret, "%s: cannot create extent %s: %s", filename, path,
				  strerror(-ret));
			free(path);
			return ret;
		}
		*made = i + 1;
		ret = c->flat ? host_file_truncate(&f, len * VMDK_SECTOR)
			      : vmdk_write_sparse(&f, len, NULL, c);
		if (ret == 0)
			ret = host_file_flush(&f);
		host_file_close(&f);
		if (ret < 0) {
			error_set(ret, "%s: cannot write extent %s: %s", filename, path,
				  strerror(-ret));
			free(path);
			return ret;
		}
		free(path);
	}
	return 0;
}

int vmdk_create(const char *filename, const struct block_create_args *args)
{
	struct vmdk_create_opts c = {0};
	uint32_t cid, pcid = 0xffffffffu;
	unsigned extents = 1, made = 0;
	struct host_file f;
	int ret;

	ret = vmdk_create_opts(filename, args->opts, &c);
	if (ret < 0)
		return ret;
	const char *unused = args->opts ? block_opts_unused(args->opts) : NULL;
	if (unused) /* refused before any extent file exists */
		return error_set(-EINVAL, "%s: format vmdk does not support option '%s'", filename,
				 unused);
	if (c.zeroed && c.flat)
		return error_set(-EINVAL, "%s: zeroed_grain needs a sparse subformat", filename);
	uint64_t sectors = (args->size + VMDK_SECTOR - 1) / VMDK_SECTOR;
	if (args->size > VMDK_SIZE_MAX)
		return error_set(-EFBIG, "%s: size %llu too large (at most 64 TiB)", filename,
				 (unsigned long long)args->size);
	if (c.split)
		extents = sectors
			      ? (unsigned)((sectors + VMDK_SPLIT_SECTORS - 1) / VMDK_SPLIT_SECTORS)
			      : 1;
	if (args->backing) {
		ret = vmdk_parent_cid(filename, args, &pcid);
		if (ret < 0)
			return ret;
	}
	if (vmdk_random_cid(&cid) < 0)
		return error_set(-EIO, "%s: no random bytes for the CID", filename);
	char *desc = vmdk_make_desc(filename, args, &c, cid, pcid, sectors, extents);
	if (!desc)
		return error_set(-ENOMEM, "%s: descriptor too large", filename);
	ret = host_file_open(&f, filename, HOST_FILE_CREATE | HOST_FILE_RDWR);
	if (ret < 0) {
		free(desc);
		return error_set(ret, "%s: cannot create: %s", filename, strerror(-ret));
	}
	if (c.flat || c.split) {
		ret = host_file_pwrite(&f, 0, desc, strlen(desc));
		if (ret == 0)
			ret = vmdk_create_extents(filename, &c, sectors, extents, &made);
	} else {
		ret = vmdk_write_sparse(&f, sectors, desc, &c);
		if (ret == -ENAMETOOLONG)
			ret = error_set(-EINVAL, "%s: descriptor does not fit its 10 KiB area",
					filename);
	}
	if (ret == 0)
		ret = host_file_flush(&f);
	host_file_close(&f);
	free(desc);
	if (ret < 0) {
		for (unsigned i = 0; i < made; i++) {
			char *p = vmdk_extent_path(filename, &c, i);
			if (p)
				unlink(p);
			free(p);
		}
		unlink(filename);
	}
	return ret;
}
