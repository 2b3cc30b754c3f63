/* Keeping a probed raw image raw (QEMU's CVE-2008-2004).
 *
 * A raw disk opened without format= is raw only because nothing recognised its head. Its guest
 * owns those bytes, so it could write a qcow2 header naming /etc/shadow as backing file, or a
 * VMDK descriptor whose extent is /dev/sda, and the next probe would believe it. Every write
 * touching the first block_probe_window() bytes (the most any driver's probe reads) is therefore
 * applied to a copy of the current head first and refused if the result probes as a format.
 *
 * Check and write happen under one mutex per image: two writes in flight at once (an NCQ write
 * and a non-queued one, or two worker threads) are serialised over the window, so each is
 * checked against the head the other left, never both against the old one.  The same holds
 * across processes (two VMs on one shareable disk, each writing half of a header): the head is
 * re-read and the write made under an exclusive flock(2) of a lock file in the VM's runtime
 * directory (disk_lock_runtime_dir: $XDG_RUNTIME_DIR/minivmm, 0700), named by the image's device
 * and inode.  Not a lock on the image itself: any local user who can open the image could hold
 * that (flock needs no write access, an OFD read lock only read access) and make every guarded
 * write wait and fail.  The lock file is reachable by this user's processes only, so VMs of one
 * user share a probed raw disk safely; VMs of different users do not serialise with each other
 * (give such a disk format=raw, which needs no guard).  Without a runtime directory (tests, the
 * image tool) the guard is per process only.  Lock files stay (a few bytes of tmpfs per image):
 * unlinking one another VM may hold would split the lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "storage/core/block.h"
#include "storage/core/block_probe_guard.h"
#include "storage/core/disk_lock.h"

struct block_probe_guard {
	pthread_mutex_t lock;
	size_t window; /* block_probe_window() */
	uint8_t *head; /* window bytes: the would-be head, used under lock */
	int lock_fd;   /* the cross-process lock file, -1: none */
	bool flocked;  /* under lock: lock_fd's flock is held too */
};

static void guard_unlock(struct block_device *bs)
{
	struct block_probe_guard *g = bs->probe_guard;
	if (g->flocked)
		flock(g->lock_fd, LOCK_UN);
	g->flocked = false;
	pthread_mutex_unlock(&g->lock);
}

/* <runtime dir>/probe-DEV-INO.lock, opened (made 0600 if new); -1 without a runtime dir. */
static int guard_lock_file(struct block_device *bs)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	struct stat st;
	if (disk_lock_runtime_dir(dir, sizeof(dir)) < 0 || fstat(bs->file.fd, &st) < 0)
		return -1;
	int n = snprintf(path, sizeof(path), "%s/probe-%llx-%llu.lock", dir,
			 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -1;
	return open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
}

int block_probe_guard_open(struct block_device *bs)
{
	struct block_probe_guard *g = calloc(1, sizeof(*g));
	size_t window = block_probe_window();

	if (!g)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	g->window = window;
	g->head = malloc(window ? window : 1);
	if (!g->head) {
		free(g);
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	}
	pthread_mutex_init(&g->lock, NULL);
	g->lock_fd = guard_lock_file(bs);
	bs->probe_guard = g;
	return 0;
}

void block_probe_guard_close(struct block_device *bs)
{
	struct block_probe_guard *g = bs->probe_guard;

	if (!g)
		return;
	pthread_mutex_destroy(&g->lock);
	if (g->lock_fd >= 0)
		close(g->lock_fd);
	free(g->head);
	free(g);
	bs->probe_guard = NULL;
}

bool block_probe_guarded(const struct block_device *bs, uint64_t offset)
{
	return bs->probe_guard && offset < bs->probe_guard->window;
}

/* The cross-process half of the lock.  Held only for one check and one write, so a wait is short;
 * bounded all the same (another VM of this user stopped in a debugger while holding it):
 * -EBUSY after ten seconds.  A file system without flock (ENOLCK, EINVAL) keeps the in-process
 * guard only, as disk_lock does without OFD locks. */
static unsigned long guard_waits;

unsigned long block_probe_guard_waits(void)
{
	return __atomic_load_n(&guard_waits, __ATOMIC_RELAXED);
}

static int guard_flock(struct block_device *bs)
{
	int fd = bs->probe_guard->lock_fd;
	if (fd < 0)
		return 0;
	for (unsigned waited_ms = 0;; waited_ms++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 1;
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			return 0;
		if (waited_ms == 0)
			__atomic_add_fetch(&guard_waits, 1, __ATOMIC_RELAXED);
		if (waited_ms == 10000)
			return error_set(-EBUSY,
					 "%s: another process holds the probe-window lock for 10 s",
					 bs->filename);
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
}

int block_probe_guard_begin(struct block_device *bs, uint64_t offset, uint64_t len,
			    const struct iovec *iov, int iovcnt)
{
	struct block_probe_guard *g = bs->probe_guard;

	if (!g || offset >= g->window || len == 0)
		return 0;
	pthread_mutex_lock(&g->lock);
	int flocked = guard_flock(bs);
	if (flocked < 0) {
		pthread_mutex_unlock(&g->lock);
		return flocked;
	}
	g->flocked = flocked;
	/* The size is read under the lock too: a probe sees no more than the file holds. */
	size_t window = bs->size < g->window ? (size_t)bs->size : g->window;
	int ret = window ? host_file_pread(&bs->file, 0, g->head, window) : 0;
	if (ret < 0) {
		guard_unlock(bs);
		return error_set(ret, "%s: cannot read the first %zu bytes: %s", bs->filename,
				 window, strerror(-ret));
	}
	if (offset < window) {
		size_t n = len < window - offset ? (size_t)len : window - (size_t)offset;
		if (iov)
			iov_to_buf(iov, iovcnt, 0, g->head + offset, n);
		else
			memset(g->head + offset, 0, n);
	}
	const struct block_driver *drv = block_probe_head(g->head, window, bs->filename);
	if (drv) {
		guard_unlock(bs);
		return error_set(-EPERM,
				 "%s: refusing a write to the first %zu bytes that would make "
				 "this probed raw image look like %s (give format=raw)",
				 bs->filename, g->window, drv->name);
	}
	return 1;
}

void block_probe_guard_end(struct block_device *bs, int held)
{
	if (held > 0)
		guard_unlock(bs);
}
