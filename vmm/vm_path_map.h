/* Files in a VM's state directory that map each disk file the VM attached (by its real path,
 * symlinks resolved) to one string: uuids.json (vmm/vm_uuid.h) and formats.json
 * (vmm/vm_disk_format.h).
 *
 * A file is one JSON object { "/abs/real/path": "value", ... }, read whole (at most
 * VM_PATH_MAP_MAX bytes), checked whole, and written atomically (tmp + fsync + rename + fsync of
 * the directory) under an flock of the state directory, so that read-modify-write by two
 * processes cannot lose an entry. A malformed file (not a JSON object, a key that is not an
 * absolute path, a value the map refuses, too large, not a regular file) is never repaired or
 * replaced: -EINVAL and one line naming the file, the entry and the problem.
 */
#ifndef MINIVMM_VMM_VM_PATH_MAP_H
#define MINIVMM_VMM_VM_PATH_MAP_H

#include <stdbool.h>
#include <stddef.h>

struct json_object;

#define VM_PATH_MAP_MAX (4u << 20)

struct vm_path_map {
	const char *name;  /* file name in the state directory: "uuids.json" */
	const char *value; /* what every value must be, for messages: "a UUID (xxxx...)" */
	const char *fix;   /* what deleting the file does, for messages */
	bool (*valid)(const char *value);
};

/* Open the state directory and take its flock (exclusive): the fd, or -errno with a message.
 * close() drops the lock. */
int vm_path_map_lock(const char *dir);
/* Load and check dir/m->name into *out (no file: an empty object); json_object_put it. */
int vm_path_map_load(const struct vm_path_map *m, const char *dir, struct json_object **out);
/* Write o as dir/m->name; dfd is the directory from vm_path_map_lock. */
int vm_path_map_save(const struct vm_path_map *m, int dfd, const char *dir, struct json_object *o);
/* Check dir/m->name (no file is fine). */
int vm_path_map_check(const struct vm_path_map *m, const char *dir);

#endif
