/* STATE/formats.json: the probed format of each disk file a VM attached (see vm_disk_format.h). */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/core/block.h"
#include "vmm/vm_disk_format.h"
#include "vmm/vm_path_map.h"
#include "lib/error.h"

static bool vm_disk_format_valid(const char *s)
{
	return strlen(s) < VM_DISK_FORMAT_NAME_MAX && block_driver_find(s);
}

static const struct vm_path_map vm_disk_format_map = {
    .name = "formats.json",
    .value = "a disk format (raw, qcow2, vdi, vmdk, vpc, vhdx, parallels)",
    .fix = "the disks are then probed again",
    .valid = vm_disk_format_valid,
};

int vm_disk_format_check(const char *dir)
{
	return vm_path_map_check(&vm_disk_format_map, dir);
}

/* The recorded format of `real`, or of another recorded name of the same file (a hard link). */
static const char *vm_disk_format_find(json_object *o, const char *real)
{
	struct stat me, st;
	json_object *v;
	if (json_object_object_get_ex(o, real, &v))
		return json_object_get_string(v);
	if (stat(real, &me) < 0)
		return NULL;
	json_object_object_foreach(o, key, val)
	{
		if (stat(key, &st) == 0 && st.st_dev == me.st_dev && st.st_ino == me.st_ino)
			return json_object_get_string(val);
	}
	return NULL;
}

int vm_disk_format_get(const char *dir, const char *real, char fmt[VM_DISK_FORMAT_NAME_MAX])
{
	json_object *o = NULL;
	int ret = vm_path_map_load(&vm_disk_format_map, dir, &o);
	if (ret < 0)
		return ret;
	const char *f = vm_disk_format_find(o, real);
	if (f)
		snprintf(fmt, VM_DISK_FORMAT_NAME_MAX, "%s", f); /* checked: shorter */
	json_object_put(o);
	return f ? 0 : -ENOENT;
}

int vm_disk_format_record(const char *dir, const char *real, const char *fmt)
{
	json_object *o = NULL;
	if (!vm_disk_format_valid(fmt))
		return error_set(-EINVAL, "%s: unknown disk format '%s'", real, fmt);
	/* Serialises read-modify-write with anything else using this state directory. */
	int dfd = vm_path_map_lock(dir);
	if (dfd < 0)
		return dfd;
	int ret = vm_path_map_load(&vm_disk_format_map, dir, &o);
	if (!ret && !json_object_object_get_ex(o, real, NULL)) {
		const char *other = vm_disk_format_find(o, real);
		if (json_object_object_add(o, real, json_object_new_string(other ? other : fmt)) <
		    0) {
			ret = error_set(-ENOMEM, "%s/formats.json: out of memory", dir);
		}
		if (!ret)
			ret = vm_path_map_save(&vm_disk_format_map, dfd, dir, o);
	}
	json_object_put(o);
	close(dfd); /* drops the flock */
	return ret;
}
