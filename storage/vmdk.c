/* The "vmdk" driver: VMware virtual disks.
 *
 * Opens monolithicSparse and streamOptimized images (a sparse extent with an embedded descriptor)
 * and text descriptors naming FLAT/VMFS, SPARSE and ZERO extents (monolithicFlat,
 * twoGbMaxExtentSparse, twoGbMaxExtentFlat, ...). An extent file is never itself parsed as a
 * descriptor (a sparse extent must carry the KDMV header, a flat one is data), so descriptors
 * cannot chain or loop; an extent naming the descriptor file or a file already used is refused.
 *
 * Backing: parentFileNameHint names the parent (any format); the CIDs are recorded on create and
 * shown by `info`, not enforced on open.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/vmdk.h"

static int vmdk_probe(const uint8_t *head, size_t len, const char *filename)
{
	static const char sig[] = "# Disk DescriptorFile";

	(void)filename;
	if (len >= 4 && vmdk_le32(head) == VMDK_MAGIC)
		return 100;
	if (len >= sizeof(sig) - 1 && memcmp(head, sig, sizeof(sig) - 1) == 0)
		return 100;
	/* A descriptor without the comment line: text with both mandatory keys. */
	size_t n = len < 4096 ? len : 4096;
	if (n == 0 || memchr(head, 0, n))
		return 0;
	char text[4097];
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

static int vmdk_host_flags(struct block_device *bs, bool writable)
{
	int hf = 0;

	if ((bs->flags & BLOCK_OPEN_RDWR) && writable)
		hf |= HOST_FILE_RDWR;
	if (bs->flags & BLOCK_OPEN_CACHE_NONE)
		hf |= HOST_FILE_DIRECT;
	if (bs->flags & BLOCK_OPEN_CACHE_DSYNC)
		hf |= HOST_FILE_DSYNC;
	if (bs->flags & BLOCK_OPEN_CACHE_UNSAFE)
		hf |= HOST_FILE_UNSAFE;
	return hf;
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
		return block_error(-ENOMEM, "%s: out of memory", bs->filename);
	e = &s->ext[0];
	e->f = &bs->file;
	e->name = strdup(bs->filename);
	if (!e->name)
		return block_error(-ENOMEM, "%s: out of memory", bs->filename);
	s->n = 1;
	ret = vmdk_sparse_open(bs, e, hdr, fsize, true);
	if (ret < 0)
		return ret;
	e->sectors = e->capacity;
	s->embedded = true;
	uint64_t doff = vmdk_le64(hdr + VMDK_H_DESC_OFFSET), dsize = vmdk_le64(hdr + VMDK_H_DESC_SIZE);
	if (dsize > VMDK_DESC_MAX / VMDK_SECTOR || doff > fsize / VMDK_SECTOR ||
	    (doff == 0 && dsize) || dsize * VMDK_SECTOR > fsize - doff * VMDK_SECTOR)
		return block_error(-EINVAL, "%s: embedded descriptor (%llu sectors at %llu) invalid",
				   bs->filename, (unsigned long long)dsize,
				   (unsigned long long)doff);
	s->desc_offset = doff * VMDK_SECTOR;
	s->desc_size = dsize * VMDK_SECTOR;
	s->desc = calloc(1, s->desc_size + 1);
	if (!s->desc)
		return block_error(-ENOMEM, "%s: out of memory", bs->filename);
	ret = host_file_pread(&bs->file, s->desc_offset, s->desc, s->desc_size);
	if (ret < 0)
		return block_error(ret, "%s: cannot read the descriptor: %s", bs->filename,
				   strerror(-ret));
	return vmdk_desc_parse(bs, s);
}

struct vmdk_file_id {
	dev_t dev;
	ino_t ino;
};

/* Open the file of extent e and refuse one already in use by this disk. */
static int vmdk_extent_file(struct block_device *bs, struct vmdk_extent *e, const char *name,
			    struct vmdk_file_id *ids, unsigned n)
{
	struct stat st;
	int ret;

	e->name = vmdk_path_join(bs->filename, name);
	if (!e->name)
		return block_error(-ENOMEM, "%s: out of memory", bs->filename);
	ret = host_file_open(&e->own, e->name, vmdk_host_flags(bs, !e->read_only));
	if (ret < 0)
		return block_error(ret, "%s: cannot open extent file %s: %s", bs->filename, e->name,
				   strerror(-ret));
	e->f = &e->own;
	if (fstat(e->own.fd, &st) < 0)
		return block_error(-errno, "%s: cannot stat %s", bs->filename, e->name);
	for (unsigned i = 0; i <= n; i++)
		if (ids[i].dev == st.st_dev && ids[i].ino == st.st_ino)
			return block_error(-ELOOP, "%s: extent file %s is %s", bs->filename, e->name,
					   i == 0 ? "the descriptor itself" : "listed twice");
	ids[n + 1].dev = st.st_dev;
	ids[n + 1].ino = st.st_ino;
	return 0;
}

/* One extent line: ACCESS SECTORS TYPE ["FILE" [OFFSET]]; 0 when the line is no extent line. */
static int vmdk_extent_line(struct block_device *bs, struct vmdk_state *s, const char *line,
			    struct vmdk_file_id *ids)
{
	char access[16], type[16], name[4096];
	unsigned long long sectors, offset = 0;
	int pos = 0;

	if (sscanf(line, "%15s %llu %15s%n", access, &sectors, type, &pos) < 3)
		return 0;
	if (strcmp(access, "RW") && strcmp(access, "RDONLY") && strcmp(access, "NOACCESS"))
		return 0;
	if (!strcmp(access, "NOACCESS"))
		return block_error(-ENOTSUP, "%s: NOACCESS extents are not supported", bs->filename);
	if (s->n >= VMDK_EXTENTS_MAX)
		return block_error(-EINVAL, "%s: more than %u extents", bs->filename,
				   VMDK_EXTENTS_MAX);
	bool zero = !strcmp(type, "ZERO"), flat = !strcmp(type, "FLAT") || !strcmp(type, "VMFS");
	if (!zero && !flat && strcmp(type, "SPARSE"))
		return block_error(-ENOTSUP, "%s: extent type %s not supported", bs->filename, type);
	const char *p = line + pos;
	while (*p == ' ' || *p == '\t')
		p++;
	name[0] = 0;
	if (*p == '"') {
		const char *q = strchr(p + 1, '"');
		if (!q || (size_t)(q - p - 1) >= sizeof(name))
			return block_error(-EINVAL, "%s: bad extent file name in '%.60s'",
					   bs->filename, line);
		memcpy(name, p + 1, (size_t)(q - p - 1));
		name[q - p - 1] = 0;
		p = q + 1;
		char *end;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p && *p != '\r' && *p != '\n') {
			offset = strtoull(p, &end, 10);
			if (end == p)
				return block_error(-EINVAL, "%s: bad extent offset in '%.60s'",
						   bs->filename, line);
		}
	}
	if ((!zero && !name[0]) || sectors > VMDK_CAPACITY_MAX || offset > VMDK_CAPACITY_MAX)
		return block_error(-EINVAL, "%s: bad extent line '%.60s'", bs->filename, line);
	if (sectors == 0)
		return 1;
	struct vmdk_extent *e = &s->ext[s->n];
	memset(e, 0, sizeof(*e));
	e->read_only = !strcmp(access, "RDONLY");
	e->sectors = sectors;
	e->start = s->n ? s->ext[s->n - 1].start + s->ext[s->n - 1].sectors : 0;
	s->n++; /* counted now so that close frees what is half set up */
	if (zero) {
		e->type = VMDK_EXT_ZERO;
		return 1;
	}
	int ret = vmdk_extent_file(bs, e, name, ids, s->n - 1);
	if (ret < 0)
		return ret;
	if (flat) {
		e->type = VMDK_EXT_FLAT;
		e->flat_offset = offset * VMDK_SECTOR;
		return 1;
	}
	uint8_t hdr[VMDK_SECTOR];
	uint64_t fsize;
	ret = host_file_size(e->f, &fsize);
	if (ret == 0)
		ret = host_file_pread(e->f, 0, hdr, sizeof(hdr));
	if (ret < 0)
		return block_error(ret, "%s: cannot read %s: %s", bs->filename, e->name,
				   strerror(-ret));
	ret = vmdk_sparse_open(bs, e, hdr, fsize, false);
	if (ret < 0)
		return ret;
	if (e->sectors > e->capacity)
		return block_error(-EINVAL,
				   "%s: extent %s: %llu sectors listed but its capacity is %llu",
				   bs->filename, e->name, (unsigned long long)e->sectors,
				   (unsigned long long)e->capacity);
	return 1;
}

static int vmdk_open_text(struct block_device *bs, struct vmdk_state *s, uint64_t fsize)
{
	struct vmdk_file_id *ids;
	struct stat st;
	int ret;

	if (fsize > VMDK_DESC_MAX)
		return block_error(-EINVAL, "%s: descriptor file of %llu bytes too large",
				   bs->filename, (unsigned long long)fsize);
	s->desc = calloc(1, fsize + 1);
	if (!s->desc)
		return block_error(-ENOMEM, "%s: out of memory", bs->filename);
	ret = host_file_pread(&bs->file, 0, s->desc, fsize);
	if (ret < 0)
		return block_error(ret, "%s: cannot read the descriptor: %s", bs->filename,
				   strerror(-ret));
	/* qemu-img pads the descriptor files it converts to with NULs to a whole sector. */
	for (size_t i = strlen(s->desc); i < fsize; i++)
		if (s->desc[i])
			return block_error(-EINVAL, "%s: not a VMDK descriptor (binary data)",
					   bs->filename);
	ret = vmdk_desc_parse(bs, s);
	if (ret < 0)
		return ret;
	/* One extent per line at most. */
	unsigned lines = 1;
	for (const char *p = s->desc; *p; p++)
		lines += *p == '\n';
	if (lines > VMDK_EXTENTS_MAX + 1024)
		lines = VMDK_EXTENTS_MAX + 1024;
	s->ext = calloc(lines, sizeof(*s->ext));
	ids = calloc(lines + 1, sizeof(*ids));
	if (!s->ext || !ids) {
		free(ids);
		return block_error(-ENOMEM, "%s: out of memory", bs->filename);
	}
	if (fstat(bs->file.fd, &st) < 0) {
		free(ids);
		return block_error(-errno, "%s: cannot stat", bs->filename);
	}
	ids[0].dev = st.st_dev;
	ids[0].ino = st.st_ino;
	for (const char *p = s->desc; *p && ret >= 0;) {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		char line[8192];
		if (l < sizeof(line)) {
			memcpy(line, p, l);
			line[l] = 0;
			if (s->n >= lines)
				ret = block_error(-EINVAL, "%s: too many extents", bs->filename);
			else
				ret = vmdk_extent_line(bs, s, line, ids);
		}
		p += l + (nl ? 1 : 0);
	}
	free(ids);
	if (ret < 0)
		return ret;
	if (s->n == 0)
		return block_error(-EINVAL, "%s: descriptor lists no extents", bs->filename);
	return 0;
}

static int vmdk_open(struct block_device *bs)
{
	struct vmdk_state *s = calloc(1, sizeof(*s));
	uint8_t hdr[VMDK_SECTOR];
	uint64_t fsize;
	int ret;

	if (!s)
		return block_error(-ENOMEM, "%s: out of memory", bs->filename);
	pthread_mutex_init(&s->desc_lock, NULL);
	bs->state = s;
	ret = host_file_size(&bs->file, &fsize);
	if (ret == 0)
		ret = host_file_pread(&bs->file, 0, hdr, sizeof(hdr));
	if (ret < 0) {
		block_error(ret, "%s: cannot read: %s", bs->filename, strerror(-ret));
		goto fail;
	}
	if (fsize >= 4 && vmdk_le32(hdr) == VMDK_MAGIC)
		ret = vmdk_open_monolithic(bs, s, hdr, fsize);
	else
		ret = vmdk_open_text(bs, s, fsize);
	if (ret < 0)
		goto fail;
	uint64_t total = s->ext[s->n - 1].start + s->ext[s->n - 1].sectors;
	if (total > VMDK_SIZE_MAX / VMDK_SECTOR) {
		ret = block_error(-EINVAL, "%s: disk of %llu sectors too large", bs->filename,
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
		return block_error(-EINVAL, "%s: bad ddb.uuid.image '%s'", bs->filename, buf);
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
			      i == 15 ? "" : i == 7 ? "-" : " ");
	pthread_mutex_lock(&s->desc_lock);
	char *nd = vmdk_desc_set(s->desc, "ddb.uuid.image", text, true);
	if (!nd) {
		pthread_mutex_unlock(&s->desc_lock);
		return block_error(-ENOMEM, "%s: out of memory", bs->filename);
	}
	ret = vmdk_desc_write(bs, s, nd);
	if (ret == 0) {
		free(s->desc);
		s->desc = nd;
	} else {
		free(nd);
	}
	pthread_mutex_unlock(&s->desc_lock);
	return ret;
}

static int vmdk_info(struct block_device *bs, struct json_object *out)
{
	struct vmdk_state *s = bs->state;
	struct json_object *ext = json_object_new_array();

	json_object_object_add(out, "cid", json_object_new_int64(s->cid));
	json_object_object_add(out, "parent-cid", json_object_new_int64(s->parent_cid));
	json_object_object_add(out, "create-type", json_object_new_string(s->create_type));
	for (unsigned i = 0; i < s->n; i++) {
		struct vmdk_extent *e = &s->ext[i];
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "filename",
				       json_object_new_string(e->name ? e->name : ""));
		json_object_object_add(
		    o, "format",
		    json_object_new_string(e->type == VMDK_EXT_SPARSE ? "SPARSE"
					   : e->type == VMDK_EXT_FLAT ? "FLAT"
								      : "ZERO"));
		json_object_object_add(o, "virtual-size",
				       json_object_new_int64((int64_t)(e->sectors * VMDK_SECTOR)));
		if (e->type == VMDK_EXT_SPARSE) {
			json_object_object_add(
			    o, "cluster-size",
			    json_object_new_int64((int64_t)e->grain * VMDK_SECTOR));
			json_object_object_add(o, "compressed",
					       json_object_new_boolean(e->compressed));
		}
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
    .open = vmdk_open,
    .close = vmdk_close,
    .create = vmdk_create,
    .preadv = vmdk_preadv,
    .pwritev = vmdk_pwritev,
    .flush = vmdk_flush,
    .block_status = vmdk_block_status,
    .info = vmdk_info,
    .get_uuid = vmdk_get_uuid,
    .set_uuid = vmdk_set_uuid,
    .cluster_size = vmdk_cluster_size,
};
BLOCK_DRIVER(block_driver_vmdk);
