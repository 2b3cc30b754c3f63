/* Execution cap: the per-period budget and the timer thread that checks it (cpu_cap.h). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "cpu/cpu_cap.h"

int64_t cpu_cap_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int64_t cpu_cap_check(struct cpu_cap_window *w, unsigned percent, int64_t now, int64_t busy,
		      int64_t *next_check)
{
	percent = percent < 1 ? 1 : percent > 100 ? 100 : percent;
	int64_t budget = CPU_CAP_PERIOD_NS * percent / 100;
	if (w->start == 0 || now < w->start) {
		w->start = now;
		w->busy_start = busy;
		w->tokens = budget;
	}
	if (busy < w->busy_start)
		busy = w->busy_start;
	/* The bucket fills at the cap's rate of wall time and drains by the time run.  A vCPU wakes
	 * from its cap sleep with `refill` in it; the bucket holds what CPU_CAP_LATE_NS more adds,
	 * so one that wakes that late (a busy host: a nested guest's whole machine stalls for
	 * hundreds of ms) loses nothing, and idle time banks little. */
	int64_t refill = budget * (100 - percent) / 100;
	int64_t late = CPU_CAP_LATE_NS * percent / 100, depth = refill + late;
	w->tokens += (now - w->start) * percent / 100 - (busy - w->busy_start);
	if (w->tokens > depth)
		w->tokens = depth;
	/* Time run past the budget is owed, up to what the same lateness adds: more is a stalled
	 * machine charging the running thread (nested, a busy host), and owing it all would stop a
	 * vCPU at 10% for seconds. */
	if (w->tokens < -late)
		w->tokens = -late;
	w->start = now;
	w->busy_start = busy;
	if (w->tokens > 0) {
		/* Flat out, the bucket drains at (100 - percent)% of wall time. */
		int64_t run = percent < 100 ? w->tokens * 100 / (100 - percent) : CPU_CAP_PERIOD_NS;
		*next_check = now + (run < CPU_CAP_PERIOD_NS ? run : CPU_CAP_PERIOD_NS);
		return 0;
	}
	/* Spent (or in debt, when the kick came late): sleep until the bucket holds the budget's
	 * (100 - percent)%: then the vCPU runs `budget` flat out and sleeps the rest of a period.
	 */
	int64_t want = refill - w->tokens;
	int64_t until = now + (want > 0 ? want * 100 / percent : 0);
	if (until <= now)
		until = now + 1;
	*next_check = until;
	return until;
}

void cpu_cap_restart(struct cpu_cap_window *w)
{
	w->start = 0;
}

int64_t cpu_cap_busy_kvm(int64_t active, int64_t halted, bool blocking, int64_t *last)
{
	if (!blocking)
		*last = active - halted;
	return *last;
}

struct cpu_cap_timer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	bool stop;
	int64_t (*tick)(void *opaque, int64_t now);
	void *opaque;
};

static void *timer_thread(void *arg)
{
	struct cpu_cap_timer *t = arg;
	pthread_setname_np(pthread_self(), "cpu-cap");
	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		pthread_mutex_unlock(&t->lock);
		int64_t now = cpu_cap_now();
		int64_t next = t->tick(t->opaque, now);
		if (next < now + CPU_CAP_MIN_CHECK_NS)
			next = now + CPU_CAP_MIN_CHECK_NS;
		if (next > now + CPU_CAP_PERIOD_NS)
			next = now + CPU_CAP_PERIOD_NS;
		struct timespec ts = {.tv_sec = next / 1000000000LL,
				      .tv_nsec = next % 1000000000LL};
		pthread_mutex_lock(&t->lock);
		if (!t->stop)
			pthread_cond_timedwait(&t->cond, &t->lock, &ts);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int cpu_cap_timer_start(int64_t (*tick)(void *opaque, int64_t now), void *opaque,
			struct cpu_cap_timer **out)
{
	struct cpu_cap_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->tick = tick;
	t->opaque = opaque;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	/* No signals here: the VMM takes its own through a signalfd. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(&t->thread, NULL, timer_thread, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->lock);
		free(t);
		return -r;
	}
	*out = t;
	return 0;
}

void cpu_cap_timer_stop(struct cpu_cap_timer *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
