/* lib/event_loop: fds, timers, removal from callbacks, calls from other threads, stop; and
 * lib/worker: jobs in order, on their own thread.  No result depends on timing: timers are
 * awaited, never raced. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/event_loop.h"
#include "lib/worker.h"

struct counter {
	struct event_loop *loop;
	int fd;
	unsigned hits;
	unsigned stop_after;
	struct event_source *self, *victim;
};

static void efd_signal(int fd)
{
	uint64_t one = 1;
	assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

static void on_fd(void *opaque, uint32_t events)
{
	struct counter *c = opaque;
	assert_true(events & EPOLLIN);
	uint64_t v;
	assert_int_equal(read(c->fd, &v, sizeof(v)), sizeof(v));
	c->hits++;
	if (c->hits == c->stop_after)
		event_loop_stop(c->loop);
}

static void test_fd_source(void **state)
{
	(void)state;
	struct event_loop *l;
	assert_int_equal(event_loop_create(&l), 0);
	struct counter c = {.loop = l, .fd = eventfd(0, EFD_NONBLOCK), .stop_after = 1};
	assert_int_equal(event_loop_add_fd(l, c.fd, EPOLLIN, on_fd, &c, &c.self), 0);
	efd_signal(c.fd);
	assert_int_equal(event_loop_run(l), 0);
	assert_int_equal(c.hits, 1);
	/* Paused with 0 events: a ready fd is not reported. */
	assert_int_equal(event_source_set_events(c.self, 0), 0);
	efd_signal(c.fd);
	event_loop_stop(l); /* before run: run returns at once */
	assert_int_equal(event_loop_run(l), 0);
	assert_int_equal(c.hits, 1);
	assert_int_equal(event_source_set_events(c.self, EPOLLIN), 0);
	c.stop_after = 2;
	assert_int_equal(event_loop_run(l), 0);
	assert_int_equal(c.hits, 2);
	event_source_remove(c.self);
	event_loop_destroy(l);
	close(c.fd);
}

static void on_timer(void *opaque, uint32_t events)
{
	struct counter *c = opaque;
	assert_true(events & EPOLLIN);
	c->hits++;
	if (c->hits == c->stop_after)
		event_loop_stop(c->loop);
}

static void test_timers(void **state)
{
	(void)state;
	struct event_loop *l;
	assert_int_equal(event_loop_create(&l), 0);
	struct counter once = {.loop = l}, periodic = {.loop = l, .stop_after = 3};
	struct event_source *t1, *t2, *disarmed;
	assert_int_equal(event_loop_add_timer(l, 1000, 0, on_timer, &once, &t1), 0);
	assert_int_equal(event_loop_add_timer(l, 1000, 1000, on_timer, &periodic, &t2), 0);
	assert_int_equal(event_loop_add_timer(l, 0, 0, on_timer, &once, &disarmed), 0);
	assert_int_equal(event_loop_run(l), 0);
	assert_int_equal(periodic.hits, 3);
	assert_int_equal(once.hits, 1); /* one-shot, and the disarmed one never fired */
	event_source_remove(t2);
	/* Re-arm the one-shot timer and wait for it. */
	once.stop_after = 2;
	assert_int_equal(event_timer_arm(t1, 1000, 0), 0);
	assert_int_equal(event_loop_run(l), 0);
	assert_int_equal(once.hits, 2);
	/* destroy frees the sources still registered (ASan checks the rest). */
	event_loop_destroy(l);
}

/* Two sources ready in one batch: the first removes the second (and itself); the second's
 * callback must not run, and nothing is freed under the loop's feet. */
static void remover(void *opaque, uint32_t events)
{
	(void)events;
	struct counter *c = opaque;
	c->hits++;
	event_source_remove(c->victim);
	event_source_remove(c->self);
	event_source_remove(c->self); /* twice is harmless */
	event_loop_stop(c->loop);
}

static void test_remove_in_callback(void **state)
{
	(void)state;
	struct event_loop *l;
	assert_int_equal(event_loop_create(&l), 0);
	int fd = eventfd(0, EFD_NONBLOCK);
	struct counter a = {.loop = l, .fd = fd}, b = {.loop = l, .fd = fd};
	assert_int_equal(event_loop_add_fd(l, fd, EPOLLIN, remover, &a, &a.self), 0);
	int fd2 = dup(fd);
	assert_int_equal(event_loop_add_fd(l, fd2, EPOLLIN, remover, &b, &b.self), 0);
	a.victim = b.self;
	b.victim = a.self;
	efd_signal(fd);
	assert_int_equal(event_loop_run(l), 0);
	assert_int_equal(a.hits + b.hits, 1);
	event_loop_destroy(l);
	close(fd);
	close(fd2);
}

struct caller {
	struct event_loop *loop;
	unsigned calls;
	bool on_loop_thread;
	pthread_t loop_thread, thread;
};

static void count_call(void *opaque)
{
	struct caller *c = opaque;
	c->calls++;
	c->on_loop_thread = pthread_equal(pthread_self(), c->loop_thread);
}

static void stop_call(void *opaque)
{
	event_loop_stop(opaque);
}

static void *call_thread(void *arg)
{
	struct caller *c = arg;
	for (int i = 0; i < 100; i++)
		assert_int_equal(event_loop_call_wait(c->loop, count_call, c), 0);
	assert_int_equal(event_loop_call(c->loop, stop_call, c->loop), 0);
	return NULL;
}

static void start_call_thread(void *opaque)
{
	struct caller *c = opaque;
	assert_int_equal(pthread_create(&c->thread, NULL, call_thread, c), 0);
}

static void test_calls_from_threads(void **state)
{
	(void)state;
	struct event_loop *l;
	assert_int_equal(event_loop_create(&l), 0);
	struct caller c = {.loop = l, .loop_thread = pthread_self()};
	/* The thread starts from inside the loop, so its calls find the loop running. */
	assert_int_equal(event_loop_call(l, start_call_thread, &c), 0);
	assert_int_equal(event_loop_run(l), 0);
	pthread_join(c.thread, NULL);
	assert_int_equal(c.calls, 100);
	assert_true(c.on_loop_thread);
	/* Not running: call_wait runs at once on the caller's thread. */
	c.loop_thread = pthread_self();
	assert_int_equal(event_loop_call_wait(l, count_call, &c), 0);
	assert_int_equal(c.calls, 101);
	event_loop_destroy(l);
}

/* A caller that races the loop's end is never left waiting. */
static void *late_caller(void *arg)
{
	struct caller *c = arg;
	assert_int_equal(event_loop_call_wait(c->loop, count_call, c), 0);
	return NULL;
}

static void test_call_wait_races_stop(void **state)
{
	(void)state;
	for (int round = 0; round < 50; round++) {
		struct event_loop *l;
		assert_int_equal(event_loop_create(&l), 0);
		struct caller c = {.loop = l, .loop_thread = pthread_self()};
		pthread_t t;
		event_loop_call(l, stop_call, l);
		assert_int_equal(pthread_create(&t, NULL, late_caller, &c), 0);
		assert_int_equal(event_loop_run(l), 0);
		pthread_join(t, NULL); /* hangs (test killed) if the call was lost */
		assert_int_equal(c.calls, 1);
		event_loop_destroy(l);
	}
}

/* --- worker --- */

struct jobs {
	pthread_mutex_t lock;
	int order[8];
	int n;
	pthread_t main_thread;
	bool off_main;
	struct worker *w;
};

struct job_arg {
	struct jobs *j;
	int id;
};

static void job(void *opaque)
{
	struct job_arg *a = opaque;
	pthread_mutex_lock(&a->j->lock);
	a->j->order[a->j->n++] = a->id;
	a->j->off_main = !pthread_equal(pthread_self(), a->j->main_thread);
	pthread_mutex_unlock(&a->j->lock);
	assert_true(worker_on_thread(a->j->w));
}

static struct job_arg chained = {NULL, 99};

static void job_queues_another(void *opaque)
{
	struct job_arg *a = opaque;
	job(a);
	chained.j = a->j;
	assert_int_equal(worker_submit(a->j->w, job, &chained), 0);
}

static void test_worker_order(void **state)
{
	(void)state;
	struct jobs j = {.lock = PTHREAD_MUTEX_INITIALIZER, .main_thread = pthread_self()};
	assert_int_equal(worker_create("test-worker", &j.w), 0);
	struct job_arg args[5];
	for (int i = 0; i < 5; i++) {
		args[i] = (struct job_arg){&j, i};
		assert_int_equal(worker_submit(j.w, i == 2 ? job_queues_another : job, &args[i]),
				 0);
	}
	assert_false(worker_on_thread(j.w));
	worker_destroy(j.w); /* runs everything queued, the chained job included */
	assert_int_equal(j.n, 6);
	/* 0..4 in submission order; the chained job somewhere after the job that queued it. */
	int next = 0, chained_at = -1;
	for (int i = 0; i < 6; i++) {
		if (j.order[i] == 99)
			chained_at = i;
		else
			assert_int_equal(j.order[i], next++);
	}
	assert_true(chained_at > 2);
	assert_true(j.off_main);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fd_source),
	    cmocka_unit_test(test_timers),
	    cmocka_unit_test(test_remove_in_callback),
	    cmocka_unit_test(test_calls_from_threads),
	    cmocka_unit_test(test_call_wait_races_stop),
	    cmocka_unit_test(test_worker_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
