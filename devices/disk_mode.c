/* Opening an image in one of the six disk modes (see disk_mode.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/core/block.h"
#include "storage/core/block_path.h"
#include "storage/core/disk_lock.h"
#include "devices/disk_mode.h"
#include "lib/log.h"
#include "lib/error.h"

static const char *const mode_names[] = {"normal",    "immutable",   "writethrough",
					 "shareable", "multiattach", "readonly"};
#define NMODES (sizeof(mode_names) / sizeof(mode_names[0]))

const char *disk_mode_name(enum disk_mode mode)
{
	return (unsigned)mode < NMODES ? mode_names[mode] : "?";
}

int disk_mode_lookup(const char *word)
{
	for (unsigned i = 0; i < NMODES; i++)
		if (!strcmp(mode_names[i], word))
			return (int)i;
	return -1;
}

static pthread_mutex_t disk_mode_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct disk_mode_env disk_mode_env;

void disk_mode_env_set(const struct disk_mode_env *env)
{
	pthread_mutex_lock(&disk_mode_mutex);
	if (env)
		disk_mode_env = *env;
	else
		memset(&disk_mode_env, 0, sizeof(disk_mode_env));
	pthread_mutex_unlock(&disk_mode_mutex);
}

int disk_mode_uuid(unsigned index, const char *path, uint8_t uuid[16])
{
	pthread_mutex_lock(&disk_mode_mutex);
	int (*get)(unsigned, const char *, uint8_t *) = disk_mode_env.uuid;
	pthread_mutex_unlock(&disk_mode_mutex);
	return get ? get(index, path, uuid) : -ENOENT;
}

int disk_mode_diff_path(const char *state_dir, const char *image, unsigned index,
			enum disk_mode mode, char *buf, size_t len)
{
	const char *base = strrchr(image, '/');
	base = base ? base + 1 : image;
	const char *dot = strrchr(base, '.');
	int stem = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
	int n = snprintf(buf, len, "%s/disk%u-%.*s.%s.qcow2", state_dir, index, stem, base,
			 disk_mode_name(mode));
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int disk_mode_check_fixed(struct block_device *bs)
{
	const char *why = NULL;
	if (!strcmp(bs->drv->name, "raw"))
		return 0;
	if (bs->backing_name) {
		why = "it has a backing file";
	} else {
		for (uint64_t off = 0; off < bs->size && !why;) {
			uint64_t pnum = 0, map = 0;
			int st = 0;
			int ret = block_status(bs, off, bs->size - off, &pnum, &st, &map);
			if (ret < 0)
				return ret;
			if (!pnum)
				break; /* no progress: the driver gives up; treat as unknown */
			if (!(st & BLOCK_STATUS_ALLOCATED) || !(st & BLOCK_STATUS_OFFSET_VALID))
				why = "it is dynamically allocated";
			else if (st & BLOCK_STATUS_COMPRESSED)
				why = "it holds compressed clusters";
			off += pnum;
		}
	}
	if (!why)
		return 0;
	return error_set(
	    -EINVAL,
	    "%s: cannot be shareable: %s (shareable needs a fixed-size image: raw, VDI "
	    "static, VHD fixed, qcow2 with preallocation; make one with `minivmm img convert`)",
	    bs->filename, why);
}

static int disk_mode_fail(struct block_device **bs, int ret)
{
	if (*bs)
		block_close(*bs);
	*bs = NULL;
	return ret;
}

/* A recorded raw disk that now probes as something else was written by its guest (before the
 * guard existed, or with format=raw): its recorded format stands. */
static void disk_mode_check_probe(const char *path, const char *recorded)
{
	const struct block_driver *drv = NULL;
	if (block_probe(path, &drv) == 0 && strcmp(drv->name, recorded))
		log_error(
		    NULL,
		    "WARNING: %s: opened as %s, the format recorded at its first attach, although "
		    "it now probes as %s (its guest wrote that header; give format= to choose)",
		    path, recorded, drv->name);
}

/* Open path as the user gave it: with format, else with the format this VM recorded at the
 * file's first attach, else probed (and recorded). */
static int disk_mode_open_file(const struct disk_mode_env *env, const char *path,
			       const char *format, int flags, struct block_device **out)
{
	char recorded[64];
	int ret;

	if (format || !env->format_get || !env->format_record) {
		ret = block_open(path, format, flags, out);
	} else if ((ret = env->format_get(path, recorded, sizeof(recorded))) == 0) {
		ret = block_open(path, recorded, flags | BLOCK_OPEN_PROBED, out);
		if (ret == 0)
			disk_mode_check_probe(path, recorded);
	} else if (ret == -ENOENT) {
		ret = block_open(path, NULL, flags, out);
		if (ret == 0 && (ret = env->format_record(path, (*out)->drv->name)) < 0)
			return disk_mode_fail(out, ret);
	} else {
		return ret;
	}
	if (ret < 0)
		return disk_mode_fail(out, ret);
	if ((*out)->probe_guard)
		log_error(NULL,
			  "WARNING: %s: format probed as raw; writes to its first %zu bytes that "
			  "would make it look like another format are refused; give format=raw to "
			  "avoid probing",
			  path, block_probe_window());
	return 0;
}

/* An existing differencing image must be over this very base and not in use by another VM. */
static int disk_mode_diff_check(const char *diff, const char *base_abs)
{
	struct block_device *d = NULL;
	int ret = block_open(diff, "qcow2",
			     BLOCK_OPEN_RDWR | BLOCK_OPEN_NO_BACKING | BLOCK_OPEN_LOCK, &d);
	if (ret < 0)
		return disk_mode_fail(&d, ret);
	if ((ret = disk_lock_chain(d, true)) < 0)
		return disk_mode_fail(&d, ret);
	if (!d->backing_name || strcmp(d->backing_name, base_abs)) {
		error_set(-EINVAL,
			  "%s: differencing image is over '%s', not '%s' (remove it to start over)",
			  diff, d->backing_name ? d->backing_name : "nothing", base_abs);
		return disk_mode_fail(&d, -EINVAL);
	}
	block_close(d);
	return 0;
}

/* immutable and multiattach: the guest writes a qcow2 diff in the state dir over the base. */
static int disk_mode_open_diff(const struct disk_mode_env *env, const char *path,
			       const char *format, enum disk_mode mode, int flags, unsigned index,
			       struct block_device **out)
{
	char diff[PATH_MAX], *abs = NULL;
	struct block_device *base = NULL;
	struct stat st;
	int ret;

	if (!env->state_dir[0])
		return error_set(-EINVAL, "%s: %s mode needs a VM state directory", path,
				 disk_mode_name(mode));
	if ((ret = disk_mode_diff_path(env->state_dir, path, index, mode, diff, sizeof(diff))) < 0)
		return error_set(ret, "%s: state directory path too long", path);
	if ((ret = disk_mode_open_file(env, path, format, flags, &base)) < 0)
		return ret;
	if (!(abs = realpath(path, NULL))) {
		ret = -errno;
		error_set(ret, "%s: %s", path, strerror(-ret));
		return disk_mode_fail(&base, ret);
	}
	if (stat(diff, &st) == 0) {
		ret = disk_mode_diff_check(diff, abs);
		/* immutable: a fresh start throws the guest's writes away. */
		if (!ret && mode == DISK_MODE_IMMUTABLE && !env->restarted && unlink(diff) < 0) {
			ret = -errno;
			error_set(ret, "%s: cannot reset: %s", diff, strerror(errno));
		}
	} else if (errno != ENOENT) {
		ret = -errno;
		error_set(ret, "%s: %s", diff, strerror(errno));
	}
	if (!ret && stat(diff, &st) < 0) {
		struct block_create_args a = {
		    .size = base->size, .backing = abs, .backing_fmt = base->drv->name};
		ret = block_create("qcow2", diff, &a);
	}
	block_close(base);
	base = NULL;
	free(abs);
	if (ret < 0)
		return ret;
	if ((ret = block_open(diff, "qcow2", flags | BLOCK_OPEN_RDWR, out)) < 0)
		return disk_mode_fail(out, ret);
	if ((ret = disk_lock_chain(*out, true)) < 0)
		return disk_mode_fail(out, ret);
	return 0;
}

int disk_mode_open_layer(const char *layer, const char *format, int flags,
			 struct block_device **out)
{
	int ret;
	flags |= BLOCK_OPEN_RDWR | BLOCK_OPEN_LOCK;
	if ((ret = block_open(layer, format ? format : "qcow2", flags, out)) < 0 ||
	    (ret = disk_lock_chain(*out, true)) < 0)
		return disk_mode_fail(out, ret);
	return 0;
}

/* The layer of chain bs that is file `path` (for its UUID); the bottom one if none is. */
static struct block_device *disk_mode_find_layer(struct block_device *bs, const char *path)
{
	char *want = realpath(path, NULL);
	struct block_device *found = NULL;
	for (; bs && !found; bs = bs->backing) {
		char *have = realpath(bs->filename, NULL);
		if (want && have && !strcmp(want, have))
			found = bs;
		free(have);
		if (!bs->backing && !found)
			found = bs;
	}
	free(want);
	return found;
}

int disk_mode_open(const char *path, const char *format, enum disk_mode mode, int flags,
		   unsigned index, struct block_device **out, struct block_device **user)
{
	struct disk_mode_env env;
	int ret;

	pthread_mutex_lock(&disk_mode_mutex);
	env = disk_mode_env;
	pthread_mutex_unlock(&disk_mode_mutex);
	*out = *user = NULL;
	flags &= ~BLOCK_OPEN_RDWR;
	/* `path` is the user's own disk: the diffs and snapshot layers in the state directory name
	 * it wherever it is (storage/core/block_path.h). A missing file fails below. */
	block_path_allow_file(path);
	/* Lock as the files are opened, before a driver's open writes anything (a qcow2 left dirty
	 * is repaired, a Parallels image marked in use) under another VM's feet. disk_lock_chain
	 * below still refuses a file system without locks. Shareable disks are opened read-write
	 * but only read-locked: they lock after opening. */
	if (mode != DISK_MODE_SHAREABLE)
		flags |= BLOCK_OPEN_LOCK;
	if (mode == DISK_MODE_IMMUTABLE || mode == DISK_MODE_MULTIATTACH) {
		ret = disk_mode_open_diff(&env, path, format, mode, flags, index, out);
		if (ret == 0)
			*user = (*out)->backing;
		return ret;
	}
	if (mode != DISK_MODE_READONLY)
		flags |= BLOCK_OPEN_RDWR;
	if (mode == DISK_MODE_NORMAL && index < env.nlayers && env.layers[index]) {
		const char *fmt = env.layer_formats ? env.layer_formats[index] : NULL;
		if ((ret = disk_mode_open_layer(env.layers[index], fmt, flags, out)) < 0)
			return ret;
		*user = disk_mode_find_layer(*out, path);
		return 0;
	}
	if ((ret = disk_mode_open_file(&env, path, format, flags, out)) < 0)
		return ret;
	if (mode == DISK_MODE_SHAREABLE && (ret = disk_mode_check_fixed(*out)) < 0)
		return disk_mode_fail(out, ret);
	/* Shareable disks are written by several VMs at once: a read lock keeps a normal writer out
	 * while letting other shareable users in. */
	bool write = mode == DISK_MODE_NORMAL || mode == DISK_MODE_WRITETHROUGH;
	if ((ret = disk_lock_chain(*out, write)) < 0)
		return disk_mode_fail(out, ret);
	*user = *out;
	return 0;
}
