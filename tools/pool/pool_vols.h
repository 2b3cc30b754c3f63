/* What a storage pool's directory holds: its volumes, each opened read-only without locks (never
 * its backing chain) to learn format, size and backing, and asked who holds it.  Shared by
 * `minivmm pool` and `minivmm vol`. */
#ifndef MINIVMM_TOOLS_POOL_VOLS_H
#define MINIVMM_TOOLS_POOL_VOLS_H

#include <stddef.h>
#include <stdint.h>

struct json_object;

struct pool_vol {
	char *name;
	char *format;	     /* NULL: not an image (problem says why) */
	uint64_t capacity;   /* the guest's disk size */
	uint64_t allocation; /* bytes the host file system gives it, extents included */
	char *backing;	     /* the backing file the image names, or NULL */
	char *holder;	     /* NULL: free; else who holds it (a running VM) */
	char *problem;
	char **extents; /* further files of the volume (VMDK extents), names in the pool */
	size_t nextents;
};

/* Every volume of the pool directory dir, sorted by name.  Files that are another volume's
 * extents are not volumes of their own. */
int pool_vols_scan(const char *dir, struct pool_vol **vols, size_t *count);
/* One volume (name checked by the caller): -ENOENT when the file is missing. */
int pool_vol_scan_one(const char *dir, const char *name, struct pool_vol *out);
void pool_vol_free(struct pool_vol *v);
void pool_vols_free(struct pool_vol *vols, size_t count);
/* The volume as a JSON object (name, format, capacity, allocation, backing, in-use). */
struct json_object *pool_vol_json(const struct pool_vol *v);

/* A table of volumes on stdout, one line each (`pool info`, `vol list`). */
void pool_vols_print(const struct pool_vol *vols, size_t count);

#endif
