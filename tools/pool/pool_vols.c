/* Scanning a pool's directory for its volumes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "lib/error.h"
#include "storage/core/block.h"
#include "storage/core/disk_lock.h"
#include "storage/pool/pool.h"
#include "tools/pool/pool_vols.h"
#include "tools/size.h"

void pool_vol_free(struct pool_vol *v)
{
	free(v->name);
	free(v->format);
	free(v->backing);
	free(v->holder);
	free(v->problem);
	for (size_t i = 0; i < v->nextents; i++)
		free(v->extents[i]);
	free(v->extents);
	memset(v, 0, sizeof(*v));
}

void pool_vols_free(struct pool_vol *vols, size_t count)
{
	for (size_t i = 0; i < count; i++)
		pool_vol_free(&vols[i]);
	free(vols);
}

static uint64_t file_allocation(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat st;
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
	    lstat(path, &st) < 0)
		return 0;
	return (uint64_t)st.st_blocks * 512;
}

/* The further files a VMDK descriptor names that lie in the pool's directory itself, as names in
 * the pool (its own file left out).  An extent in a subdirectory is not a file of the pool: taking
 * its last component would name (and `vol delete` remove) another file of the pool. */
static void vol_extents(struct pool_vol *v, const char *dir, struct json_object *info)
{
	size_t dlen = strlen(dir);
	struct json_object *ext;
	if (!json_object_object_get_ex(info, "extents", &ext) ||
	    !json_object_is_type(ext, json_type_array))
		return;
	size_t n = json_object_array_length(ext);
	v->extents = calloc(n ? n : 1, sizeof(*v->extents));
	for (size_t i = 0; v->extents && i < n; i++) {
		struct json_object *e = json_object_array_get_idx(ext, i), *f;
		if (!json_object_object_get_ex(e, "filename", &f))
			continue;
		const char *name = json_object_get_string(f);
		if (name && !strncmp(name, dir, dlen) && name[dlen] == '/')
			name += dlen + 1;
		if (name && name[0] && !strchr(name, '/') && strcmp(name, v->name))
			v->extents[v->nextents++] = strdup(name);
	}
}

int pool_vol_scan_one(const char *dir, const char *name, struct pool_vol *v)
{
	char path[PATH_MAX];
	struct stat st;
	memset(v, 0, sizeof(*v));
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return error_set(-ENAMETOOLONG, "%s/%s: path too long", dir, name);
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? error_set(-ENOENT, "no volume '%s' in %s", name, dir)
				       : error_set(-errno, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return error_set(-EINVAL, "%s: not a regular file", path);
	v->name = strdup(name);
	if (!v->name)
		return error_set(-ENOMEM, "out of memory");
	v->allocation = (uint64_t)st.st_blocks * 512;
	if (disk_lock_path_busy(path) == -EBUSY)
		v->holder = strdup(error_msg());
	/* Read-only, no locks, no backing chain: looking must not disturb a VM using it. */
	/* A name that says its format is opened as that format, never probed (a fixed VHD has no
	 * header to probe, and a guest may write any header into a raw volume). */
	struct block_device *bs;
	if (block_open(path, pool_vol_format(name), BLOCK_OPEN_NO_BACKING, &bs) < 0) {
		v->problem = strdup(error_msg());
		error_clear();
		return 0;
	}
	v->format = strdup(bs->drv->name);
	v->capacity = bs->size;
	if (bs->backing_name)
		v->backing = strdup(bs->backing_name);
	struct json_object *info = json_object_new_object();
	if (block_info(bs, info) == 0)
		vol_extents(v, dir, info);
	json_object_put(info);
	block_close(bs);
	for (size_t i = 0; i < v->nextents; i++)
		if (v->extents[i])
			v->allocation += file_allocation(dir, v->extents[i]);
	error_clear();
	return 0;
}

static int cmp_vols(const void *a, const void *b)
{
	return strcmp(((const struct pool_vol *)a)->name, ((const struct pool_vol *)b)->name);
}

static bool is_extent_of_other(const struct pool_vol *vols, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < vols[i].nextents; j++)
			if (vols[i].extents[j] && !strcmp(vols[i].extents[j], name))
				return true;
	return false;
}

int pool_vols_scan(const char *dir, struct pool_vol **out, size_t *count)
{
	*out = NULL;
	*count = 0;
	DIR *d = opendir(dir);
	if (!d)
		return error_set(-errno, "%s: %s", dir, strerror(errno));
	struct pool_vol *v = NULL;
	size_t n = 0;
	struct dirent *e;
	int ret = 0;
	while (!ret && (e = readdir(d))) {
		/* Names a volume cannot have (dot files, temporary files) are not volumes. */
		if (vol_name_check(e->d_name) < 0)
			continue;
		struct pool_vol one;
		if (pool_vol_scan_one(dir, e->d_name, &one) < 0)
			continue; /* not a regular file, or gone meanwhile */
		struct pool_vol *nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			pool_vol_free(&one);
			ret = error_set(-ENOMEM, "out of memory");
			break;
		}
		v = nv;
		v[n++] = one;
	}
	closedir(d);
	if (ret < 0) {
		pool_vols_free(v, n);
		return ret;
	}
	/* Drop the extents of multi-file VMDKs: they belong to their descriptor's volume. */
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		if (is_extent_of_other(v, n, v[i].name) && !v[i].nextents)
			pool_vol_free(&v[i]);
		else
			v[kept++] = v[i];
	}
	if (kept)
		qsort(v, kept, sizeof(*v), cmp_vols);
	error_clear();
	*out = v;
	*count = kept;
	return 0;
}

struct json_object *pool_vol_json(const struct pool_vol *v)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(v->name));
	json_object_object_add(o, "format", v->format ? json_object_new_string(v->format) : NULL);
	json_object_object_add(o, "capacity", json_object_new_int64((int64_t)v->capacity));
	json_object_object_add(o, "allocation", json_object_new_int64((int64_t)v->allocation));
	json_object_object_add(o, "backing",
			       v->backing ? json_object_new_string(v->backing) : NULL);
	json_object_object_add(o, "in-use", json_object_new_boolean(v->holder != NULL));
	if (v->holder)
		json_object_object_add(o, "holder", json_object_new_string(v->holder));
	if (v->problem)
		json_object_object_add(o, "problem", json_object_new_string(v->problem));
	if (v->nextents) {
		struct json_object *a = json_object_new_array();
		for (size_t i = 0; i < v->nextents; i++)
			if (v->extents[i])
				json_object_array_add(a, json_object_new_string(v->extents[i]));
		json_object_object_add(o, "extents", a);
	}
	return o;
}

/* "PATH: in use by running VM 'vm1' (...)" -> "vm1"; else "yes". */
static const char *holder_short(const char *holder, char *buf, size_t len)
{
	const char *p = holder ? strstr(holder, "VM '") : NULL;
	const char *q = p ? strchr(p + 4, '\'') : NULL;
	if (!holder)
		return "-";
	if (!p || !q)
		return "yes";
	snprintf(buf, len, "%.*s", (int)(q - p - 4), p + 4);
	return buf;
}

void pool_vols_print(const struct pool_vol *vols, size_t n)
{
	printf("%-28s %-9s %-10s %-10s %-20s %s\n", "VOLUME", "FORMAT", "CAPACITY", "ALLOCATED",
	       "BACKING", "IN USE BY");
	for (size_t i = 0; i < n; i++) {
		const struct pool_vol *v = &vols[i];
		char c[32], a[32], h[96];
		printf("%-28s %-9s %-10s %-10s %-20s %s\n", v->name, v->format ? v->format : "?",
		       v->format ? size_format(v->capacity, c, sizeof(c)) : "-",
		       size_format(v->allocation, a, sizeof(a)), v->backing ? v->backing : "-",
		       holder_short(v->holder, h, sizeof(h)));
	}
}
