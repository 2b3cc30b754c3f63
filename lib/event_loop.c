/* The event loop (see event_loop.h): epoll over fds and timerfds, plus an eventfd that carries
 * calls queued by other threads and the stop request. */
#include "lib/event_loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define EVENT_BATCH 32

struct event_source {
	struct event_loop *loop;
	int fd;
	bool is_timer; /* owns fd */
	bool dead;     /* removed during a batch: freed after it */
	event_fn *fn;
	void *opaque;
	struct event_source *next_dead;
};

struct call {
	void (*fn)(void *);
	void *opaque;
	bool *done; /* set (under lock) when a waiting caller wants to know */
	struct call *next;
};

struct event_loop {
	int epfd;
	int wake_fd; /* eventfd: queued calls or stop */
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	struct call *calls, **calls_tail;
	bool stop;
	bool running;
	pthread_t thread;
	struct event_source *dead;
	/* every live source, for event_loop_destroy */
	struct event_source **all;
	size_t nall, capall;
};

static int track(struct event_loop *l, struct event_source *s)
{
	if (l->nall == l->capall) {
		size_t cap = l->capall ? 2 * l->capall : 16;
		struct event_source **a = realloc(l->all, cap * sizeof(*a));
		if (!a)
			return -ENOMEM;
		l->all = a;
		l->capall = cap;
	}
	l->all[l->nall++] = s;
	return 0;
}

static void untrack(struct event_loop *l, struct event_source *s)
{
	for (size_t i = 0; i < l->nall; i++) {
		if (l->all[i] == s) {
			l->all[i] = l->all[--l->nall];
			return;
		}
	}
}

int event_loop_create(struct event_loop **out)
{
	struct event_loop *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->epfd < 0 || l->wake_fd < 0) {
		int ret = -errno;
		if (l->epfd >= 0)
			close(l->epfd);
		if (l->wake_fd >= 0)
			close(l->wake_fd);
		free(l);
		return ret;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_fd, &ev) < 0) {
		int ret = -errno;
		close(l->epfd);
		close(l->wake_fd);
		free(l);
		return ret;
	}
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->done_cond, NULL);
	l->calls_tail = &l->calls;
	*out = l;
	return 0;
}

static void source_free(struct event_source *s)
{
	if (s->is_timer)
		close(s->fd);
	free(s);
}

void event_loop_destroy(struct event_loop *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nall; i++)
		source_free(l->all[i]);
	while (l->dead) {
		struct event_source *s = l->dead;
		l->dead = s->next_dead;
		source_free(s);
	}
	while (l->calls) {
		struct call *c = l->calls;
		l->calls = c->next;
		free(c);
	}
	free(l->all);
	close(l->epfd);
	close(l->wake_fd);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->done_cond);
	free(l);
}

static int add_source(struct event_loop *l, int fd, bool is_timer, uint32_t events, event_fn *fn,
		      void *opaque, struct event_source **out)
{
	struct event_source *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*s = (struct event_source){
	    .loop = l, .fd = fd, .is_timer = is_timer, .fn = fn, .opaque = opaque};
	int ret = track(l, s);
	if (ret < 0) {
		free(s);
		return ret;
	}
	struct epoll_event ev = {.events = events, .data.ptr = s};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		ret = -errno;
		untrack(l, s);
		free(s);
		return ret;
	}
	if (out)
		*out = s;
	return 0;
}

int event_loop_add_fd(struct event_loop *l, int fd, uint32_t events, event_fn *fn, void *opaque,
		      struct event_source **out)
{
	return add_source(l, fd, false, events, fn, opaque, out);
}

int event_source_set_events(struct event_source *s, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = s};
	return epoll_ctl(s->loop->epfd, EPOLL_CTL_MOD, s->fd, &ev) < 0 ? -errno : 0;
}

static struct timespec ns_to_ts(uint64_t ns)
{
	return (struct timespec){.tv_sec = ns / 1000000000ull, .tv_nsec = ns % 1000000000ull};
}

int event_timer_arm(struct event_source *s, uint64_t first_ns, uint64_t period_ns)
{
	struct itimerspec its = {.it_value = ns_to_ts(first_ns),
				 .it_interval = ns_to_ts(period_ns)};
	return timerfd_settime(s->fd, 0, &its, NULL) < 0 ? -errno : 0;
}

int event_loop_add_timer(struct event_loop *l, uint64_t first_ns, uint64_t period_ns, event_fn *fn,
			 void *opaque, struct event_source **out)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct event_source *s;
	int ret = add_source(l, fd, true, EPOLLIN, fn, opaque, &s);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	if (first_ns && (ret = event_timer_arm(s, first_ns, period_ns)) < 0) {
		event_source_remove(s);
		return ret;
	}
	if (out)
		*out = s;
	return 0;
}

void event_source_remove(struct event_source *s)
{
	if (!s || s->dead)
		return;
	struct event_loop *l = s->loop;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	untrack(l, s);
	s->dead = true;
	s->next_dead = l->dead;
	l->dead = s;
	if (!l->running)
		while (l->dead) {
			struct event_source *d = l->dead;
			l->dead = d->next_dead;
			source_free(d);
		}
}

static void wake(struct event_loop *l)
{
	uint64_t one = 1;
	if (write(l->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is already non-zero, the loop will wake */
	}
}

static int queue_call(struct event_loop *l, void (*fn)(void *), void *opaque, bool *done)
{
	struct call *c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	*c = (struct call){.fn = fn, .opaque = opaque, .done = done};
	pthread_mutex_lock(&l->lock);
	*l->calls_tail = c;
	l->calls_tail = &c->next;
	pthread_mutex_unlock(&l->lock);
	wake(l);
	return 0;
}

int event_loop_call(struct event_loop *l, void (*fn)(void *), void *opaque)
{
	return queue_call(l, fn, opaque, NULL);
}

int event_loop_call_wait(struct event_loop *l, void (*fn)(void *), void *opaque)
{
	struct call *c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	bool done = false;
	*c = (struct call){.fn = fn, .opaque = opaque, .done = &done};
	/* Checked and queued under one lock: a loop that is stopping either sees the call in its
	 * final run_calls or was already stopped, and then the call runs here. */
	pthread_mutex_lock(&l->lock);
	bool direct = !l->running || pthread_equal(l->thread, pthread_self());
	if (!direct) {
		*l->calls_tail = c;
		l->calls_tail = &c->next;
	}
	pthread_mutex_unlock(&l->lock);
	if (direct) {
		free(c);
		fn(opaque);
		return 0;
	}
	wake(l);
	pthread_mutex_lock(&l->lock);
	while (!done)
		pthread_cond_wait(&l->done_cond, &l->lock);
	pthread_mutex_unlock(&l->lock);
	return 0;
}

/* Runs the queued calls; calls queued meanwhile wait for the next wake-up. */
static void run_calls(struct event_loop *l)
{
	uint64_t v;
	if (read(l->wake_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing pending */
	}
	pthread_mutex_lock(&l->lock);
	struct call *c = l->calls;
	l->calls = NULL;
	l->calls_tail = &l->calls;
	pthread_mutex_unlock(&l->lock);
	while (c) {
		struct call *next = c->next;
		c->fn(c->opaque);
		if (c->done) {
			pthread_mutex_lock(&l->lock);
			*c->done = true;
			pthread_cond_broadcast(&l->done_cond);
			pthread_mutex_unlock(&l->lock);
		}
		free(c);
		c = next;
	}
}

int event_loop_run(struct event_loop *l)
{
	pthread_mutex_lock(&l->lock);
	l->running = true;
	l->thread = pthread_self();
	pthread_mutex_unlock(&l->lock);
	int ret = 0;
	for (;;) {
		pthread_mutex_lock(&l->lock);
		bool stop = l->stop;
		pthread_mutex_unlock(&l->lock);
		if (stop)
			break;
		struct epoll_event evs[EVENT_BATCH];
		int n = epoll_wait(l->epfd, evs, EVENT_BATCH, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			struct event_source *s = evs[i].data.ptr;
			if (!s) {
				run_calls(l);
				continue;
			}
			if (s->dead)
				continue;
			if (s->is_timer) {
				uint64_t expirations;
				if (read(s->fd, &expirations, sizeof(expirations)) < 0)
					continue; /* re-armed or disarmed meanwhile */
			}
			s->fn(s->opaque, evs[i].events);
		}
		while (l->dead) {
			struct event_source *d = l->dead;
			l->dead = d->next_dead;
			source_free(d);
		}
	}
	/* Calls queued after the last dispatch still run, so no waiter is left blocked; calls
	 * queued while they run are taken too, until none is left. */
	for (;;) {
		pthread_mutex_lock(&l->lock);
		bool empty = !l->calls;
		if (empty) {
			l->running = false;
			l->stop = false;
		}
		pthread_mutex_unlock(&l->lock);
		if (empty)
			break;
		run_calls(l);
	}
	while (l->dead) {
		struct event_source *d = l->dead;
		l->dead = d->next_dead;
		source_free(d);
	}
	return ret;
}

void event_loop_stop(struct event_loop *l)
{
	pthread_mutex_lock(&l->lock);
	l->stop = true;
	pthread_mutex_unlock(&l->lock);
	wake(l);
}

bool event_loop_on_thread(const struct event_loop *l)
{
	return l->running && pthread_equal(l->thread, pthread_self());
}

bool event_loop_running(struct event_loop *l)
{
	pthread_mutex_lock(&l->lock);
	bool running = l->running;
	pthread_mutex_unlock(&l->lock);
	return running;
}
