/* Where control sockets live, what a VM may be called, and the per-name lock (see control.h).
 *
 * The runtime dir is $XDG_RUNTIME_DIR/minivmm when that is a private directory, else
 * /run/user/UID/minivmm when /run/user/UID is ours, else /run/minivmm for root, else
 * $XDG_STATE_HOME/minivmm/run or ~/.local/state/minivmm/run: never a fixed name in a world-writable
 * directory such as /tmp, where any local user could create it first and deny us the VM.
 * It is checked on every use: a directory someone else owns, or that others may write, could hold
 * a socket planted to impersonate a VM, so it is refused rather than used.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/control_internal.h"
#include "lib/error.h"
#include "lib/mkdirs.h"

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

int control_name_check(const char *name)
{
	if (control_name_valid(name))
		return 0;
	return error_set(
	    -EINVAL,
	    "invalid VM name '%.64s' (use 1-64 of A-Z a-z 0-9 . _ -, not starting with '.')",
	    name ? name : "");
}

int control_verb_valid(const char *verb)
{
	return verb && name_chars_ok(verb, CONTROL_VERB_MAX, 0);
}

/* A directory only `uid` can write: ours, and not group/other writable (what a symlink leads to
 * is what counts). */
static bool dir_private(const char *path, uid_t uid)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid &&
	       !(st.st_mode & (S_IWGRP | S_IWOTH));
}

static int fits(int n, size_t len)
{
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Never a predictable name in a world-writable directory (anyone could create it first). */
int control_dir_choose(const struct control_dir_inputs *in, char *buf, size_t len)
{
	char run_user[PATH_MAX];

	if (in->xdg_runtime && in->xdg_runtime[0] == '/' && dir_private(in->xdg_runtime, in->uid))
		return fits(snprintf(buf, len, "%s/minivmm", in->xdg_runtime), len);
	if (fits(snprintf(run_user, sizeof(run_user), "%s/%u", in->run_user, (unsigned)in->uid),
		 sizeof(run_user)) == 0 &&
	    dir_private(run_user, in->uid))
		return fits(snprintf(buf, len, "%s/minivmm", run_user), len);
	if (in->uid == 0)
		return fits(snprintf(buf, len, "%s/minivmm", in->run), len);
	if (in->xdg_state && in->xdg_state[0] == '/')
		return fits(snprintf(buf, len, "%s/minivmm/run", in->xdg_state), len);
	if (in->home && in->home[0] == '/')
		return fits(snprintf(buf, len, "%s/.local/state/minivmm/run", in->home), len);
	return -ENOENT;
}

static int choose_dir(char *buf, size_t len)
{
	struct control_dir_inputs in = {
	    .xdg_runtime = getenv("XDG_RUNTIME_DIR"),
	    .xdg_state = getenv("XDG_STATE_HOME"),
	    .home = getenv("HOME"),
	    .run_user = "/run/user",
	    .run = "/run",
	    .uid = geteuid(),
	};
	struct passwd *pw;

	if ((!in.home || in.home[0] != '/') && (pw = getpwuid(in.uid)) != NULL)
		in.home = pw->pw_dir;
	return control_dir_choose(&in, buf, len);
}

int control_runtime_dir_checked(char *buf, size_t len)
{
	struct stat st;
	int ret = choose_dir(buf, len);

	if (ret == -ENOENT)
		return error_set(
		    ret, "no runtime directory: set XDG_RUNTIME_DIR, XDG_STATE_HOME or HOME");
	if (ret < 0)
		return error_set(ret, "%.200s...: runtime directory path is too long", buf);
	/* New components private to the user; an existing last one is checked below. */
	ret = mkdirs(buf, 0700);
	if (ret < 0)
		return ret;
	if (lstat(buf, &st) < 0) {
		ret = -errno;
		return error_set(ret, "%s: %s", buf, strerror(-ret));
	}
	if (!S_ISDIR(st.st_mode))
		return error_set(-ENOTDIR, "%s: not a directory (refusing to use it)", buf);
	if (st.st_uid != geteuid())
		return error_set(-EPERM, "%s: owned by uid %u, not by us (refusing to use it)", buf,
				 (unsigned)st.st_uid);
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return error_set(-EPERM,
				 "%s: writable by group or others (mode %03o, refusing to use it)",
				 buf, (unsigned)(st.st_mode & 0777));
	return 0;
}

int control_runtime_dir(char *buf, size_t len)
{

	return control_runtime_dir_checked(buf, len);
}

int control_path_for(const char *name, const char *suffix, char *buf, size_t len)
{
	struct sockaddr_un sun;
	char dir[PATH_MAX];
	int n, ret;

	if (control_name_check(name) < 0)
		return -EINVAL;
	ret = control_runtime_dir_checked(dir, sizeof(dir));
	if (ret < 0)
		return ret;
	n = snprintf(buf, len, "%s/%s%s", dir, name, suffix);
	/* The socket path (and its ".new" twin) must fit a sockaddr_un, NUL included. */
	if (n < 0 || (size_t)n >= len || (size_t)n + 4 >= sizeof(sun.sun_path))
		return error_set(-ENAMETOOLONG,
				 "%s/%s%s: path too long for a UNIX socket (%zu bytes at most; set "
				 "XDG_RUNTIME_DIR to a shorter directory)",
				 dir, name, suffix, sizeof(sun.sun_path) - 5);
	return 0;
}

int control_socket_path(const char *name, char *buf, size_t len)
{

	return control_path_for(name, ".sock", buf, len);
}

static int lock_op(int fd, int cmd, struct flock *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = F_WRLCK;
	fl->l_whence = SEEK_SET;
	return fcntl(fd, cmd, fl) < 0 ? -errno : 0;
}

int control_lock_acquire(const char *name, int *fd_out, char *path, size_t pathlen)
{
	struct stat fst, pst;
	struct flock fl;
	int ret = control_path_for(name, ".lock", path, pathlen);

	if (ret < 0)
		return ret;
	/* A releasing server unlinks the file: retry when we locked an inode no longer named. */
	for (int tries = 0; tries < 16; tries++) {
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			ret = -errno;
			return error_set(ret, "%s: %s", path, strerror(-ret));
		}
		ret = lock_op(fd, F_OFD_SETLK, &fl);
		if (ret == -EAGAIN || ret == -EACCES) {
			close(fd);
			return error_set(-EADDRINUSE,
					 "a VM named '%s' is already running (%s is locked)", name,
					 path);
		}
		if (ret < 0) {
			close(fd);
			return error_set(ret, "%s: cannot lock: %s", path, strerror(-ret));
		}
		if (fstat(fd, &fst) == 0 && stat(path, &pst) == 0 && fst.st_ino == pst.st_ino &&
		    fst.st_dev == pst.st_dev) {
			*fd_out = fd;
			return 0;
		}
		close(fd);
	}
	return error_set(-EAGAIN, "%s: keeps changing under us", path);
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
	struct flock fl;
	int fd, ret = control_path_for(name, ".lock", path, sizeof(path));

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
