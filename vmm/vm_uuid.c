/* STATE/uuids.json: the UUIDs of a VM's disk files whose format has none (see vm_uuid.h). */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/vm_path_map.h"
#include "vmm/vm_uuid.h"
#include "lib/uuid.h"
#include "lib/error.h"

static int vm_uuid_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int vm_uuid_parse(const char *s, uint8_t uuid[16])
{
	unsigned k = 0;
	/* Stops at the first wrong character, so a short string is never read past its NUL. */
	for (unsigned i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			continue;
		}
		int v = vm_uuid_hex(s[i]);
		if (v < 0)
			return -EINVAL;
		uuid[k / 2] = (uint8_t)(k % 2 ? uuid[k / 2] | v : v << 4);
		k++;
	}
	return s[36] ? -EINVAL : 0;
}

void vm_uuid_format(const uint8_t u[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

static bool vm_uuid_valid(const char *s)
{
	uint8_t u[16];
	return vm_uuid_parse(s, u) == 0;
}

static const struct vm_path_map vm_uuid_map = {
    .name = "uuids.json",
    .value = "a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
    .fix = "the guest then sees new disk UUIDs",
    .valid = vm_uuid_valid,
};

/* Another recorded name of the same file (a hard link): its UUID, so that the two names cannot
 * be attached together. */
static bool vm_uuid_same_file(json_object *o, const char *real, uint8_t uuid[16])
{
	struct stat me, st;
	if (stat(real, &me) < 0)
		return false;
	json_object_object_foreach(o, key, val)
	{
		if (stat(key, &st) == 0 && st.st_dev == me.st_dev && st.st_ino == me.st_ino)
			return vm_uuid_parse(json_object_get_string(val), uuid) == 0;
	}
	return false;
}

int vm_uuid_check(const char *dir)
{
	return vm_path_map_check(&vm_uuid_map, dir);
}

int vm_uuid_get(const char *dir, const char *real, uint8_t uuid[16], bool *created)
{
	char text[37];
	json_object *o = NULL, *v;
	bool isnew = false;
	/* Serialises read-modify-write with anything else using this state directory. */
	int dfd = vm_path_map_lock(dir);
	if (dfd < 0)
		return dfd;
	int ret = vm_path_map_load(&vm_uuid_map, dir, &o);
	if (!ret && json_object_object_get_ex(o, real, &v)) {
		vm_uuid_parse(json_object_get_string(v), uuid); /* checked by vm_path_map_load */
	} else if (!ret) {
		isnew = true;
		if (!vm_uuid_same_file(o, real, uuid) && (ret = uuid_random_v4(uuid)) < 0)
			error_set(ret, "cannot get random bytes for a UUID: %s", strerror(-ret));
		vm_uuid_format(uuid, text);
		if (!ret && json_object_object_add(o, real, json_object_new_string(text)) < 0) {
			ret = error_set(-ENOMEM, "%s/uuids.json: out of memory", dir);
		}
		if (!ret)
			ret = vm_path_map_save(&vm_uuid_map, dfd, dir, o);
	}
	json_object_put(o);
	close(dfd); /* drops the flock */
	if (created)
		*created = isnew;
	return ret;
}
