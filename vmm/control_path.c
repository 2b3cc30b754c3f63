/* Where control sockets live, what a VM may be called, and the per-name lock (see control.h).
 *
 * The runtime dir is checked on every use: a directory someone else owns, or that others may
 * write, could hold a socket planted to impersonate a VM, so it is refused rather than used.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/control_internal.h"

static int name_chars_ok(const char *s, size_t max, int allow_dot)
{
	size_t n = 0;

	for (; s[n]; n++) {
		char c = s[n];
		if (n >= max)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || (allow_dot && c == '.')))
			return 0;
	}
	return n > 0;
}

int control_name_valid(const char *name)
{
	return name && name[0] != '.' && name_chars_ok(name, CONTROL_NAME_MAX, 1);
}

int control_name_check(const char *name, char *err, size_t errlen)
{
	if (control_name_valid(name))
		return 0;
	snprintf(err, errlen,
		 "invalid VM name '%.64s' (use 1-64 of A-Z a-z 0-9 . _ -, not starting with '.')",
		 name ? name : "");
	return -EINVAL;
}

int control_verb_valid(const char *verb)
{
	return verb && name_chars_ok(verb, CONTROL_VERB_MAX, 0);
}

static int choose_dir(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	struct stat st;
	char run[64];
	int n;

	if (xdg && xdg[0] == '/') {
		n = snprintf(buf, len, "%s/minivmm", xdg);
	} else {
		snprintf(run, sizeof(run), "/run/user/%u", (unsigned)geteuid());
		if (stat(run, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid())
			n = snprintf(buf, len, "%s/minivmm", run);
		else
			n = snprintf(buf, len, "/tmp/minivmm-%u", (unsigned)geteuid());
	}
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int control_runtime_dir_checked(char *buf, size_t len, char *err, size_t errlen)
{
	struct stat st;
	int ret = choose_dir(buf, len);

	if (ret < 0) {
		snprintf(err, errlen, "runtime directory path is too long");
		return ret;
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		snprintf(err, errlen, "%s: cannot create: %s", buf, strerror(-ret));
		return ret;
	}
	if (lstat(buf, &st) < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", buf, strerror(-ret));
		return ret;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: not a directory (refusing to use it)", buf);
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "%s: owned by uid %u, not by us (refusing to use it)", buf,
			 (unsigned)st.st_uid);
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen,
			 "%s: writable by group or others (mode %03o, refusing to use it)", buf,
			 (unsigned)(st.st_mode & 0777));
		return -EPERM;
	}
	return 0;
}

int control_runtime_dir(char *buf, size_t len)
{
	char err[CONTROL_ERR_LEN];

	return control_runtime_dir_checked(buf, len, err, sizeof(err));
}

int control_path_for(const char *name, const char *suffix, char *buf, size_t len, char *err,
		     size_t errlen)
{
	struct sockaddr_un sun;
	char dir[sizeof(sun.sun_path)];
	int n, ret;

	if (control_name_check(name, err, errlen) < 0)
		return -EINVAL;
	ret = control_runtime_dir_checked(dir, sizeof(dir), err, errlen);
	if (ret < 0)
		return ret;
	n = snprintf(buf, len, "%s/%s%s", dir, name, suffix);
	/* The socket path (and its ".new" twin) must fit a sockaddr_un, NUL included. */
	if (n < 0 || (size_t)n >= len || (size_t)n + 4 >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "%s/%s%s: path too long for a UNIX socket", dir, name,
			 suffix);
		return -ENAMETOOLONG;
	}
	return 0;
}

int control_socket_path(const char *name, char *buf, size_t len)
{
	char err[CONTROL_ERR_LEN];

	return control_path_for(name, ".sock", buf, len, err, sizeof(err));
}

static int lock_op(int fd, int cmd, struct flock *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = F_WRLCK;
	fl->l_whence = SEEK_SET;
	return fcntl(fd, cmd, fl) < 0 ? -errno : 0;
}

int control_lock_acquire(const char *name, int *fd_out, char *path, size_t pathlen, char *err,
			 size_t errlen)
{
	struct stat fst, pst;
	struct flock fl;
	int ret = control_path_for(name, ".lock", path, pathlen, err, errlen);

	if (ret < 0)
		return ret;
	/* A releasing server unlinks the file: retry when we locked an inode no longer named. */
	for (int tries = 0; tries < 16; tries++) {
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			ret = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(-ret));
			return ret;
		}
		ret = lock_op(fd, F_OFD_SETLK, &fl);
		if (ret == -EAGAIN || ret == -EACCES) {
			close(fd);
			snprintf(err, errlen, "a VM named '%s' is already running (%s is locked)",
				 name, path);
			return -EADDRINUSE;
		}
		if (ret < 0) {
			close(fd);
			snprintf(err, errlen, "%s: cannot lock: %s", path, strerror(-ret));
			return ret;
		}
		if (fstat(fd, &fst) == 0 && stat(path, &pst) == 0 && fst.st_ino == pst.st_ino &&
		    fst.st_dev == pst.st_dev) {
			*fd_out = fd;
			return 0;
		}
		close(fd);
	}
	snprintf(err, errlen, "%s: keeps changing under us", path);
	return -EAGAIN;
}

void control_lock_release(const char *path, int fd)
{
	struct stat fst, pst;

	if (fd < 0)
		return;
	/* Unlink while still holding the lock, and only our own inode. */
	if (fstat(fd, &fst) == 0 && stat(path, &pst) == 0 && fst.st_ino == pst.st_ino &&
	    fst.st_dev == pst.st_dev)
		unlink(path);
	close(fd);
}

int control_lock_held(const char *name)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char err[CONTROL_ERR_LEN];
	struct flock fl;
	int fd, ret = control_path_for(name, ".lock", path, sizeof(path), err, sizeof(err));

	if (ret < 0)
		return ret;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	ret = lock_op(fd, F_OFD_GETLK, &fl);
	close(fd);
	if (ret < 0)
		return ret;
	return fl.l_type != F_UNLCK;
}
