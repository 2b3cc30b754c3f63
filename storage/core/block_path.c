/* Which host files an image may name (see block_path.h). */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/core/block.h"
#include "storage/core/block_path.h"

struct block_path_allowed {
	char *real;
	bool dir;
	struct block_path_allowed *next;
};

static pthread_mutex_t block_path_lock = PTHREAD_MUTEX_INITIALIZER;
static struct block_path_allowed *block_path_list;

static int block_path_allow(const char *path, bool dir)
{
	struct block_path_allowed *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->real = realpath(path, NULL);
	if (!a->real) {
		int ret = -errno;
		free(a);
		return ret;
	}
	a->dir = dir;
	pthread_mutex_lock(&block_path_lock);
	a->next = block_path_list;
	block_path_list = a;
	pthread_mutex_unlock(&block_path_lock);
	return 0;
}

int block_path_allow_file(const char *path)
{
	return block_path_allow(path, false);
}

int block_path_allow_dir(const char *dir)
{
	return block_path_allow(dir, true);
}

void block_path_allow_clear(void)
{
	pthread_mutex_lock(&block_path_lock);
	while (block_path_list) {
		struct block_path_allowed *a = block_path_list;
		block_path_list = a->next;
		free(a->real);
		free(a);
	}
	pthread_mutex_unlock(&block_path_lock);
}

/* Is `real` the directory `dir` itself or below it (both real paths)? */
static bool block_path_under(const char *real, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 1 && dir[0] == '/')
		return true;
	return !strncmp(real, dir, n) && (real[n] == '/' || real[n] == '\0');
}

static bool block_path_allowed(const char *real)
{
	bool ok = false;

	pthread_mutex_lock(&block_path_lock);
	for (struct block_path_allowed *a = block_path_list; a && !ok; a = a->next)
		ok = a->dir ? block_path_under(real, a->real) : !strcmp(real, a->real);
	pthread_mutex_unlock(&block_path_lock);
	return ok;
}

/* The real path of the directory holding `image` (as the caller named it), malloc'ed. */
static char *block_path_image_dir(const char *image)
{
	const char *slash = strrchr(image, '/');
	char dir[PATH_MAX];

	if (!slash)
		return realpath(".", NULL);
	if (slash == image)
		return strdup("/");
	if ((size_t)(slash - image) >= sizeof(dir))
		return NULL;
	memcpy(dir, image, (size_t)(slash - image));
	dir[slash - image] = '\0';
	return realpath(dir, NULL);
}

int block_path_check(const char *image, const char *what, const char *named, const char *path)
{
	char *real = realpath(path, NULL), *dir = NULL, *where = NULL;
	struct stat st;
	int ret = 0;

	/* A name that resolves to nothing opens nothing: the open reports it. */
	if (!real || stat(real, &st) < 0)
		goto out;
	if (block_path_allowed(real))
		goto out;
	where = strdup(real);
	char *slash = where ? strrchr(where, '/') : NULL;
	if (slash)
		*(slash == where ? slash + 1 : slash) = '\0';
	/* Say where a name leads when it is not plain (a symlink, "..", a relative path). */
	bool plain = !strcmp(named, real);
	if (S_ISBLK(st.st_mode) || S_ISCHR(st.st_mode)) {
		ret = error_set(-EPERM,
				"%s: refusing %s %s%s%s%s named by the image (a device node; allow "
				"it with --allow-backing-path %s)",
				image, what, named, plain ? "" : " (= ", plain ? "" : real,
				plain ? "" : ")", where ? where : "DIR");
		goto out;
	}
	dir = block_path_image_dir(image);
	if (!dir || !block_path_under(real, dir) || !strcmp(real, dir))
		ret = error_set(-EPERM,
				"%s: refusing %s %s%s%s%s named by the image (outside %s's "
				"directory; allow it with --allow-backing-path %s)",
				image, what, named, plain ? "" : " (= ", plain ? "" : real,
				plain ? "" : ")", image, where ? where : "DIR");
out:
	free(real);
	free(dir);
	free(where);
	return ret;
}

/* The real directory of `path` (malloc'ed), or NULL with errno set. */
static char *block_path_real_dir(const char *path)
{
	char *copy = strdup(path), *real;

	if (!copy)
		return NULL;
	real = realpath(dirname(copy), NULL);
	free(copy);
	return real;
}

int block_image_path_allowed(const char *image, const char *name, bool create, char **path)
{
	char *image_dir = NULL, *joined = NULL, *real = NULL;
	struct stat st;
	int ret = 0;

	*path = NULL;
	if (!name[0])
		return error_set(-EINVAL, "%s: names an empty file name", image);
	image_dir = block_path_real_dir(image);
	if (!image_dir) {
		ret = error_set(-errno, "%s: cannot resolve its directory: %s", image,
				strerror(errno));
		goto out;
	}
	const char *slash = strrchr(image, '/');
	if (name[0] == '/' || !slash)
		joined = strdup(name);
	else if (asprintf(&joined, "%.*s/%s", (int)(slash - image), image, name) < 0)
		joined = NULL;
	if (!joined) {
		ret = error_set(-ENOMEM, "%s: out of memory", image);
		goto out;
	}
	if (create && stat(joined, &st) < 0 && errno == ENOENT) {
		/* A file still to be made: its directory must be the image's (or below it), or one
		 * the user allowed. */
		char *dir = block_path_real_dir(joined);
		const char *base = strrchr(joined, '/') ? strrchr(joined, '/') + 1 : joined;
		if (!dir) {
			ret = error_set(-errno, "%s: cannot resolve '%s': %s", image, name,
					strerror(errno));
			goto out;
		}
		if ((!block_path_under(dir, image_dir) && !block_path_allowed(dir)) ||
		    !strcmp(base, "..") || !strcmp(base, ".") ||
		    asprintf(&real, "%s/%s", dir, base) < 0)
			real = NULL;
		free(dir);
		if (!real) {
			ret = error_set(-EPERM,
					"%s: refusing '%s': a file an image names must be in the "
					"image's own directory (or under --allow-backing-path DIR)",
					image, name);
			goto out;
		}
		*path = real;
		real = NULL;
		goto out;
	}
	real = realpath(joined, NULL);
	if (!real) {
		ret = error_set(-errno, "%s: cannot open '%s': %s", image, joined, strerror(errno));
		goto out;
	}
	/* The one rule for every name an image holds (directory, device nodes, allowances). */
	if ((ret = block_path_check(image, "data file", name, real)) < 0)
		goto out;
	if (stat(real, &st) < 0) {
		ret = error_set(-errno, "%s: cannot open '%s': %s", image, real, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = error_set(-EPERM, "%s: refusing '%s': not a regular file", image, name);
		goto out;
	}
	*path = real;
	real = NULL;
out:
	free(image_dir);
	free(joined);
	free(real);
	return ret;
}
