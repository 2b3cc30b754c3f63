/* State-directory files mapping disk files (real paths) to strings (see vm_path_map.h). */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/vm_path_map.h"
#include "lib/error.h"

/* A key from the file, printable and short enough for a one-line message. */
static const char *vm_path_map_show(const char *s, char *buf, size_t len)
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

static int vm_path_map_bad(const struct vm_path_map *m, const char *path, const char *why,
			   const char *key)
{
	char shown[64];
	return error_set(-EINVAL, "%s: %s%s%s%s (fix or delete the file; %s)", path, key ? "'" : "",
			 key ? vm_path_map_show(key, shown, sizeof(shown)) : "", key ? "': " : "",
			 why, m->fix);
}

static int vm_path_map_validate(const struct vm_path_map *m, const char *path, json_object *o)
{
	char why[128];
	if (!json_object_is_type(o, json_type_object))
		return vm_path_map_bad(m, path, "not a JSON object", NULL);
	json_object_object_foreach(o, key, val)
	{
		if (key[0] != '/')
			return vm_path_map_bad(m, path, "not an absolute file name", key);
		if (!json_object_is_type(val, json_type_string) ||
		    !m->valid(json_object_get_string(val))) {
			snprintf(why, sizeof(why), "not %s", m->value);
			return vm_path_map_bad(m, path, why, key);
		}
	}
	return 0;
}

static int vm_path_map_read(const struct vm_path_map *m, int fd, const char *path, char **out,
			    size_t *len)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return vm_path_map_bad(m, path, "not a regular file", NULL);
	if ((uint64_t)st.st_size > VM_PATH_MAP_MAX)
		return vm_path_map_bad(m, path, "larger than 4 MiB", NULL);
	char *buf = malloc((size_t)st.st_size + 1);
	size_t n = 0;
	if (!buf)
		return error_set(-ENOMEM, "%s: out of memory", path);
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			return error_set(-e, "%s: cannot read: %s", path, strerror(e));
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

static int vm_path_map_path(const struct vm_path_map *m, const char *dir, char *path)
{
	if (snprintf(path, PATH_MAX, "%s/%s", dir, m->name) >= PATH_MAX)
		return error_set(-ENAMETOOLONG, "%s: state directory path too long", dir);
	return 0;
}

int vm_path_map_load(const struct vm_path_map *m, const char *dir, json_object **out)
{
	char path[PATH_MAX], *buf = NULL;
	size_t len = 0;
	*out = NULL;
	int ret = vm_path_map_path(m, dir, path);
	if (ret < 0)
		return ret;
	/* O_NONBLOCK: a FIFO in its place must not hang the start (it is refused below). */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT) {
		*out = json_object_new_object();
		return *out ? 0 : -ENOMEM;
	}
	if (fd < 0) {
		int e = errno;
		return error_set(-e, "%s: cannot open: %s", path, strerror(e));
	}
	ret = vm_path_map_read(m, fd, path, &buf, &len);
	close(fd);
	if (ret < 0)
		return ret;
	json_tokener *tok = json_tokener_new();
	json_object *o = tok ? json_tokener_parse_ex(tok, buf, (int)len) : NULL;
	size_t end = tok ? json_tokener_get_parse_end(tok) : 0;
	if (!tok)
		ret = error_set(-ENOMEM, "%s: out of memory", path);
	else if (!o)
		ret = vm_path_map_bad(m, path, "not JSON (truncated or malformed)", NULL);
	else if (end + strspn(buf + end, " \t\r\n") != len) /* a NUL byte stops strspn too */
		ret = vm_path_map_bad(m, path, "not JSON (data after the object)", NULL);
	else
		ret = vm_path_map_validate(m, path, o);
	if (tok)
		json_tokener_free(tok);
	free(buf);
	if (ret < 0)
		json_object_put(o);
	else
		*out = o;
	return ret;
}

/* tmp + fsync + rename + fsync of the directory: a value handed to a guest survives a crash. */
int vm_path_map_save(const struct vm_path_map *m, int dfd, const char *dir, json_object *o)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int ret = vm_path_map_path(m, dir, path);
	if (ret < 0)
		return ret;
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_NOSLASHESCAPE);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return error_set(-ENAMETOOLONG, "%s: path too long", path);
	if (!s)
		return error_set(-ENOMEM, "%s: out of memory", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t len = strlen(s), done = 0;
	ret = fd < 0 ? -errno : 0;
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
		error_set(ret, "%s: cannot write: %s", path, strerror(-ret));
	}
	return ret;
}

int vm_path_map_lock(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret;
	if (dfd < 0) {
		ret = -errno;
		return error_set(ret, "%s: %s", dir, strerror(-ret));
	}
	while ((ret = flock(dfd, LOCK_EX)) < 0 && errno == EINTR)
		;
	if (ret < 0) {
		ret = -errno;
		error_set(ret, "%s: cannot lock: %s", dir, strerror(-ret));
		close(dfd);
		return ret;
	}
	return dfd;
}

int vm_path_map_check(const struct vm_path_map *m, const char *dir)
{
	json_object *o = NULL;
	int ret = vm_path_map_load(m, dir, &o);
	json_object_put(o);
	return ret;
}
