/* The jail (see jail.h): a private mount namespace at start, pivot_root into DIR and an
 * unprivileged uid/gid after set-up. */
#include "lib/jail.h"
#include "lib/error.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static atomic_bool chrooted;
static char jail_root[PATH_MAX]; /* DIR resolved once at prepare: later symlink swaps are moot */

static int parse_id(const char *s, char **end, unsigned long *out)
{
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long v = strtoul(s, end, 10);
	/* 0 is root (nothing dropped); (uid_t)-1 means "unchanged" to set*id. */
	if (errno || v == 0 || v >= UINT32_MAX)
		return -EINVAL;
	*out = v;
	return 0;
}

int jail_parse_user(const char *s, uid_t *uid, gid_t *gid)
{
	char *end;
	unsigned long u, g;
	if (parse_id(s, &end, &u) < 0)
		return -EINVAL;
	g = u;
	if (*end == ':' && parse_id(end + 1, &end, &g) < 0)
		return -EINVAL;
	if (*end)
		return -EINVAL;
	*uid = (uid_t)u;
	*gid = (gid_t)g;
	return 0;
}

int jail_prepare(const struct jail_config *cfg)
{
	if (!cfg->chroot_dir && !cfg->set_user)
		return 0;
	if (geteuid() != 0)
		return error_set(-EPERM, "%s needs root (it drops to the user after set-up)",
				 cfg->chroot_dir ? "--chroot" : "--user");
	if (!cfg->chroot_dir)
		return 0;
	struct stat st;
	if (!realpath(cfg->chroot_dir, jail_root) || stat(jail_root, &st) < 0)
		return error_set(-errno, "--chroot %s: %s", cfg->chroot_dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return error_set(-ENOTDIR, "--chroot %s: not a directory", cfg->chroot_dir);
	if (!strcmp(jail_root, "/"))
		return error_set(-EINVAL, "--chroot %s: that is the host's root", cfg->chroot_dir);
	if (unshare(CLONE_NEWNS) < 0)
		return error_set(-errno, "--chroot: cannot make a mount namespace: %s",
				 strerror(errno));
	/* Private: the bind mount and the detach below must not propagate to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return error_set(-errno, "--chroot: cannot make the mounts private: %s",
				 strerror(errno));
	return 0;
}

/* DIR becomes "/" for every thread; the host's tree is detached (not reachable by "..").  The
 * pivot_root(".", ".") form stacks the old root on the new one, so no put_old directory is needed
 * in DIR. */
static int jail_pivot(void)
{
	if (mount(jail_root, jail_root, NULL, MS_BIND | MS_REC, NULL) < 0)
		return error_set(-errno, "--chroot %s: bind mount: %s", jail_root, strerror(errno));
	if (chdir(jail_root) < 0)
		return error_set(-errno, "--chroot %s: %s", jail_root, strerror(errno));
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return error_set(-errno, "--chroot %s: pivot_root: %s", jail_root, strerror(errno));
	if (umount2(".", MNT_DETACH) < 0)
		return error_set(-errno, "--chroot %s: detaching the host's root: %s", jail_root,
				 strerror(errno));
	if (chdir("/") < 0)
		return error_set(-errno, "--chroot %s: chdir /: %s", jail_root, strerror(errno));
	atomic_store(&chrooted, true);
	return 0;
}

static int jail_drop_user(uid_t uid, gid_t gid)
{
	/* Groups first: after the uid change there is no right to change them. */
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		return error_set(-errno, "--user %u:%u: %s", (unsigned)uid, (unsigned)gid,
				 strerror(errno));
	uid_t r, e, s;
	gid_t rg, eg, sg;
	if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0 || r != uid || e != uid ||
	    s != uid || rg != gid || eg != gid || sg != gid)
		return error_set(-EPERM, "--user %u:%u: the ids did not change", (unsigned)uid,
				 (unsigned)gid);
	return 0;
}

int jail_enter(const struct jail_config *cfg)
{
	int r;
	if (cfg->chroot_dir && (r = jail_pivot()) < 0)
		return r;
	if (cfg->set_user && (r = jail_drop_user(cfg->uid, cfg->gid)) < 0)
		return r;
	return 0;
}

bool jail_chrooted(void)
{
	return atomic_load(&chrooted);
}
