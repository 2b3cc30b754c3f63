#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/error.h"
#include "lib/mkdirs.h"

int mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	if (!path || !path[0])
		return error_set(-EINVAL, "empty directory name");
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return error_set(-ENAMETOOLONG, "%.200s...: path too long", path);
	for (char *p = buf + 1;; p++) {
		if (*p && *p != '/')
			continue;
		char c = *p;
		*p = 0;
		if (mkdir(buf, mode) < 0 && errno != EEXIST) {
			int e = errno;
			return error_set(-e, "%s: cannot create: %s", buf, strerror(e));
		}
		*p = c;
		if (!c)
			break;
	}
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return error_set(-ENOTDIR, "%s: not a directory", path);
	return 0;
}
