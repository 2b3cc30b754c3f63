/* STATE/uuids.json: the UUIDs of a VM's disk files whose format has none (see vm_uuid.h). */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/vm_uuid.h"

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

static int vm_uuid_random(uint8_t u[16])
{
	size_t got = 0;
	while (got < 16) {
		ssize_t n = getrandom(u + got, 16 - got, 0);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			got += (size_t)n;
	}
	u[6] = (u[6] & 0x0f) | 0x40; /* version 4: random */
	u[8] = (u[8] & 0x3f) | 0x80; /* RFC 4122 variant */
	return 0;
}

/* A key from the file, printable and short enough for a one-line message. */
static const char *vm_uuid_show(const char *s, char *buf, size_t len)
{
	size_t n = 0;
	for (; s[n] && n + 4 < len; n++)
		buf[n] = (unsigned char)s[n] < 0x20 || s[n] == 0x7f ? '?' : s[n];
	if (s[n]) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = 0;
	return buf;
}

static int vm_uuid_bad(const char *path, char *err, size_t errlen, const char *why, const char *key)
{
	char shown[64];
	snprintf(err, errlen,
		 "%s: %s%s%s%s (fix or delete the file; the guest then sees new disk UUIDs)", path,
		 key ? "'" : "", key ? vm_uuid_show(key, shown, sizeof(shown)) : "",
		 key ? "': " : "", why);
	return -EINVAL;
}

static int vm_uuid_validate(const char *path, json_object *o, char *err, size_t errlen)
{
	if (!json_object_is_type(o, json_type_object))
		return vm_uuid_bad(path, err, errlen, "not a JSON object", NULL);
	json_object_object_foreach(o, key, val)
	{
		uint8_t u[16];
		if (key[0] != '/')
			return vm_uuid_bad(path, err, errlen, "not an absolute file name", key);
		if (!json_object_is_type(val, json_type_string) ||
		    vm_uuid_parse(json_object_get_string(val), u) < 0)
			return vm_uuid_bad(path, err, errlen,
					   "not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
					   key);
	}
	return 0;
}

static int vm_uuid_read(int fd, const char *path, char **out, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return vm_uuid_bad(path, err, errlen, "not a regular file", NULL);
	if ((uint64_t)st.st_size > VM_UUID_FILE_MAX)
		return vm_uuid_bad(path, err, errlen, "larger than 4 MiB", NULL);
	char *buf = malloc((size_t)st.st_size + 1);
	size_t n = 0;
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e));
			return -e;
		}
		if (r == 0)
			break; /* shrunk meanwhile: parse what is there */
		n += (size_t)r;
	}
	buf[n] = 0;
	*out = buf;
	*len = n;
	return 0;
}

/* Load and check the file; no file gives an empty object. */
static int vm_uuid_load(const char *path, json_object **out, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	*out = NULL;
	/* O_NONBLOCK: a FIFO in its place must not hang the start (it is refused below). */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT) {
		*out = json_object_new_object();
		return *out ? 0 : -ENOMEM;
	}
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
		return -e;
	}
	int ret = vm_uuid_read(fd, path, &buf, &len, err, errlen);
	close(fd);
	if (ret < 0)
		return ret;
	json_tokener *tok = json_tokener_new();
	json_object *o = tok ? json_tokener_parse_ex(tok, buf, (int)len) : NULL;
	size_t end = tok ? json_tokener_get_parse_end(tok) : 0;
	if (!tok) {
		snprintf(err, errlen, "%s: out of memory", path);
		ret = -ENOMEM;
	} else if (!o)
		ret = vm_uuid_bad(path, err, errlen, "not JSON (truncated or malformed)", NULL);
	else if (end + strspn(buf + end, " \t\r\n") != len) /* a NUL byte stops strspn too */
		ret = vm_uuid_bad(path, err, errlen, "not JSON (data after the object)", NULL);
	else
		ret = vm_uuid_validate(path, o, err, errlen);
	if (tok)
		json_tokener_free(tok);
	free(buf);
	if (ret < 0)
		json_object_put(o);
	else
		*out = o;
	return ret;
}

/* tmp + fsync + rename + fsync of the directory: a UUID handed to a guest survives a crash. */
static int vm_uuid_save(int dfd, const char *path, json_object *o, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_NOSLASHESCAPE);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	if (!s) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t len = strlen(s), done = 0;
	int ret = fd < 0 ? -errno : 0;
	while (!ret && done < len) {
		ssize_t r = write(fd, s + done, len - done);
		if (r < 0 && errno != EINTR)
			ret = -errno;
		else if (r > 0)
			done += (size_t)r;
	}
	if (!ret && (write(fd, "\n", 1) != 1 || fsync(fd) < 0))
		ret = errno ? -errno : -EIO;
	if (fd >= 0 && close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (!ret && fsync(dfd) < 0)
		ret = -errno;
	if (ret < 0) {
		if (fd >= 0)
			unlink(tmp);
		snprintf(err, errlen, "%s: cannot write: %s", path, strerror(-ret));
	}
	return ret;
}

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

static int vm_uuid_file(const char *dir, char *path, char *err, size_t errlen)
{
	if (snprintf(path, PATH_MAX, "%s/uuids.json", dir) >= PATH_MAX) {
		snprintf(err, errlen, "%s: state directory path too long", dir);
		return -ENAMETOOLONG;
	}
	return 0;
}

int vm_uuid_check(const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX];
	json_object *o = NULL;
	int ret = vm_uuid_file(dir, path, err, errlen);
	if (!ret)
		ret = vm_uuid_load(path, &o, err, errlen);
	json_object_put(o);
	return ret;
}

int vm_uuid_get(const char *dir, const char *real, uint8_t uuid[16], bool *created, char *err,
		size_t errlen)
{
	char path[PATH_MAX], text[37];
	json_object *o = NULL, *v;
	bool isnew = false;
	int ret = vm_uuid_file(dir, path, err, errlen);
	if (ret < 0)
		return ret;
	/* Serialises read-modify-write with anything else using this state directory. */
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(-ret));
		return ret;
	}
	while ((ret = flock(dfd, LOCK_EX)) < 0 && errno == EINTR)
		;
	if (ret < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: cannot lock: %s", dir, strerror(-ret));
	}
	if (!ret)
		ret = vm_uuid_load(path, &o, err, errlen);
	if (!ret && json_object_object_get_ex(o, real, &v)) {
		vm_uuid_parse(json_object_get_string(v), uuid); /* checked by vm_uuid_load */
	} else if (!ret) {
		isnew = true;
		if (!vm_uuid_same_file(o, real, uuid) && (ret = vm_uuid_random(uuid)) < 0)
			snprintf(err, errlen, "cannot get random bytes for a UUID: %s",
				 strerror(-ret));
		vm_uuid_format(uuid, text);
		if (!ret && json_object_object_add(o, real, json_object_new_string(text)) < 0) {
			snprintf(err, errlen, "%s: out of memory", path);
			ret = -ENOMEM;
		}
		if (!ret)
			ret = vm_uuid_save(dfd, path, o, err, errlen);
	}
	json_object_put(o);
	close(dfd); /* drops the flock */
	if (created)
		*created = isnew;
	return ret;
}
