/* The VM's disks: controller registry, opening, completions on the event loop, drain and reset
 * (see devices/storage.h). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "devices/device.h"
#include "devices/storage.h"
#include "lib/event_loop.h"
#include "storage/core/block.h"
#include "storage/core/block_aio.h"
#include "storage/core/disk_lock.h"
#include "devices/machine_config.h"
#include "lib/log.h"
#include "lib/error.h"

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

/* One disk's completions as an event-loop source. */
struct disk_watch {
	struct storage *s;
	struct disk *d;
	struct event_source *src; /* NULL while the disk has no medium */
};

struct storage {
	struct storage_env env;
	pthread_mutex_t lock; /* with `drained`: storage_drain waits for completions */
	pthread_cond_t drained;
	struct disk **disks;
	struct disk_watch *watch;
	unsigned ndisks;
	const struct storage_controller *ctl[STORAGE_MAX_CONTROLLERS];
	void *ctl_state[STORAGE_MAX_CONTROLLERS];
	unsigned nctl;
	struct event_loop *loop;
	bool own_loop; /* no loop given: ours runs on `thread` */
	pthread_t thread;
	bool thread_started;
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

int storage_check(const struct disk_config *cfgs, unsigned n)
{
	struct disk_config *group = calloc(n ? n : 1, sizeof(*group));
	int ret = 0;
	if (!group)
		return error_set(-ENOMEM, "out of memory");
	for (int bus = DISK_BUS_SATA; bus <= DISK_BUS_LAST && !ret; bus++) {
		unsigned k = storage_group(cfgs, n, bus, group);
		if (!k)
			continue;
		const struct storage_controller *c = storage_controller_find(bus);
		if (!c) {
			ret = error_set(-ENOTSUP, "%s: bus=%s is not supported yet",
					group[0].path ? group[0].path : "disk", disk_bus_name(bus));
		} else if (c->check) {
			ret = c->check(group, k);
		}
	}
	free(group);
	return ret;
}

/* On the loop thread: run the disk's finished requests, then wake storage_drain. */
static void disk_ready(void *opaque, uint32_t events)
{
	struct disk_watch *w = opaque;
	(void)events;
	block_aio_complete(w->d->aio);
	pthread_mutex_lock(&w->s->lock);
	pthread_cond_broadcast(&w->s->drained);
	pthread_mutex_unlock(&w->s->lock);
}

/* werror=stop: on the loop thread, after block_aio_complete parked a failed write. */
static void disk_stopped(void *opaque)
{
	struct disk_watch *w = opaque;
	log_error(NULL,
		  "%s: a write failed (no space, or an I/O error): pausing the VM (werror=stop); "
		  "free space, then `minivmm control NAME resume` retries it",
		  w->d->path ? w->d->path : "disk");
	if (w->s->env.io_error_pause)
		w->s->env.io_error_pause(w->s->env.pause_opaque);
}

/* Watch the disk's current aio context (none without a medium).  Loop thread, or loop stopped.
 * Every new context (a snapshot layer, a medium) gets the disk's werror policy here. */
static int watch_disk(struct disk_watch *w)
{
	if (!w->d->aio)
		return 0;
	if (w->d->werror == DISK_WERROR_STOP)
		block_aio_set_stop_on_error(w->d->aio, disk_stopped, w);
	return event_loop_add_fd(w->s->loop, block_aio_fd(w->d->aio), EPOLLIN, disk_ready, w,
				 &w->src);
}

static void unwatch_disk(struct disk_watch *w)
{
	event_source_remove(w->src);
	w->src = NULL;
}

static void *storage_thread(void *opaque)
{
	struct storage *s = opaque;
	int r = event_loop_run(s->loop);
	if (r < 0)
		log_error("storage", "I/O thread: %s", strerror(-r));
	return NULL;
}

int storage_create(const struct storage_env *env, const struct disk_config *cfgs, unsigned n,
		   struct storage **out)
{
	struct storage *s = calloc(1, sizeof(*s));
	int ret;

	*out = NULL;
	if (!s || !(s->disks = calloc(n ? n : 1, sizeof(*s->disks))) ||
	    !(s->watch = calloc(n ? n : 1, sizeof(*s->watch)))) {
		if (s)
			free(s->disks);
		free(s);
		return error_set(-ENOMEM, "out of memory");
	}
	s->env = *env;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* storage_drain's deadline */
	pthread_cond_init(&s->drained, &attr);
	pthread_condattr_destroy(&attr);
	if ((ret = storage_check(cfgs, n)) < 0)
		goto fail;
	for (unsigned i = 0; i < n; i++) {
		if ((ret = disk_open(&cfgs[i], i, &s->disks[i])) < 0)
			goto fail;
		s->watch[i] = (struct disk_watch){.s = s, .d = s->disks[i]};
		s->ndisks++;
		if ((ret = disk_check_uuid(s->disks, s->ndisks)) < 0)
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
		ret = c->create(&s->env, group, k, &s->ctl_state[s->nctl]);
		if (ret < 0)
			goto fail;
		s->ctl[s->nctl++] = c;
	}
	s->loop = env->loop;
	if (!s->loop) {
		if ((ret = event_loop_create(&s->loop)) < 0) {
			error_set(ret, "storage I/O loop: %s", strerror(-ret));
			goto fail;
		}
		s->own_loop = true;
	}
	for (unsigned i = 0; i < s->ndisks; i++) {
		if ((ret = watch_disk(&s->watch[i])) < 0) {
			error_set(ret, "%s: watching its completions: %s", s->disks[i]->path,
				  strerror(-ret));
			goto fail;
		}
	}
	if (s->own_loop && n) {
		/* The I/O thread takes no signals: they belong to the VM's main loop. */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		ret = -pthread_create(&s->thread, NULL, storage_thread, s);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (ret < 0) {
			error_set(ret, "storage I/O thread: %s", strerror(-ret));
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
		event_loop_stop(s->loop);
		pthread_join(s->thread, NULL);
	}
	for (unsigned i = 0; i < s->ndisks; i++)
		unwatch_disk(&s->watch[i]);
	if (s->own_loop)
		event_loop_destroy(s->loop);
	for (unsigned i = 0; i < s->ndisks; i++)
		disk_release_stopped(s->disks[i]);
	/* Let every request in flight finish while its controller still exists: each wait ends
	 * with a completion, whose callback runs here. */
	for (unsigned i = 0; i < s->ndisks; i++)
		while (s->disks[i]->aio && block_aio_pending(s->disks[i]->aio))
			block_aio_poll(s->disks[i]->aio, -1);
	for (unsigned i = s->nctl; i-- > 0;)
		s->ctl[i]->destroy(s->ctl_state[i]);
	for (unsigned i = 0; i < s->ndisks; i++)
		disk_close(s->disks[i]);
	pthread_cond_destroy(&s->drained);
	pthread_mutex_destroy(&s->lock);
	free(s->watch);
	free(s->disks);
	free(s);
}

/* A medium swap, run on the loop thread: the loop then watches the new context only. */
struct swap_call {
	struct storage *s;
	unsigned index;
	const struct storage_controller *c;
	void *state;
	struct disk_medium *m;
	bool force;
	int ret;
	char msg[512]; /* the loop thread's message for ret (lib/error.h is per thread) */
};

static void swap_on_loop(void *opaque)
{
	struct swap_call *call = opaque;
	struct disk_watch *w = &call->s->watch[call->index];
	unwatch_disk(w);
	if (call->c)
		call->ret = call->c->change_medium(call->state, w->d, call->m, call->force);
	else
		disk_medium_swap(w->d, call->m); /* a new layer: nothing in flight */
	if (call->ret < 0)
		snprintf(call->msg, sizeof(call->msg), "%s", error_msg());
	int r = watch_disk(w);
	if (r < 0) /* out of memory: the disk's completions would never run */
		log_error("storage", "%s: cannot watch its completions: %s",
			  w->d->path ? w->d->path : "cdrom", strerror(-r));
}

int storage_change_medium(struct storage *s, unsigned index, const char *path, bool force)
{
	struct disk *d = NULL;
	unsigned k = 0;
	for (unsigned i = 0; i < s->ndisks && !d; i++)
		if (s->disks[i]->media == DISK_MEDIA_CDROM && k++ == index)
			d = s->disks[i];
	if (!d)
		return error_set(-ENODEV, "no CD-ROM drive %u", index);
	const struct storage_controller *c = NULL;
	void *state = NULL;
	for (unsigned i = 0; i < s->nctl; i++)
		if (s->ctl[i]->bus == d->bus) {
			c = s->ctl[i];
			state = s->ctl_state[i];
		}
	if (!c || !c->change_medium)
		return error_set(-ENOTSUP, "the %s controller cannot change media",
				 disk_bus_name(d->bus));
	struct disk_medium m;
	int ret = disk_medium_open(path, &m);
	if (ret < 0)
		return ret;
	struct swap_call call = {
	    .s = s, .index = (unsigned)(d->index), .c = c, .state = state, .m = &m, .force = force};
	for (unsigned i = 0; i < s->ndisks; i++)
		if (s->disks[i] == d)
			call.index = i;
	ret = event_loop_call_wait(s->loop, swap_on_loop, &call);
	if (ret == 0 && call.ret < 0)
		ret = error_set(call.ret, "%s", call.msg);
	/* m is now the old medium on success, or still the new one on failure: close it either
	 * way, outside every lock (its last callbacks take the controller's). */
	disk_medium_close(&m);
	return ret;
}

struct disk *storage_disk(struct storage *s, unsigned index)
{
	return s && index < s->ndisks ? s->disks[index] : NULL;
}

/* How long storage_drain waits for requests in flight: a bound against a host file system that
 * never answers, not a figure anything depends on. */
#define STORAGE_DRAIN_TIMEOUT_S 60

static unsigned storage_pending(struct storage *s)
{
	unsigned n = 0;
	for (unsigned i = 0; i < s->ndisks; i++)
		n += s->disks[i]->aio ? block_aio_pending(s->disks[i]->aio) : 0;
	return n;
}

unsigned storage_retry_stopped(struct storage *s)
{
	unsigned n = 0;
	for (unsigned i = 0; s && i < s->ndisks; i++)
		if (s->disks[i]->aio)
			n += block_aio_retry_stopped(s->disks[i]->aio);
	return n;
}

int storage_drain(struct storage *s)
{
	/* Writes waiting for a resume (werror=stop) would never drain: they fail now. */
	for (unsigned i = 0; i < s->ndisks; i++)
		disk_release_stopped(s->disks[i]);
	if (event_loop_on_thread(s->loop))
		return error_set(-EDEADLK,
				 "storage: cannot wait for disk requests on the event loop");
	if (!s->own_loop && !event_loop_running(s->loop)) {
		/* The VM is ending and its loop has stopped (a verb still queued behind the end):
		 * nobody else runs completions now, so run them here. */
		for (unsigned i = 0; i < s->ndisks; i++)
			while (s->disks[i]->aio && block_aio_pending(s->disks[i]->aio))
				block_aio_poll(s->disks[i]->aio, -1);
		return 0;
	}
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += STORAGE_DRAIN_TIMEOUT_S;
	int ret = 0;
	/* Callbacks may submit more (a DMA in chunks): wait until a look at every disk finds
	 * nothing.  Each completion batch broadcasts `drained` under s->lock, after which the
	 * pending counts have dropped, so no wake-up is lost between the look and the wait. */
	pthread_mutex_lock(&s->lock);
	while (storage_pending(s) && ret == 0)
		ret = pthread_cond_timedwait(&s->drained, &s->lock, &deadline);
	pthread_mutex_unlock(&s->lock);
	if (ret == ETIMEDOUT && storage_pending(s))
		return error_set(-EBUSY, "disk requests still in flight after %d s",
				 STORAGE_DRAIN_TIMEOUT_S);
	return 0;
}

void storage_reset(struct storage *s)
{
	for (unsigned i = 0; i < s->nctl; i++)
		if (s->ctl[i]->reset)
			s->ctl[i]->reset(s->ctl_state[i]);
}

int storage_quiesce(struct storage *s)
{
	int ret = storage_drain(s);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < s->ndisks; i++) {
		struct disk *d = s->disks[i];
		if (!d->bs || d->read_only)
			continue;
		int ret = block_flush(d->bs);
		if (ret < 0)
			return error_wrap(ret, "%s: flush", d->path);
	}
	return 0;
}

/* disk_lock_chain, for the snapshot switch below. */
static int storage_lock_chain(struct block_device *bs, bool write)
{
	return disk_lock_chain(bs, write);
}

int storage_switch_layers(struct storage *s, const char *const *layers, const char *const *formats,
			  unsigned n)
{
	struct disk_medium *m = calloc(n ? n : 1, sizeof(*m));
	unsigned i;
	int ret = 0;
	if (!m)
		return error_set(-ENOMEM, "out of memory");
	if (n > s->ndisks) {
		error_set(-EINVAL, "%u disks to switch, the VM has %u", n, s->ndisks);
		free(m);
		return -EINVAL;
	}
	for (i = 0; i < n && !ret; i++) {
		struct disk *d = s->disks[i];
		if (!layers[i])
			continue;
		/* The current top becomes the snapshot's: only read from now on, and the new
		 * chain's read lock on it must not collide with our own write lock. */
		if (!d->bs || (ret = storage_lock_chain(d->bs, false)) < 0 ||
		    (ret = disk_layer_open(d, layers[i], formats[i], &m[i])) < 0) {
			if (!d->bs) {
				ret = error_set(-EINVAL, "disk %u has no medium", i);
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
			if (s->disks[i]->bs && disk_lock_chain(s->disks[i]->bs, true))
				log_error("storage", "%s", error_msg());
		}
		free(m);
		return ret;
	}
	/* Nothing is in flight (storage_quiesce): swap every disk, on the loop thread. */
	for (i = 0; i < n; i++) {
		if (!layers[i])
			continue;
		struct swap_call call = {.s = s, .index = i, .m = &m[i]};
		event_loop_call_wait(s->loop, swap_on_loop, &call);
	}
	for (i = 0; i < n; i++)
		disk_medium_close(
		    &m[i]); /* the old chains: their locks go, the new chains keep theirs */
	free(m);
	return 0;
}

/* ---- storage as a machine device ---- */

static void storage_io_error_pause(void *opaque)
{
	struct device_env *env = opaque;
	env->request(env->opaque, DEVICE_REQUEST_PAUSE);
}

static int storage_device_create(struct device_env *env, void **state)
{
	struct storage_env senv = {.pci = env->pci,
				   .pio = env->pio,
				   .mem = env->mem,
				   .set_irq = env->irq->set_irq,
				   .irq_opaque = env->opaque,
				   .loop = env->loop,
				   .ncpus = env->machine ? env->machine->cpus : 1,
				   .io_error_pause = storage_io_error_pause,
				   .pause_opaque = env};
	struct storage *s;
	/* storage_create's messages name the image and the problem: they pass through. */
	int r = storage_create(&senv, env->machine ? env->machine->disks : NULL,
			       env->machine ? env->machine->ndisks : 0, &s);
	if (r < 0)
		return r;
	if ((r = storage_register_verbs(s, env)) < 0) {
		storage_destroy(s);
		return r;
	}
	*state = s;
	return 0;
}

static int storage_device_quiesce(void *state)
{
	return storage_drain(state);
}

static void storage_device_reset(void *state)
{
	storage_reset(state);
}

static void storage_device_destroy(void *state)
{
	storage_destroy(state);
}

static const struct device_ops storage_device = {
    .name = "storage",
    .create = storage_device_create,
    .quiesce = storage_device_quiesce,
    .reset = storage_device_reset,
    .destroy = storage_device_destroy,
};
DEVICE(storage_device, DEVICE_LEVEL_STORAGE);
