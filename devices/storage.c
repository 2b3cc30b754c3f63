/* The VM's disks: controller registry, opening, and the I/O thread (see devices/storage.h). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/storage.h"
#include "storage/block.h"
#include "storage/block_aio.h"
#include "storage/disk_lock.h"

#define STORAGE_MAX_CONTROLLERS 8

static const struct storage_controller *controllers[STORAGE_MAX_CONTROLLERS];
static unsigned ncontrollers;

void storage_controller_register(const struct storage_controller *c)
{
	if (ncontrollers < STORAGE_MAX_CONTROLLERS)
		controllers[ncontrollers++] = c;
}

static const struct storage_controller *storage_controller_find(enum disk_bus bus)
{
	for (unsigned i = 0; i < ncontrollers; i++)
		if (controllers[i]->bus == bus)
			return controllers[i];
	return NULL;
}

struct storage {
	struct storage_env env;
	pthread_mutex_t lock; /* media swaps vs. the I/O thread */
	struct disk **disks;
	unsigned ndisks;
	const struct storage_controller *ctl[STORAGE_MAX_CONTROLLERS];
	void *ctl_state[STORAGE_MAX_CONTROLLERS];
	unsigned nctl;
	pthread_t thread;
	bool thread_started;
	int stop_fd;
};

/* The configurations of one bus, in command-line order. */
static unsigned storage_group(const struct disk_config *cfgs, unsigned n, enum disk_bus bus,
			      struct disk_config *out)
{
	unsigned k = 0;
	for (unsigned i = 0; i < n; i++)
		if (cfgs[i].bus == bus)
			out[k++] = cfgs[i];
	return k;
}

int storage_check(const struct disk_config *cfgs, unsigned n, char *err, size_t errlen)
{
	struct disk_config *group = calloc(n ? n : 1, sizeof(*group));
	int ret = 0;
	if (!group) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (int bus = DISK_BUS_SATA; bus <= DISK_BUS_LAST && !ret; bus++) {
		unsigned k = storage_group(cfgs, n, bus, group);
		if (!k)
			continue;
		const struct storage_controller *c = storage_controller_find(bus);
		if (!c) {
			snprintf(err, errlen, "%s: bus=%s is not supported yet",
				 group[0].path ? group[0].path : "disk", disk_bus_name(bus));
			ret = -ENOTSUP;
		} else if (c->check) {
			ret = c->check(group, k, err, errlen);
		}
	}
	free(group);
	return ret;
}

/* The I/O thread: completions of every disk run here (controllers lock themselves). A CD-ROM's
 * medium (and with it its aio context) can change: the contexts are sampled under s->lock and
 * completed only if still current, so a context closed by a media change is never touched. */
static void *storage_thread(void *opaque)
{
	struct storage *s = opaque;
	struct pollfd *fds = calloc(s->ndisks + 1, sizeof(*fds));
	struct block_aio_ctx **seen = calloc(s->ndisks + 1, sizeof(*seen));
	if (!fds || !seen) {
		free(fds);
		free(seen);
		fprintf(stderr, "storage: I/O thread: out of memory\n");
		return NULL;
	}
	for (;;) {
		fds[0] = (struct pollfd){.fd = s->stop_fd, .events = POLLIN};
		pthread_mutex_lock(&s->lock);
		for (unsigned i = 0; i < s->ndisks; i++) {
			seen[i] = s->disks[i]->aio;
			fds[i + 1] = (struct pollfd){.fd = seen[i] ? block_aio_fd(seen[i]) : -1,
						     .events = POLLIN};
		}
		pthread_mutex_unlock(&s->lock);
		/* Bounded, so that a medium inserted meanwhile is polled soon. */
		if (poll(fds, s->ndisks + 1, 200) < 0 && errno != EINTR)
			break;
		if (fds[0].revents)
			break;
		pthread_mutex_lock(&s->lock);
		for (unsigned i = 0; i < s->ndisks; i++)
			if (seen[i] && seen[i] == s->disks[i]->aio && fds[i + 1].revents)
				block_aio_complete(seen[i]);
		pthread_mutex_unlock(&s->lock);
	}
	free(fds);
	free(seen);
	return NULL;
}

int storage_create(const struct storage_env *env, const struct disk_config *cfgs, unsigned n,
		   struct storage **out, char *err, size_t errlen)
{
	struct storage *s = calloc(1, sizeof(*s));
	int ret;

	*out = NULL;
	if (!s || !(s->disks = calloc(n ? n : 1, sizeof(*s->disks)))) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->stop_fd = -1;
	s->env = *env;
	s->env.media_lock = &s->lock;
	pthread_mutex_init(&s->lock, NULL);
	if ((ret = storage_check(cfgs, n, err, errlen)) < 0)
		goto fail;
	for (unsigned i = 0; i < n; i++) {
		if ((ret = disk_open(&cfgs[i], i, &s->disks[i], err, errlen)) < 0)
			goto fail;
		s->ndisks++;
		if ((ret = disk_check_uuid(s->disks, s->ndisks, err, errlen)) < 0)
			goto fail;
	}
	for (int bus = DISK_BUS_SATA; bus <= DISK_BUS_LAST; bus++) {
		struct disk *group[n ? n : 1];
		unsigned k = 0;
		for (unsigned i = 0; i < n; i++)
			if (s->disks[i]->bus == (enum disk_bus)bus)
				group[k++] = s->disks[i];
		if (!k)
			continue;
		const struct storage_controller *c = storage_controller_find(bus);
		ret = c->create(&s->env, group, k, &s->ctl_state[s->nctl], err, errlen);
		if (ret < 0)
			goto fail;
		s->ctl[s->nctl++] = c;
	}
	s->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (s->stop_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "storage I/O thread: eventfd: %s", strerror(errno));
		goto fail;
	}
	if (n) {
		ret = -pthread_create(&s->thread, NULL, storage_thread, s);
		if (ret < 0) {
			snprintf(err, errlen, "storage I/O thread: %s", strerror(-ret));
			goto fail;
		}
		s->thread_started = true;
	}
	*out = s;
	return 0;
fail:
	storage_destroy(s);
	return ret;
}

void storage_destroy(struct storage *s)
{
	if (!s)
		return;
	if (s->thread_started) {
		uint64_t one = 1;
		if (write(s->stop_fd, &one, sizeof(one)) < 0)
			perror("storage: stopping the I/O thread");
		pthread_join(s->thread, NULL);
	}
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	/* Let every request in flight finish while its controller still exists. */
	for (unsigned i = 0; i < s->ndisks; i++)
		while (s->disks[i]->aio && block_aio_pending(s->disks[i]->aio))
			block_aio_poll(s->disks[i]->aio, 1000);
	for (unsigned i = s->nctl; i-- > 0;)
		s->ctl[i]->destroy(s->ctl_state[i]);
	for (unsigned i = 0; i < s->ndisks; i++)
		disk_close(s->disks[i]);
	pthread_mutex_destroy(&s->lock);
	free(s->disks);
	free(s);
}

int storage_change_medium(struct storage *s, unsigned index, const char *path, bool force,
			  char *err, size_t errlen)
{
	struct disk *d = NULL;
	unsigned k = 0;
	for (unsigned i = 0; i < s->ndisks && !d; i++)
		if (s->disks[i]->media == DISK_MEDIA_CDROM && k++ == index)
			d = s->disks[i];
	if (!d) {
		snprintf(err, errlen, "no CD-ROM drive %u", index);
		return -ENODEV;
	}
	const struct storage_controller *c = NULL;
	void *state = NULL;
	for (unsigned i = 0; i < s->nctl; i++)
		if (s->ctl[i]->bus == d->bus) {
			c = s->ctl[i];
			state = s->ctl_state[i];
		}
	if (!c || !c->change_medium) {
		snprintf(err, errlen, "the %s controller cannot change media",
			 disk_bus_name(d->bus));
		return -ENOTSUP;
	}
	struct disk_medium m;
	int ret = disk_medium_open(path, &m, err, errlen);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&s->lock);
	ret = c->change_medium(state, d, &m, force, err, errlen);
	pthread_mutex_unlock(&s->lock);
	/* m is now the old medium on success, or still the new one on failure: close it either
	 * way, outside every lock (its last callbacks take the controller's). */
	disk_medium_close(&m);
	return ret;
}

struct disk *storage_disk(struct storage *s, unsigned index)
{
	return s && index < s->ndisks ? s->disks[index] : NULL;
}

/* How long storage_quiesce waits for requests in flight: a bound against a host file system
 * that never answers, not a figure anything depends on. */
#define STORAGE_QUIESCE_POLL_US 10000
#define STORAGE_QUIESCE_POLLS 6000

static unsigned storage_pending(struct storage *s)
{
	unsigned n = 0;
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < s->ndisks; i++)
		n += s->disks[i]->aio ? block_aio_pending(s->disks[i]->aio) : 0;
	pthread_mutex_unlock(&s->lock);
	return n;
}

int storage_quiesce(struct storage *s, char *err, size_t errlen)
{
	/* The vCPUs are paused, so only callbacks (run by the I/O thread) may submit more: wait
	 * until a pass over every disk finds nothing in flight. */
	for (unsigned polls = 0; storage_pending(s); polls++) {
		if (polls == STORAGE_QUIESCE_POLLS) {
			snprintf(err, errlen, "disk requests still in flight after %u s",
				 STORAGE_QUIESCE_POLLS * (STORAGE_QUIESCE_POLL_US / 1000) / 1000);
			return -EBUSY;
		}
		usleep(STORAGE_QUIESCE_POLL_US);
	}
	for (unsigned i = 0; i < s->ndisks; i++) {
		struct disk *d = s->disks[i];
		if (!d->bs || d->read_only)
			continue;
		int ret = block_flush(d->bs);
		if (ret < 0) {
			snprintf(err, errlen, "%s: flush: %s", d->path, block_last_error());
			return ret;
		}
	}
	return 0;
}

int storage_switch_layers(struct storage *s, const char *const *layers, const char *const *formats,
			  unsigned n, char *err, size_t errlen)
{
	struct disk_medium *m = calloc(n ? n : 1, sizeof(*m));
	unsigned i;
	int ret = 0;
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (n > s->ndisks) {
		snprintf(err, errlen, "%u disks to switch, the VM has %u", n, s->ndisks);
		free(m);
		return -EINVAL;
	}
	for (i = 0; i < n && !ret; i++) {
		struct disk *d = s->disks[i];
		if (!layers[i])
			continue;
		/* The current top becomes the snapshot's: only read from now on, and the new
		 * chain's read lock on it must not collide with our own write lock. */
		if (!d->bs || (ret = disk_lock_chain(d->bs, false, err, errlen)) < 0 ||
		    (ret = disk_layer_open(d, layers[i], formats[i], &m[i], err, errlen)) < 0) {
			if (!d->bs) {
				snprintf(err, errlen, "disk %u has no medium", i);
				ret = -EINVAL;
			}
			i++; /* undo this one's downgrade too */
			break;
		}
	}
	if (ret < 0) {
		while (i-- > 0) {
			if (!layers[i])
				continue;
			disk_medium_close(&m[i]);
			char e2[256];
			if (s->disks[i]->bs &&
			    disk_lock_chain(s->disks[i]->bs, true, e2, sizeof(e2)))
				fprintf(stderr, "storage: %s\n", e2);
		}
		free(m);
		return ret;
	}
	/* Nothing is in flight (storage_quiesce): swap every disk at once. */
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < n; i++)
		if (layers[i])
			disk_medium_swap(s->disks[i], &m[i]);
	pthread_mutex_unlock(&s->lock);
	for (i = 0; i < n; i++)
		disk_medium_close(
		    &m[i]); /* the old chains: their locks go, the new chains keep theirs */
	free(m);
	return 0;
}
