/* The job thread (see worker.h): a queue under a mutex, a condition variable to wait on. */
#include "lib/worker.h"
#include "lib/sandbox.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

struct job {
	void (*fn)(void *);
	void *opaque;
	struct job *next;
};

struct worker {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *head, **tail;
	bool stopping;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->head && !w->stopping)
			pthread_cond_wait(&w->cond, &w->lock);
		struct job *j = w->head;
		if (!j)
			break; /* stopping and nothing left */
		w->head = j->next;
		if (!w->head)
			w->tail = &w->head;
		pthread_mutex_unlock(&w->lock);
		sandbox_enter(SANDBOX_WORKER); /* once the VM is set up (lib/sandbox.h) */
		j->fn(j->opaque);
		free(j);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int worker_create(const char *name, struct worker **out)
{
	struct worker *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->tail = &w->head;
	/* The worker takes no signals: they belong to the VM's main loop (signalfd). */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int ret = -pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret < 0) {
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return ret;
	}
	if (name)
		pthread_setname_np(w->thread, name);
	*out = w;
	return 0;
}

void worker_destroy(struct worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

int worker_submit(struct worker *w, void (*fn)(void *), void *opaque)
{
	struct job *j = malloc(sizeof(*j));
	if (!j)
		return -ENOMEM;
	*j = (struct job){.fn = fn, .opaque = opaque};
	pthread_mutex_lock(&w->lock);
	if (w->stopping && !pthread_equal(pthread_self(), w->thread)) {
		pthread_mutex_unlock(&w->lock);
		free(j);
		return -ESHUTDOWN;
	}
	*w->tail = j;
	w->tail = &j->next;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

bool worker_on_thread(const struct worker *w)
{
	return pthread_equal(pthread_self(), w->thread);
}
