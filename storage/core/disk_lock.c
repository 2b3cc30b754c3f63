/* OFD locks on image chains and the registry that names their holders (see disk_lock.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/core/block.h"
#include "storage/core/disk_lock.h"

static pthread_mutex_t disk_lock_mutex = PTHREAD_MUTEX_INITIALIZER;
static char disk_lock_registry[PATH_MAX]; /* "" when there is none */
static char disk_lock_rundir[PATH_MAX];	  /* the registry's directory, "" when there is none */
static int (*disk_lock_dir_fn)(char *buf, size_t len);
static unsigned disk_lock_nolock_count;
static char disk_lock_nolock_last[PATH_MAX];

void disk_lock_registry_dir_fn(int (*fn)(char *buf, size_t len))
{
	pthread_mutex_lock(&disk_lock_mutex);
	disk_lock_dir_fn = fn;
	pthread_mutex_unlock(&disk_lock_mutex);
}

unsigned disk_lock_unsupported(char *last, size_t len)
{
	pthread_mutex_lock(&disk_lock_mutex);
	unsigned n = disk_lock_nolock_count;
	if (last && len)
		snprintf(last, len, "%s", disk_lock_nolock_last);
	pthread_mutex_unlock(&disk_lock_mutex);
	return n;
}

int disk_lock_owner_set(const char *vm_name, const char *dir)
{
	int ret = 0;
	pthread_mutex_lock(&disk_lock_mutex);
	disk_lock_registry[0] = disk_lock_rundir[0] = 0;
	if (dir && dir[0] && vm_name && vm_name[0]) {
		int n = snprintf(disk_lock_registry, sizeof(disk_lock_registry), "%s/%s.disks", dir,
				 vm_name);
		FILE *f = NULL;
		if (n < 0 || (size_t)n >= sizeof(disk_lock_registry))
			ret = -ENAMETOOLONG;
		else if (!(f = fopen(disk_lock_registry, "we")))
			ret = -errno;
		else if (fprintf(f, "pid %d\n", (int)getpid()) < 0)
			ret = -EIO;
		if (f && fclose(f) && !ret)
			ret = -errno;
		if (ret)
			disk_lock_registry[0] = 0;
		else
			snprintf(disk_lock_rundir, sizeof(disk_lock_rundir), "%s", dir);
	}
	pthread_mutex_unlock(&disk_lock_mutex);
	return ret;
}

void disk_lock_owner_clear(void)
{
	pthread_mutex_lock(&disk_lock_mutex);
	if (disk_lock_registry[0])
		unlink(disk_lock_registry);
	disk_lock_registry[0] = disk_lock_rundir[0] = 0;
	pthread_mutex_unlock(&disk_lock_mutex);
}

int disk_lock_runtime_dir(char *buf, size_t len)
{
	pthread_mutex_lock(&disk_lock_mutex);
	int n = snprintf(buf, len, "%s", disk_lock_rundir);
	pthread_mutex_unlock(&disk_lock_mutex);
	return n > 0 && (size_t)n < len ? 0 : -ENOENT;
}

static void disk_lock_register(dev_t dev, ino_t ino)
{
	pthread_mutex_lock(&disk_lock_mutex);
	FILE *f = disk_lock_registry[0] ? fopen(disk_lock_registry, "ae") : NULL;
	if (f) {
		fprintf(f, "%llu:%llu\n", (unsigned long long)dev, (unsigned long long)ino);
		fclose(f);
	}
	pthread_mutex_unlock(&disk_lock_mutex);
}

/* Does registry file `path` (of a live process) list dev:ino? */
static bool disk_lock_file_lists(const char *path, dev_t dev, ino_t ino)
{
	FILE *f = fopen(path, "re");
	char line[128];
	bool found = false;
	int pid = 0;
	if (!f)
		return false;
	if (!fgets(line, sizeof(line), f) || sscanf(line, "pid %d", &pid) != 1 || pid <= 0 ||
	    pid == getpid() || (kill(pid, 0) < 0 && errno == ESRCH)) {
		fclose(f);
		return false;
	}
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long long d, i;
		if (sscanf(line, "%llu:%llu", &d, &i) == 2 && d == (unsigned long long)dev &&
		    i == (unsigned long long)ino)
			found = true;
	}
	fclose(f);
	return found;
}

/* Name of the running VM that registered dev:ino, into name; false when none is known. */
static bool disk_lock_holder(dev_t dev, ino_t ino, char *name, size_t len)
{
	char dir[PATH_MAX] = "";
	int (*fn)(char *, size_t);
	pthread_mutex_lock(&disk_lock_mutex);
	snprintf(dir, sizeof(dir), "%s", disk_lock_registry);
	fn = disk_lock_dir_fn;
	pthread_mutex_unlock(&disk_lock_mutex);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = 0; /* our own registry file's directory */
	else if (!fn || fn(dir, sizeof(dir)) < 0)
		return false;
	DIR *d = opendir(dir);
	if (!d)
		return false;
	bool found = false;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		char path[PATH_MAX];
		if (n <= 6 || strcmp(e->d_name + n - 6, ".disks") ||
		    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
			continue;
		if (disk_lock_file_lists(path, dev, ino)) {
			snprintf(name, len, "%.*s", (int)(n - 6), e->d_name);
			found = true;
		}
	}
	closedir(d);
	return found;
}

/* Does a lock other than ours keep fd from being written, i.e. does someone write it (rather than
 * only read it)? */
static bool disk_lock_written_by_other(int fd)
{
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
	return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

int disk_lock_file(struct block_device *bs, bool write)
{
	struct flock fl = {.l_type = write ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET};
	struct stat st;
	if (fstat(bs->file.fd, &st) < 0) {
		int e = errno;
		return error_set(-e, "%s: %s", bs->filename, strerror(e));
	}
	if (fcntl(bs->file.fd, F_OFD_SETLK, &fl) == 0) {
		disk_lock_register(st.st_dev, st.st_ino);
		return 0;
	}
	int e = errno;
	if (e == EINVAL || e == ENOLCK || e == EOPNOTSUPP) {
		/* Some file systems (old NFS, FUSE, 9p) have no OFD locks: the caller decides. */
		error_set(-ENOLCK, "%s: cannot lock: %s", bs->filename, strerror(e));
		pthread_mutex_lock(&disk_lock_mutex);
		disk_lock_nolock_count++;
		snprintf(disk_lock_nolock_last, sizeof(disk_lock_nolock_last), "%s", bs->filename);
		pthread_mutex_unlock(&disk_lock_mutex);
		return -ENOLCK;
	}
	if (e != EAGAIN && e != EACCES)
		return error_set(-e, "%s: cannot lock: %s", bs->filename, strerror(e));
	/* We want to read: the holder writes. We want to write: the holder may only read. */
	const char *why = !write || disk_lock_written_by_other(bs->file.fd)
			      ? "it is being written"
			      : "it is being read, so it cannot be written";
	char holder[96];
	if (disk_lock_holder(st.st_dev, st.st_ino, holder, sizeof(holder)))
		return error_set(-EBUSY, "%s: in use by running VM '%s' (%s)", bs->filename, holder,
				 why);
	return error_set(-EBUSY, "%s: locked by another process (%s)", bs->filename, why);
}

int disk_lock_path_busy(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		return error_set(-e, "%s: %s", path, strerror(e));
	}
	/* F_OFD_GETLK asks without locking, and needs no write access for a write-lock question. */
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	struct stat st;
	int ret = 0;
	if (fstat(fd, &st) == 0 && fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) {
		const char *why = fl.l_type == F_WRLCK ? "it is being written" : "it is being read";
		char holder[96];
		ret =
		    disk_lock_holder(st.st_dev, st.st_ino, holder, sizeof(holder))
			? error_set(-EBUSY, "%s: in use by running VM '%s' (%s)", path, holder, why)
			: error_set(-EBUSY, "%s: locked by another process (%s)", path, why);
	}
	close(fd);
	return ret;
}

int disk_lock_chain(struct block_device *bs, bool write_top)
{
	for (bool top = true; bs; bs = bs->backing, top = false) {
		int ret = disk_lock_file(bs, top && write_top);
		if (ret < 0)
			return ret;
	}
	return 0;
}

void disk_lock_release_chain(struct block_device *bs)
{
	struct flock fl = {.l_type = F_UNLCK, .l_whence = SEEK_SET};
	for (; bs; bs = bs->backing)
		fcntl(bs->file.fd, F_OFD_SETLK, &fl);
}
