/* Control verbs of the VM's storage: CD-ROM media change.
 *   minivmm control NAME cdrom-eject [--force] [DRIVE]
 *   minivmm control NAME cdrom-insert ISO [DRIVE]
 * DRIVE counts the CD-ROM drives from 0 in command-line order (default 0). --force ejects even
 * when the guest locked the tray. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "devices/storage.h"
#include "devices/device.h"
#include "lib/error.h"

/* The string arguments of a request, at most `max`. */
static int storage_args(struct json_object *args, const char **out, int max)
{
	int n = args && json_object_is_type(args, json_type_array)
		    ? (int)json_object_array_length(args)
		    : 0;
	if (n > max)
		return error_set(-EINVAL, "too many arguments");
	for (int i = 0; i < n; i++) {
		struct json_object *a = json_object_array_get_idx(args, i);
		if (!json_object_is_type(a, json_type_string))
			return error_set(-EINVAL, "argument %d is not a string", i + 1);
		out[i] = json_object_get_string(a);
	}
	return n;
}

static int storage_drive_index(const char *s, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || s[0] == '-' || v > 255)
		return error_set(-EINVAL, "bad drive number '%.40s'", s);
	*out = (unsigned)v;
	return 0;
}

static int verb_cdrom_eject(void *opaque, struct json_object *args, struct json_object *result)
{
	const char *a[2];
	unsigned drive = 0;
	bool force = false;
	int n = storage_args(args, a, 2);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		if (!strcmp(a[i], "--force"))
			force = true;
		else if (storage_drive_index(a[i], &drive) < 0)
			return -EINVAL;
	}
	int ret = storage_change_medium(opaque, drive, NULL, force);
	if (ret == 0)
		json_object_object_add(result, "drive", json_object_new_int((int)drive));
	return ret;
}

static int verb_cdrom_insert(void *opaque, struct json_object *args, struct json_object *result)
{
	const char *a[2];
	unsigned drive = 0;
	int n = storage_args(args, a, 2);
	if (n < 0)
		return n;
	if (n < 1 || !a[0][0])
		return error_set(-EINVAL, "usage: cdrom-insert ISO [DRIVE]");
	if (n == 2 && storage_drive_index(a[1], &drive) < 0)
		return -EINVAL;
	int ret = storage_change_medium(opaque, drive, a[0], false);
	if (ret == 0) {
		json_object_object_add(result, "drive", json_object_new_int((int)drive));
		json_object_object_add(result, "medium", json_object_new_string(a[0]));
	}
	return ret;
}

int storage_register_verbs(struct storage *s, const struct device_env *env)
{
	int r = device_add_verb(env, "cdrom-eject", "cdrom-eject [--force] [DRIVE]",
				verb_cdrom_eject, s);
	return r ? r
		 : device_add_verb(env, "cdrom-insert", "cdrom-insert ISO [DRIVE]",
				   verb_cdrom_insert, s);
}
