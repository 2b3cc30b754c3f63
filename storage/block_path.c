/* Which host paths an image may name.
 *
 * An image file is untrusted input: a downloaded appliance whose header names /etc/shadow or
 * /dev/sda must not make minivmm open it. block_image_path_allowed() is the one place that
 * decides for a file an image names (today: a qcow2 external data file): the name is resolved
 * relative to the image's own directory, and the file must lie inside that directory once every
 * symlink is resolved, and must not be a device node.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/block.h"

/* The real directory of `path` (malloc'ed), or NULL with errno set. */
static char *block_real_dir(const char *path)
{
	char *copy = strdup(path), *real;

	if (!copy)
		return NULL;
	real = realpath(dirname(copy), NULL);
	free(copy);
	return real;
}

/* True when `path` is `dir` itself or lies below it (both real paths). */
static bool block_path_inside(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

int block_image_path_allowed(const char *image, const char *name, bool create, char **path)
{
	char *image_dir = NULL, *joined = NULL, *real = NULL;
	struct stat st;
	int ret = 0;

	*path = NULL;
	if (!name[0])
		return block_error(-EINVAL, "%s: names an empty file name", image);
	image_dir = block_real_dir(image);
	if (!image_dir) {
		ret = block_error(-errno, "%s: cannot resolve its directory: %s", image,
				  strerror(errno));
		goto out;
	}
	const char *slash = strrchr(image, '/');
	if (name[0] == '/' || !slash)
		joined = strdup(name);
	else if (asprintf(&joined, "%.*s/%s", (int)(slash - image), image, name) < 0)
		joined = NULL;
	if (!joined) {
		ret = block_error(-ENOMEM, "%s: out of memory", image);
		goto out;
	}
	if (create && stat(joined, &st) < 0 && errno == ENOENT) {
		/* A file still to be made: its directory must be the image's (or below it). */
		char *dir = block_real_dir(joined);
		const char *base = strrchr(joined, '/') ? strrchr(joined, '/') + 1 : joined;
		if (!dir) {
			ret = block_error(-errno, "%s: cannot resolve '%s': %s", image, name,
					  strerror(errno));
			goto out;
		}
		if (!block_path_inside(dir, image_dir) || !strcmp(base, "..") ||
		    !strcmp(base, ".") || asprintf(&real, "%s/%s", dir, base) < 0)
			real = NULL;
		free(dir);
		if (!real) {
			ret = block_error(-EPERM,
					  "%s: refusing '%s': a file an image names must be in the "
					  "image's own directory",
					  image, name);
			goto out;
		}
		*path = real;
		real = NULL;
		goto out;
	}
	real = realpath(joined, NULL);
	if (!real) {
		ret =
		    block_error(-errno, "%s: cannot open '%s': %s", image, joined, strerror(errno));
		goto out;
	}
	if (!block_path_inside(real, image_dir)) {
		ret = block_error(-EPERM,
				  "%s: refusing '%s' (%s): a file an image names must be in the "
				  "image's own directory",
				  image, name, real);
		goto out;
	}
	if (stat(real, &st) < 0) {
		ret = block_error(-errno, "%s: cannot open '%s': %s", image, real, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = block_error(-EPERM, "%s: refusing '%s': not a regular file (a device node?)",
				  image, name);
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
