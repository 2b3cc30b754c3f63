/* The jail (`minivmm run --chroot DIR --user UID[:GID]`), after Firecracker's jailer: once the VM
 * holds every file it was started with (images, /dev/kvm, the control socket, the console), the
 * VMM leaves the host's file system for DIR and runs as an unprivileged user, before the seccomp
 * filters go on.
 *
 * Two steps, because a mount namespace is per thread and the VM's set-up starts threads:
 *   jail_prepare()  at start, while the process has one thread: a private mount namespace (mounts
 *                   made there never reach the host), inherited by every thread created later.
 *   jail_enter()    after set-up, from any one thread: DIR bind-mounted on itself becomes the root
 *                   of every thread (pivot_root), the host's tree is detached, then the groups, gid
 *                   and uid change for every thread (glibc applies set*id process-wide), which also
 *                   clears every thread's capabilities.
 * Paths used after jail_enter() are paths inside DIR.  No pid namespace: the VMM creates no
 * processes (the sandbox forbids it), so one would hide nothing.
 */
#ifndef MINIVMM_LIB_JAIL_H
#define MINIVMM_LIB_JAIL_H

#include <stdbool.h>
#include <sys/types.h>

struct jail_config {
	const char *chroot_dir; /* NULL: stay in the host's file system */
	bool set_user;		/* change to uid/gid */
	uid_t uid;
	gid_t gid;
};

/* Parse "UID[:GID]" (decimal; GID defaults to UID; neither may be 0 nor -1).  0, or -EINVAL. */
int jail_parse_user(const char *s, uid_t *uid, gid_t *gid);
/* Single-threaded, before any thread starts: checks DIR (a directory, not "/") and that the
 * process may do what jail_enter will (root), and makes the private mount namespace.  A no-op
 * without chroot_dir and set_user.  0, or -errno with one line in error_msg(). */
int jail_prepare(const struct jail_config *cfg);
/* Enter the jail (see above).  0, or -errno with one line in error_msg(); on failure the caller
 * must not run the guest. */
int jail_enter(const struct jail_config *cfg);
/* Whether this process's file system is DIR (host paths no longer resolve). */
bool jail_chrooted(void);

#endif
