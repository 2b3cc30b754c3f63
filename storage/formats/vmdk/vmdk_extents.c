/* VMDK text descriptors: the extent lines, and opening each extent's file.
 *
 * An extent line is ACCESS SECTORS TYPE ["FILE" [OFFSET]]. Extent files are opened with the image's
 * cache mode; a file already used by this disk (the descriptor itself, or an extent listed twice)
 * is refused, and a sparse extent must carry its own KDMV header: descriptors are never chained.
 * An extent outside the descriptor's directory, or a device node, needs the user's leave
 * (storage/core/block_path.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/core/block_path.h"
#include "storage/formats/vmdk/vmdk.h"

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
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	/* The descriptor is untrusted: beside it, or allowed by the user (block_path.h). */
	ret = block_path_check(bs->filename, "extent file", name, e->name);
	if (ret < 0)
		return ret;
	/* Opening a FIFO would block forever; a directory or a character device is no disk. */
	if (stat(e->name, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return error_set(-EINVAL, "%s: extent %s is not a regular file or block device",
				 bs->filename, e->name);
	ret = host_file_open(&e->own, e->name, vmdk_host_flags(bs, !e->read_only));
	if (ret < 0)
		return error_set(ret, "%s: cannot open extent file %s: %s", bs->filename, e->name,
				 strerror(-ret));
	e->f = &e->own;
	if (fstat(e->own.fd, &st) < 0)
		return error_set(-errno, "%s: cannot stat %s", bs->filename, e->name);
	for (unsigned i = 0; i <= n; i++)
		if (ids[i].dev == st.st_dev && ids[i].ino == st.st_ino)
			return error_set(-ELOOP, "%s: extent file %s is %s", bs->filename, e->name,
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
		return error_set(-ENOTSUP, "%s: NOACCESS extents are not supported", bs->filename);
	if (s->n >= VMDK_EXTENTS_MAX)
		return error_set(-EINVAL, "%s: more than %u extents", bs->filename,
				 VMDK_EXTENTS_MAX);
	bool zero = !strcmp(type, "ZERO"), flat = !strcmp(type, "FLAT") || !strcmp(type, "VMFS");
	if (!zero && !flat && strcmp(type, "SPARSE"))
		return error_set(-ENOTSUP, "%s: extent type %s not supported", bs->filename, type);
	const char *p = line + pos;
	while (*p == ' ' || *p == '\t')
		p++;
	name[0] = 0;
	if (*p == '"') {
		const char *q = strchr(p + 1, '"');
		if (!q || (size_t)(q - p - 1) >= sizeof(name))
			return error_set(-EINVAL, "%s: bad extent file name in '%.60s'",
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
				return error_set(-EINVAL, "%s: bad extent offset in '%.60s'",
						 bs->filename, line);
		}
	}
	if ((!zero && !name[0]) || sectors > VMDK_CAPACITY_MAX || offset > VMDK_CAPACITY_MAX)
		return error_set(-EINVAL, "%s: bad extent line '%.60s'", bs->filename, line);
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
		return error_set(ret, "%s: cannot read %s: %s", bs->filename, e->name,
				 strerror(-ret));
	ret = vmdk_sparse_open(bs, e, hdr, fsize);
	if (ret < 0) {
		/* The extent's message, prefixed with the descriptor that named it. */
		char inner[400];
		snprintf(inner, sizeof(inner), "%s", error_msg());
		return error_set(ret, "%s: extent %s", bs->filename, inner);
	}
	if (e->sectors > e->capacity)
		return error_set(-EINVAL,
				 "%s: extent %s: %llu sectors listed but its capacity is %llu",
				 bs->filename, e->name, (unsigned long long)e->sectors,
				 (unsigned long long)e->capacity);
	return 1;
}

int vmdk_open_text(struct block_device *bs, struct vmdk_state *s, uint64_t fsize)
{
	struct vmdk_file_id *ids;
	struct stat st;
	int ret;

	if (fsize > VMDK_DESC_MAX)
		return error_set(-EINVAL, "%s: descriptor file of %llu bytes too large",
				 bs->filename, (unsigned long long)fsize);
	s->desc = calloc(1, fsize + 1);
	if (!s->desc)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	ret = host_file_pread(&bs->file, 0, s->desc, fsize);
	if (ret < 0)
		return error_set(ret, "%s: cannot read the descriptor: %s", bs->filename,
				 strerror(-ret));
	/* qemu-img pads the descriptor files it converts to with NULs to a whole sector. */
	for (size_t i = strlen(s->desc); i < fsize; i++)
		if (s->desc[i])
			return error_set(-EINVAL, "%s: not a VMDK descriptor (binary data)",
					 bs->filename);
	ret = vmdk_desc_parse(bs, s);
	if (ret < 0)
		return ret;
	/* One extent per line at most. */
	unsigned lines = 1, listed = 0;
	for (const char *p = s->desc; *p; p++)
		lines += *p == '\n';
	if (lines > VMDK_EXTENTS_MAX + 1024)
		lines = VMDK_EXTENTS_MAX + 1024;
	s->ext = calloc(lines, sizeof(*s->ext));
	ids = calloc(lines + 1, sizeof(*ids));
	if (!s->ext || !ids) {
		free(ids);
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	}
	if (fstat(bs->file.fd, &st) < 0) {
		free(ids);
		return error_set(-errno, "%s: cannot stat", bs->filename);
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
				ret = error_set(-EINVAL, "%s: too many extents", bs->filename);
			else
				ret = vmdk_extent_line(bs, s, line, ids);
			listed += ret > 0;
		}
		p += l + (nl ? 1 : 0);
	}
	free(ids);
	if (ret < 0)
		return ret;
	if (listed == 0) /* zero-sized extents are listed but not kept: an empty disk */
		return error_set(-EINVAL, "%s: descriptor lists no extents", bs->filename);
	return 0;
}
