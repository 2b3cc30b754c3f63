/* The "vmdk" driver: VMware virtual disks.
 *
 * Opens monolithicSparse and streamOptimized images (a sparse extent with an embedded descriptor)
 * and text descriptors naming FLAT/VMFS, SPARSE and ZERO extents (monolithicFlat,
 * twoGbMaxExtentSparse, twoGbMaxExtentFlat, ...). An extent file is never itself parsed as a
 * descriptor (a sparse extent must carry the KDMV header, a flat one is data), so descriptors
 * cannot chain or loop; an extent naming the descriptor file or a file already used is refused.
 *
 * Backing: parentFileNameHint names the parent (any format on open; a VMDK on create and rebase,
 * whose CID becomes parentCID). The CID is renewed at the first write after each open, as VMware
 * and QEMU do; a parentCID that no longer matches the parent is not refused (QEMU does not either).
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/vmdk/vmdk.h"

/* A descriptor file is recognised by its first 4 KiB of text (the largest head any probe reads:
 * a raw disk probed as raw guards that much, see block_probe_window). */
#define VMDK_PROBE_TEXT 4096u

static int vmdk_probe(const uint8_t *head, size_t len, const char *filename)
{
	static const char sig[] = "# Disk DescriptorFile";

	(void)filename;
	if (len >= 4 && get_le32(head) == VMDK_MAGIC)
		return 100;
	if (len >= sizeof(sig) - 1 && memcmp(head, sig, sizeof(sig) - 1) == 0)
		return 100;
	/* A descriptor without the comment line: text with both mandatory keys. */
	size_t n = len < VMDK_PROBE_TEXT ? len : VMDK_PROBE_TEXT;
	if (n == 0 || memchr(head, 0, n))
		return 0;
	char text[VMDK_PROBE_TEXT + 1];
	memcpy(text, head, n);
	text[n] = 0;
	return strstr(text, "createType=") && strstr(text, "version=") ? 60 : 0;
}

char *vmdk_path_join(const char *base, const char *name)
{
	const char *slash = strrchr(base, '/');
	size_t dirlen = slash && name[0] != '/' ? (size_t)(slash - base) + 1 : 0;
	char *path = malloc(dirlen + strlen(name) + 1);

	if (!path)
		return NULL;
	memcpy(path, base, dirlen);
	strcpy(path + dirlen, name);
	return path;
}

static void vmdk_close(struct block_device *bs)
{
	struct vmdk_state *s = bs->state;

	if (!s)
		return;
	for (unsigned i = 0; i < s->n; i++)
		vmdk_extent_free(&s->ext[i]);
	free(s->ext);
	free(s->desc);
	pthread_mutex_destroy(&s->desc_lock);
	free(s);
	bs->state = NULL;
}

static int vmdk_open_monolithic(struct block_device *bs, struct vmdk_state *s, const uint8_t *hdr,
				uint64_t fsize)
{
	struct vmdk_extent *e;
	int ret;

	s->ext = calloc(1, sizeof(*s->ext));
	if (!s->ext)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	e = &s->ext[0];
	e->f = &bs->file;
	e->name = strdup(bs->filename);
	if (!e->name)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	s->n = 1;
	ret = vmdk_sparse_open(bs, e, hdr, fsize);
	if (ret < 0)
		return ret;
	e->sectors = e->capacity;
	s->embedded = true;
	uint64_t doff = get_le64(hdr + VMDK_H_DESC_OFFSET),
		 dsize = get_le64(hdr + VMDK_H_DESC_SIZE);
	if (dsize > VMDK_DESC_MAX / VMDK_SECTOR || doff > fsize / VMDK_SECTOR ||
	    (doff == 0 && dsize) || dsize * VMDK_SECTOR > fsize - doff * VMDK_SECTOR)
		return error_set(-EINVAL, "%s: embedded descriptor (%llu sectors at %llu) invalid",
				 bs->filename, (unsigned long long)dsize, (unsigned long long)doff);
	s->desc_offset = doff * VMDK_SECTOR;
	s->desc_size = dsize * VMDK_SECTOR;
	s->desc = calloc(1, s->desc_size + 1);
	if (!s->desc)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	ret = host_file_pread(&bs->file, s->desc_offset, s->desc, s->desc_size);
	if (ret < 0)
		return error_set(ret, "%s: cannot read the descriptor: %s", bs->filename,
				 strerror(-ret));
	return vmdk_desc_parse(bs, s);
}

static int vmdk_open(struct block_device *bs)
{
	struct vmdk_state *s = calloc(1, sizeof(*s));
	uint8_t hdr[VMDK_SECTOR];
	uint64_t fsize;
	int ret;

	if (!s)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	pthread_mutex_init(&s->desc_lock, NULL);
	bs->state = s;
	ret = host_file_size(&bs->file, &fsize);
	if (ret == 0)
		ret = host_file_pread(&bs->file, 0, hdr, sizeof(hdr));
	if (ret < 0) {
		error_set(ret, "%s: cannot read: %s", bs->filename, strerror(-ret));
		goto fail;
	}
	if (fsize >= 4 && get_le32(hdr) == VMDK_MAGIC)
		ret = vmdk_open_monolithic(bs, s, hdr, fsize);
	else
		ret = vmdk_open_text(bs, s, fsize);
	if (ret < 0)
		goto fail;
	uint64_t total = s->n ? s->ext[s->n - 1].start + s->ext[s->n - 1].sectors : 0;
	if (total > VMDK_SIZE_MAX / VMDK_SECTOR) {
		ret = error_set(-EINVAL, "%s: disk of %llu sectors too large", bs->filename,
				(unsigned long long)total);
		goto fail;
	}
	bs->size = total * VMDK_SECTOR;
	return 0;
fail:
	free(bs->backing_name);
	bs->backing_name = NULL;
	vmdk_close(bs);
	return ret;
}

static int vmdk_uuid_parse(const char *text, uint8_t uuid[16])
{
	int k = 0;

	for (const char *p = text; *p; p++) {
		if (*p == '-' || *p == ' ')
			continue;
		unsigned v;
		if (k >= 32 || sscanf(p, "%1x", &v) != 1)
			return -EINVAL;
		uuid[k / 2] = (uint8_t)(k % 2 ? uuid[k / 2] | v : v << 4);
		k++;
	}
	return k == 32 ? 0 : -EINVAL;
}

static int vmdk_get_uuid(struct block_device *bs, uint8_t uuid[16])
{
	struct vmdk_state *s = bs->state;
	char buf[128];

	if (vmdk_desc_get(s->desc, "ddb.uuid.image", buf, sizeof(buf)) < 0)
		return -ENOENT;
	if (vmdk_uuid_parse(buf, uuid) < 0)
		return error_set(-EINVAL, "%s: bad ddb.uuid.image '%s'", bs->filename, buf);
	return 0;
}

/* VMware writes the UUID as 16 space-separated hex bytes with a dash in the middle. */
static int vmdk_set_uuid(struct block_device *bs, const uint8_t uuid[16])
{
	struct vmdk_state *s = bs->state;
	char text[64];
	int n = 0, ret;

	for (int i = 0; i < 16; i++)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "%02x%s", uuid[i],
			      i == 15  ? ""
			      : i == 7 ? "-"
				       : " ");
	const char *k[] = {"ddb.uuid.image"}, *v[] = {text};
	const bool q[] = {true};
	pthread_mutex_lock(&s->desc_lock);
	ret = vmdk_desc_update(bs, k, v, q, 1);
	pthread_mutex_unlock(&s->desc_lock);
	return ret;
}

/* Rebase: record the new parent (parentFileNameHint and its CID as parentCID), or none. */
static int vmdk_set_backing(struct block_device *bs, const char *backing, const char *backing_fmt)
{
	struct vmdk_state *s = bs->state;
	uint32_t pcid = 0xffffffffu;
	char cid[16];
	int ret;

	if (backing) {
		struct block_device *b;
		char *path = vmdk_path_join(bs->filename, backing);
		if (!path)
			return error_set(-ENOMEM, "%s: out of memory", bs->filename);
		if (backing_fmt && strcmp(backing_fmt, "vmdk")) {
			free(path);
			return error_set(-EINVAL, "%s: the parent of a VMDK must be a VMDK, not %s",
					 bs->filename, backing_fmt);
		}
		ret = block_open(path, "vmdk", BLOCK_OPEN_NO_BACKING, &b);
		free(path);
		if (ret < 0)
			return ret;
		pcid = ((struct vmdk_state *)b->state)->cid;
		block_close(b);
	}
	snprintf(cid, sizeof(cid), "%08x", pcid);
	const char *k[] = {"parentCID", "parentFileNameHint"}, *v[] = {cid, backing};
	const bool q[] = {false, true};
	pthread_mutex_lock(&s->desc_lock);
	ret = vmdk_desc_update(bs, k, v, q, 2);
	pthread_mutex_unlock(&s->desc_lock);
	if (ret == 0)
		s->parent_cid = pcid;
	return ret;
}

static int vmdk_info(struct block_device *bs, struct json_object *out)
{
	struct vmdk_state *s = bs->state;
	struct json_object *ext = json_object_new_array();

	json_object_object_add(out, "cid", json_object_new_int64(s->cid));
	json_object_object_add(out, "parent-cid", json_object_new_int64(s->parent_cid));
	json_object_object_add(out, "create-type", json_object_new_string(s->create_type));
	/* Keys and values as qemu-img shows them (no format for a monolithic sparse extent). */
	for (unsigned i = 0; i < s->n; i++) {
		struct vmdk_extent *e = &s->ext[i];
		struct json_object *o = json_object_new_object();
		const char *fmt = s->embedded		       ? ""
				  : e->type == VMDK_EXT_SPARSE ? "SPARSE"
				  : e->type == VMDK_EXT_FLAT   ? "FLAT"
							       : "ZERO";
		if (e->compressed)
			json_object_object_add(o, "compressed", json_object_new_boolean(true));
		json_object_object_add(o, "virtual-size",
				       json_object_new_int64((int64_t)(e->sectors * VMDK_SECTOR)));
		json_object_object_add(o, "filename",
				       json_object_new_string(e->name ? e->name : ""));
		if (e->type == VMDK_EXT_SPARSE)
			json_object_object_add(
			    o, "cluster-size",
			    json_object_new_int64((int64_t)e->grain * VMDK_SECTOR));
		json_object_object_add(o, "format", json_object_new_string(fmt));
		json_object_array_add(ext, o);
	}
	json_object_object_add(out, "extents", ext);
	return 0;
}

static uint32_t vmdk_cluster_size(struct block_device *bs)
{
	struct vmdk_state *s = bs->state;

	for (unsigned i = 0; i < s->n; i++)
		if (s->ext[i].type == VMDK_EXT_SPARSE)
			return s->ext[i].grain * VMDK_SECTOR;
	return 0;
}

static const struct block_driver block_driver_vmdk = {
    .name = "vmdk",
    .description = "VMware virtual disk (VMDK): sparse, flat, split and stream-optimized",
    .has_backing = true,
    .probe = vmdk_probe,
    .probe_bytes = VMDK_PROBE_TEXT,
    .open = vmdk_open,
    .close = vmdk_close,
    .create = vmdk_create,
    .preadv = vmdk_preadv,
    .pwritev = vmdk_pwritev,
    .flush = vmdk_flush,
    .write_zeroes = vmdk_write_zeroes,
    .block_status = vmdk_block_status,
    .check = vmdk_check,
    .info = vmdk_info,
    .set_backing = vmdk_set_backing,
    .get_uuid = vmdk_get_uuid,
    .set_uuid = vmdk_set_uuid,
    .cluster_size = vmdk_cluster_size,
};
BLOCK_DRIVER(block_driver_vmdk);
