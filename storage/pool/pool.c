/* Storage pool definitions: one small JSON file per pool, written atomically (a temporary file
 * linked into place, so a crash leaves the old state or the new one, and two `pool create` of
 * one name cannot both win). */
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
#include <unistd.h>

#include "lib/error.h"
#include "lib/mkdirs.h"
#include "storage/pool/pool.h"

#define POOL_DEF_MAX 65536 /* a definition is ~100 bytes; anything larger is not ours */

static int name_check(const char *what, const char *name, size_t max)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0)
		return error_set(-EINVAL, "empty %s name", what);
	if (n > max)
		return error_set(-EINVAL, "%s name '%.40s...' is longer than %zu characters", what,
				 name, max);
	if (name[0] == '.' || name[0] == '-')
		return error_set(-EINVAL, "%s name '%s' starts with '%c'", what, name, name[0]);
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return error_set(
			    -EINVAL,
			    "%s name '%s' holds '%c' (letters, digits, '.', '_', '-' only)", what,
			    name, c);
	}
	return 0;
}

int pool_name_check(const char *name)
{
	return name_check("pool", name, POOL_NAME_MAX);
}

int vol_name_check(const char *name)
{
	return name_check("volume", name, VOL_NAME_MAX);
}

int pool_config_dir(char *buf, size_t len)
{
	const char *dir = getenv("MINIVMM_CONFIG_DIR"), *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	int n;
	if (dir && dir[0])
		n = snprintf(buf, len, "%s/pools", dir);
	else if (xdg && xdg[0] == '/')
		n = snprintf(buf, len, "%s/minivmm/pools", xdg);
	else if (home && home[0] == '/')
		n = snprintf(buf, len, "%s/.config/minivmm/pools", home);
	else
		return error_set(-ENOENT, "no config directory: set HOME, XDG_CONFIG_HOME or "
					  "MINIVMM_CONFIG_DIR");
	if (n < 0 || (size_t)n >= len)
		return error_set(-ENAMETOOLONG, "config directory path too long");
	return 0;
}

static int def_file(const char *name, char *buf, size_t len)
{
	char dir[PATH_MAX];
	int ret = pool_config_dir(dir, sizeof(dir));
	if (ret < 0)
		return ret;
	if (snprintf(buf, len, "%s/%s.json", dir, name) >= (int)len)
		return error_set(-ENAMETOOLONG, "pool %s: definition path too long", name);
	return 0;
}

/* Read and check one definition: its path (malloc'ed). */
static int def_read(const char *name, char **path)
{
	char file[PATH_MAX];
	int ret = def_file(name, file, sizeof(file));
	if (ret < 0)
		return ret;
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? error_set(-ENOENT, "no pool named '%s'", name)
				       : error_set(-errno, "%s: %s", file, strerror(errno));
	char *text = malloc(POOL_DEF_MAX + 1);
	ssize_t n = text ? read(fd, text, POOL_DEF_MAX + 1) : -1;
	int saved = errno;
	close(fd);
	if (n < 0 || n > POOL_DEF_MAX) {
		free(text);
		return text ? error_set(n < 0 ? -saved : -EFBIG, "%s: %s", file,
					n < 0 ? strerror(saved) : "too large for a pool definition")
			    : error_set(-ENOMEM, "out of memory");
	}
	text[n] = 0;
	struct json_object *def = json_tokener_parse(text);
	free(text);
	struct json_object *jn, *jt, *jp;
	const char *p = NULL;
	if (def && json_object_object_get_ex(def, "name", &jn) &&
	    json_object_object_get_ex(def, "type", &jt) &&
	    json_object_object_get_ex(def, "path", &jp) &&
	    json_object_is_type(jn, json_type_string) &&
	    json_object_is_type(jp, json_type_string) &&
	    !strcmp(json_object_get_string(jn), name) &&
	    !strcmp(json_object_get_string(jt) ? json_object_get_string(jt) : "", "dir"))
		p = json_object_get_string(jp);
	if (!p || p[0] != '/') {
		json_object_put(def);
		return error_set(-EINVAL,
				 "%s: not a valid pool definition (name, type \"dir\", "
				 "absolute path)",
				 file);
	}
	*path = strdup(p);
	json_object_put(def);
	return *path ? 0 : error_set(-ENOMEM, "out of memory");
}

int pool_path(const char *name, char **path)
{
	int ret = pool_name_check(name);
	return ret < 0 ? ret : def_read(name, path);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void pool_list_free(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

int pool_list(char ***names, size_t *count)
{
	char dir[PATH_MAX];
	*names = NULL;
	*count = 0;
	int ret = pool_config_dir(dir, sizeof(dir));
	if (ret < 0)
		return ret;
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : error_set(-errno, "%s: %s", dir, strerror(errno));
	struct dirent *e;
	char **v = NULL;
	size_t n = 0;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len <= 5 || strcmp(e->d_name + len - 5, ".json"))
			continue;
		char *name = strndup(e->d_name, len - 5);
		char **nv = name ? realloc(v, (n + 1) * sizeof(*v)) : NULL;
		if (!nv) {
			free(name);
			closedir(d);
			pool_list_free(v, n);
			return error_set(-ENOMEM, "out of memory");
		}
		v = nv;
		if (pool_name_check(name) < 0) { /* someone else's file */
			free(name);
			continue;
		}
		v[n++] = name;
	}
	closedir(d);
	error_clear();
	if (n)
		qsort(v, n, sizeof(*v), cmp_names);
	*names = v;
	*count = n;
	return 0;
}

/* Write the definition to a temporary file, then link it into place: link() refuses an existing
 * name, so the check for a taken name and the write are one step. */
static int def_write(const char *name, const char *path)
{
	char dir[PATH_MAX], file[PATH_MAX], tmp[PATH_MAX + 32];
	int ret = pool_config_dir(dir, sizeof(dir));
	if (ret < 0 || (ret = def_file(name, file, sizeof(file))) < 0)
		return ret;
	if ((ret = mkdirs(dir, 0700)) < 0)
		return ret;
	snprintf(tmp, sizeof(tmp), "%s/.%s.%d.tmp", dir, name, (int)getpid());
	struct json_object *def = json_object_new_object();
	json_object_object_add(def, "name", json_object_new_string(name));
	json_object_object_add(def, "type", json_object_new_string("dir"));
	json_object_object_add(def, "path", json_object_new_string(path));
	const char *text = json_object_to_json_string_ext(def, JSON_C_TO_STRING_PRETTY);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	size_t len = strlen(text);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
	    fsync(fd) < 0) {
		ret =
		    error_set(errno ? -errno : -EIO, "%s: %s", tmp, strerror(errno ? errno : EIO));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		json_object_put(def);
		return ret;
	}
	close(fd);
	json_object_put(def);
	if (link(tmp, file) < 0) {
		ret = errno == EEXIST ? error_set(-EEXIST, "a pool named '%s' exists", name)
				      : error_set(-errno, "%s: %s", file, strerror(errno));
		unlink(tmp);
		return ret;
	}
	unlink(tmp);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

int pool_define(const char *name, const char *dir)
{
	int ret = pool_name_check(name);
	if (ret < 0)
		return ret;
	if (!dir || !dir[0])
		return error_set(-EINVAL, "pool %s: empty directory", name);
	char abs[PATH_MAX];
	if (dir[0] != '/') {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd)))
			return error_set(-errno, "getcwd: %s", strerror(errno));
		if (snprintf(abs, sizeof(abs), "%s/%s", cwd, dir) >= (int)sizeof(abs))
			return error_set(-ENAMETOOLONG, "%s: path too long", dir);
	} else if (snprintf(abs, sizeof(abs), "%s", dir) >= (int)sizeof(abs)) {
		return error_set(-ENAMETOOLONG, "%s: path too long", dir);
	}
	if ((ret = mkdirs(abs, 0755)) < 0)
		return ret;
	char real[PATH_MAX];
	if (!realpath(abs, real))
		return error_set(-errno, "%s: %s", abs, strerror(errno));
	/* One directory, one pool: two names for the same files would let a volume be deleted
	 * through one while a VM uses it through the other without either knowing. */
	char **names;
	size_t n;
	if ((ret = pool_list(&names, &n)) < 0)
		return ret;
	for (size_t i = 0; i < n && !ret; i++) {
		char *other = NULL;
		if (def_read(names[i], &other) == 0 && !strcmp(other, real))
			ret = error_set(-EEXIST, "%s is already pool '%s'", real, names[i]);
		free(other);
	}
	pool_list_free(names, n);
	if (ret < 0)
		return ret;
	error_clear();
	return def_write(name, real);
}

int pool_undefine(const char *name)
{
	char file[PATH_MAX];
	int ret = pool_name_check(name);
	if (ret < 0 || (ret = def_file(name, file, sizeof(file))) < 0)
		return ret;
	if (unlink(file) < 0)
		return errno == ENOENT ? error_set(-ENOENT, "no pool named '%s'", name)
				       : error_set(-errno, "%s: %s", file, strerror(errno));
	return 0;
}

int pool_volume_split(const char *spec, char **pool, char **vol)
{
	const char *slash = spec ? strchr(spec, '/') : NULL;
	*pool = *vol = NULL;
	if (!slash)
		return error_set(-EINVAL, "'%s': a volume is named POOL/VOLUME", spec ? spec : "");
	*pool = strndup(spec, slash - spec);
	*vol = strdup(slash + 1);
	int ret = !*pool || !*vol ? error_set(-ENOMEM, "out of memory") : 0;
	if (!ret && (ret = pool_name_check(*pool)) == 0)
		ret = vol_name_check(*vol);
	if (ret < 0) {
		free(*pool);
		free(*vol);
		*pool = *vol = NULL;
	}
	return ret;
}

int pool_volume_path(const char *spec, char **path)
{
	char *pool, *vol, *dir = NULL;
	int ret = pool_volume_split(spec, &pool, &vol);
	if (ret < 0)
		return ret;
	if ((ret = def_read(pool, &dir)) == 0) {
		if (asprintf(path, "%s/%s", dir, vol) < 0)
			ret = error_set(-ENOMEM, "out of memory");
	}
	free(dir);
	free(pool);
	free(vol);
	return ret;
}

const char *pool_vol_format(const char *name)
{
	static const char *const map[][2] = {
	    {".qcow2", "qcow2"}, {".vdi", "vdi"},   {".vmdk", "vmdk"},
	    {".vhd", "vpc"},	 {".vhdx", "vhdx"}, {".hdd", "parallels"},
	    {".img", "raw"},	 {".raw", "raw"},   {".iso", "raw"},
	};
	const char *dot = strrchr(name, '.');
	for (size_t i = 0; dot && i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcasecmp(dot, map[i][0]))
			return map[i][1];
	return NULL;
}
