/* The disk backend shared by every storage controller: opens the image chain with the cache and
 * access mode asked for, makes its aio context and computes the identity the guest sees. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/disk.h"
#include "storage/core/block.h"
#include "storage/core/block_aio.h"
#include "storage/core/disk_lock.h"
#include "devices/disk_mode.h"
#include "lib/error.h"

void disk_pad_string(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);
	if (n > len)
		n = len;
	memcpy(dst, src, n);
	memset(dst + n, ' ', len - n);
}

static int disk_open_flags(const struct disk *d)
{
	int flags = d->read_only ? 0 : BLOCK_OPEN_RDWR;
	switch (d->cache) {
	case DISK_CACHE_WRITEBACK:
		break;
	case DISK_CACHE_NONE:
		flags |= BLOCK_OPEN_CACHE_NONE;
		break;
	case DISK_CACHE_DIRECTSYNC:
		flags |= BLOCK_OPEN_CACHE_NONE | BLOCK_OPEN_CACHE_DSYNC;
		break;
	case DISK_CACHE_UNSAFE:
		flags |= BLOCK_OPEN_CACHE_UNSAFE;
		break;
	}
	return flags;
}

/* 64-bit FNV-1a: a stable serial number and UUID for images whose format carries none. */
static uint64_t disk_hash(const char *s, uint64_t h)
{
	if (!h)
		h = 0xcbf29ce484222325ULL;
	for (; s && *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	return h;
}

/* CHS as BIOSes translate it: 16 heads, 63 sectors, cylinders capped at 16383 (ATA-8 table). */
static void disk_geometry(struct disk *d)
{
	uint64_t cyl = d->sectors / (16 * 63);
	d->heads = 16;
	d->sectors_per_track = 63;
	d->cylinders = cyl > 16383 ? 16383 : cyl ? (uint16_t)cyl : 1;
}

/* m->bs is open: give it an aio context and record the path and size. */
static int disk_medium_start(const char *path, struct disk_medium *m)
{
	int ret = block_aio_open(m->bs, NULL, &m->aio);
	if (ret < 0) {
		error_set(ret, "%s: cannot start asynchronous I/O: %s", path, strerror(-ret));
		block_close(m->bs);
		m->bs = NULL;
		return ret;
	}
	m->path = strdup(path);
	if (!m->path) {
		disk_medium_close(m);
		return error_set(-ENOMEM, "%s: out of memory", path);
	}
	m->size = m->bs->size;
	return 0;
}

/* Open a CD-ROM medium (mode NULL: plain read-only open) or a hard disk in its mode, which
 * decides read-write, locks and differencing images (devices/disk_mode.h); *user receives the
 * layer that is `path` itself. */
static int disk_open_image(const char *path, const char *format, const enum disk_mode *mode,
			   int flags, unsigned index, struct disk_medium *m,
			   struct block_device **user)
{
	int ret;
	memset(m, 0, sizeof(*m));
	if (mode) {
		ret = disk_mode_open(path, format, *mode, flags, index, &m->bs, user);
		if (ret < 0)
			return ret;
	} else if ((ret = block_open(path, format, flags, &m->bs)) < 0) {
		return ret;
	}
	return disk_medium_start(path, m);
}

/* The image's own UUID; for a format without one (or a VMDK without ddb.uuid.image) the one the
 * VM's state keeps for the file; without a state (CD-ROM media, tests) one hashed from the real
 * path, so that one file reached by two names still gets one UUID. */
static int disk_uuid(struct disk *d, const struct disk_config *cfg, struct block_device *user)
{
	int ret = user ? block_get_uuid(user, d->uuid) : -ENOTSUP;
	if (ret == 0)
		return 0;
	if (ret != -ENOTSUP && ret != -ENOENT && cfg->media == DISK_MEDIA_HDD)
		return ret; /* a bad UUID field */
	if (cfg->media == DISK_MEDIA_HDD && cfg->path) {
		ret = disk_mode_uuid(d->index, cfg->path, d->uuid);
		if (ret != -ENOENT)
			return ret;
	}
	char *real = cfg->path ? realpath(cfg->path, NULL) : NULL;
	uint64_t h = disk_hash(real ? real : cfg->path, 0);
	free(real);
	uint64_t h2 = disk_hash("uuid", h);
	memcpy(d->uuid, &h, 8);
	memcpy(d->uuid + 8, &h2, 8);
	d->uuid[6] = (d->uuid[6] & 0x0f) | 0x40; /* a version-4 style UUID */
	d->uuid[8] = (d->uuid[8] & 0x3f) | 0x80;
	return 0;
}

int disk_open(const struct disk_config *cfg, unsigned index, struct disk **out)
{
	struct disk *d = calloc(1, sizeof(*d));
	struct disk_medium m;
	struct block_device *user = NULL;
	char buf[64];
	int ret;

	*out = NULL;
	if (!d)
		return error_set(-ENOMEM, "%s: out of memory", cfg->path ? cfg->path : "disk");
	d->media = cfg->media;
	d->mode = cfg->mode;
	d->cache = cfg->cache;
	d->werror = cfg->werror;
	d->bus = cfg->bus;
	d->controller = cfg->controller;
	d->index = index;
	d->read_only = cfg->media == DISK_MEDIA_CDROM || cfg->mode == DISK_MODE_READONLY;
	d->flush_ignored = cfg->cache == DISK_CACHE_UNSAFE;
	if (cfg->path) {
		bool hdd = cfg->media == DISK_MEDIA_HDD;
		ret = disk_open_image(cfg->path, cfg->format, hdd ? &cfg->mode : NULL,
				      disk_open_flags(d), index, &m, &user);
		if (ret < 0) {
			free(d);
			return ret;
		}
		disk_medium_swap(d, &m);
	} else if (cfg->media != DISK_MEDIA_CDROM) {
		free(d);
		return error_set(-EINVAL, "--disk: missing file name");
	}

	uint64_t h = disk_hash(cfg->path, 0);
	snprintf(buf, sizeof(buf), "MV%02u%016llX", index % 100, (unsigned long long)h);
	snprintf(d->serial, sizeof(d->serial), "%.20s", buf);
	snprintf(d->model, sizeof(d->model), "%s",
		 d->media == DISK_MEDIA_CDROM ? "MINIVMM DVD-ROM" : "MINIVMM HARDDISK");
	snprintf(d->firmware, sizeof(d->firmware), "1.0");
	if (!user)
		user = d->bs;
	if ((ret = disk_uuid(d, cfg, user)) < 0) {
		disk_close(d);
		return ret;
	}
	*out = d;
	return 0;
}

int disk_check_uuid(struct disk *const *disks, unsigned n)
{
	const struct disk *d = n ? disks[n - 1] : NULL;
	if (!d || d->media != DISK_MEDIA_HDD)
		return 0;
	for (unsigned i = 0; i + 1 < n; i++) {
		if (disks[i]->media != DISK_MEDIA_HDD || memcmp(disks[i]->uuid, d->uuid, 16))
			continue;
		const uint8_t *u = d->uuid;
		return error_set(
		    -EEXIST,
		    "%s: cannot attach: its UUID {%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		    "%02x%02x%02x%02x%02x%02x} is the same as that of '%s', already attached "
		    "(attach a copy made by `minivmm img clonemedium`, which gets a new UUID)",
		    d->path, u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10],
		    u[11], u[12], u[13], u[14], u[15], disks[i]->path);
	}
	return 0;
}

int disk_layer_open(const struct disk *d, const char *layer, const char *format,
		    struct disk_medium *m)
{
	memset(m, 0, sizeof(*m));
	if (d->media != DISK_MEDIA_HDD || d->read_only || !d->bs)
		return error_set(-EINVAL, "%s: not a writable hard disk",
				 d->path ? d->path : "drive");
	int ret = disk_mode_open_layer(layer, format, disk_open_flags(d), &m->bs);
	if (ret < 0)
		return ret;
	if (m->bs->size != d->size) { /* the guest must not see its disk change size */
		error_set(-EINVAL, "%s: %llu bytes, but the disk has %llu", layer,
			  (unsigned long long)m->bs->size, (unsigned long long)d->size);
		disk_lock_release_chain(m->bs);
		block_close(m->bs);
		m->bs = NULL;
		return -EINVAL;
	}
	/* The medium keeps the name the user gave: messages and the serial number use it. */
	return disk_medium_start(d->path, m);
}

void disk_close(struct disk *d)
{
	if (!d)
		return;
	struct disk_medium m = {0};
	disk_medium_swap(d, &m);
	disk_medium_close(&m);
	free(d);
}

int disk_medium_open(const char *path, struct disk_medium *m)
{
	memset(m, 0, sizeof(*m));
	if (!path)
		return 0;
	/* Media are read-only (CD-ROM); a format is probed, raw being the fallback. */
	return disk_open_image(path, NULL, NULL, 0, 0, m, NULL);
}

void disk_medium_swap(struct disk *d, struct disk_medium *m)
{
	struct disk_medium old = {d->path, d->bs, d->aio, d->size};
	d->path = m->path;
	d->bs = m->bs;
	d->aio = m->aio;
	d->size = m->size;
	d->sectors = d->size / 512;
	disk_geometry(d);
	*m = old;
}

void disk_medium_close(struct disk_medium *m)
{
	if (m->aio)
		block_aio_close(m->aio);
	if (m->bs) {
		disk_lock_release_chain(m->bs);
		block_close(m->bs);
	}
	free(m->path);
	memset(m, 0, sizeof(*m));
}

void disk_release_stopped(struct disk *d)
{
	if (d && d->aio)
		block_aio_release_stopped(d->aio);
}
