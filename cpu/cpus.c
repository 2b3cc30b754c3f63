/* The vCPU state machine and threads (cpus.h).
 *
 * One mutex and one condition variable guard every slot and the machine-wide flags.  A vCPU
 * thread takes the lock only at its checkpoint, between two KVM_RUN calls; a caller that must
 * wait for a thread (pause, stop, unplug) waits on the condition or joins without the lock, and
 * marks the slot busy while it works outside the lock so that no other call touches it.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kvm.h>

#include "cpu/cpu_cap.h"
#include "cpu/cpu_cgroup.h"
#include "cpu/cpus.h"
#include "lib/sandbox.h"
#include "cpu/vcpu.h"
#include "lib/log.h"

#define VCPU_KICK_SIGNAL SIGUSR1

struct slot {
	struct cpus *c;
	unsigned id;
	struct vcpu *v; /* NULL while ABSENT */
	enum vcpu_state state;
	pthread_t thread;
	bool thread_alive; /* started and not yet joined */
	bool stop;	   /* the thread must leave its loop */
	bool holding;	   /* it asked for the machine to end: no KVM_RUN until a reset */
	bool busy;	   /* a plug or unplug works on it outside the lock */
	/* execution cap (cpu_cap.h) */
	bool active; /* out of its checkpoint: running the guest or handling an exit */
	struct cpu_cap_window cap;
	bool kvm_busy;		 /* busy from KVM's halted time (else the thread's CPU time) */
	int64_t active_ns;	 /* monotonic ns out of the checkpoint, before active_since */
	int64_t active_since;	 /* when it last left the checkpoint */
	int64_t busy_last;	 /* cpu_cap_busy_kvm()'s */
	unsigned long throttles; /* times it slept for the cap */
	int64_t cap_wake;	 /* monotonic ns its last cap sleep ends */
};

struct cpus {
	struct cpu_env env;
	const struct vcpu_ops *ops;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool started;
	bool pause_requested; /* from cpus_pause() until cpus_resume() */
	bool paused;	      /* every live thread reached its checkpoint */
	bool stopping, stopped;
	unsigned cap_percent;		 /* 100: no cap */
	pthread_mutex_t cap_lock;	 /* serializes cpus_set_cap() */
	struct cpu_cap_timer *cap_timer; /* running while capped (under cap_lock) */
	struct cpu_cgroup *cgroup;	 /* the cap's cgroup, if any: then no timer */
	struct slot slot[CPUS_MAX];
};

/* The slot of the vCPU thread running this code, to refuse calls that would wait for it. */
static __thread struct slot *current_slot;

static void kick_handler(int sig)
{
	(void)sig; /* only there to interrupt KVM_RUN with EINTR */
}

static int signal_setup(void)
{
	struct sigaction sa = {.sa_handler = kick_handler}; /* no SA_RESTART: KVM_RUN must return */
	sigemptyset(&sa.sa_mask);
	return sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0 ? -errno : 0;
}

/* Get the thread out of KVM_RUN soon.  Under the lock. */
static void kick(struct slot *s)
{
	if (!s->thread_alive)
		return;
	/* immediate_exit covers the window before the thread enters KVM_RUN, the signal the time
	 * inside it; the checkpoint clears it under the lock, so no kick is lost. */
	s->v->run->immediate_exit = 1;
	pthread_kill(s->thread, VCPU_KICK_SIGNAL);
}

static bool present(enum vcpu_state s)
{
	return s == VCPU_CREATED || s == VCPU_RUNNING || s == VCPU_PAUSED;
}

/* Busy ns of a vCPU at `now` (cpu_cap.h): from KVM's halted time where the backend has it, else
 * the CPU time of its thread (halted in the kernel the thread sleeps).  Under the lock. */
static int64_t busy_ns(struct slot *s, int64_t now)
{
	if (s->kvm_busy) {
		int64_t active = s->active_ns + (s->active ? now - s->active_since : 0), halted;
		bool blocking;
		if (s->c->ops->halted(s->v, &halted, &blocking) < 0)
			return s->busy_last; /* no figure: nothing spent */
		return cpu_cap_busy_kvm(active, halted, blocking, &s->busy_last);
	}
	clockid_t cid = CLOCK_THREAD_CPUTIME_ID; /* on the vCPU's own thread */
	struct timespec t;
	if (current_slot != s && (!s->thread_alive || pthread_getcpuclockid(s->thread, &cid)))
		return s->cap.busy_start; /* no figure: nothing spent */
	if (clock_gettime(cid, &t))
		return s->cap.busy_start;
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* The monotonic ns until which the vCPU must sleep for the cap, 0 to run.  Under the lock. */
static int64_t cap_sleep_until(struct cpus *c, struct slot *s)
{
	if (c->cap_percent >= 100 || c->cgroup) /* the kernel caps a cgroup's threads itself */
		return 0;
	int64_t now = cpu_cap_now(), next;
	return cpu_cap_check(&s->cap, c->cap_percent, now, busy_ns(s, now), &next);
}

/* Between two KVM_RUNs: wait while paused or holding, sleep while over the execution cap.
 * Returns false when the thread must end. */
static bool checkpoint(struct cpus *c, struct slot *s)
{
	bool go = false;
	pthread_mutex_lock(&c->lock);
	if (s->active)
		s->active_ns += cpu_cap_now() - s->active_since;
	s->active = false;
	for (;;) {
		if (s->stop)
			break;
		if (c->pause_requested) {
			if (s->state != VCPU_PAUSED) {
				s->state = VCPU_PAUSED;
				pthread_cond_broadcast(&c->cond);
			}
		} else if (!s->holding) {
			int64_t until = cap_sleep_until(c, s);
			if (!until) {
				go = true;
				break;
			}
			/* Pause, stop and cap changes broadcast: they end the sleep early. */
			s->throttles++;
			s->cap_wake = until;
			struct timespec ts = {.tv_sec = until / 1000000000LL,
					      .tv_nsec = until % 1000000000LL};
			pthread_cond_timedwait(&c->cond, &c->lock, &ts);
			continue;
		}
		pthread_cond_wait(&c->cond, &c->lock);
	}
	if (go) {
		s->v->run->immediate_exit = 0;
		s->active = true;
		s->active_since = cpu_cap_now();
	}
	pthread_mutex_unlock(&c->lock);
	return go;
}

/* The cap timer: kick every running vCPU whose budget is spent (its checkpoint then sleeps).
 * Returns when to look again. */
static int64_t cap_tick(void *opaque, int64_t now)
{
	struct cpus *c = opaque;
	int64_t next = now + CPU_CAP_PERIOD_NS;
	pthread_mutex_lock(&c->lock);
	int64_t budget = CPU_CAP_PERIOD_NS * c->cap_percent / 100;
	for (unsigned i = 0; c->cap_percent < 100 && i < CPUS_MAX; i++) {
		struct slot *s = &c->slot[i];
		if (!s->thread_alive || s->stop)
			continue;
		/* A vCPU asleep for the cap (or kicked now) runs its budget once it wakes: look
		 * then.  Without this the next look could come up to a period later, and a vCPU at
		 * 10% ran 17% (its overrun past the debt it may owe was forgiven). */
		if (!s->active) {
			if (s->cap_wake > now && s->cap_wake + budget < next)
				next = s->cap_wake + budget;
			continue;
		}
		int64_t check;
		int64_t until =
		    cpu_cap_check(&s->cap, c->cap_percent, now, busy_ns(s, now), &check);
		if (until) {
			kick(s);
			check = until + budget;
		}
		if (check < next)
			next = check;
	}
	pthread_mutex_unlock(&c->lock);
	return next;
}

static void hold(struct cpus *c, struct slot *s, enum cpu_end why)
{
	/* Holding first: the VMM may pause, reset and resume before env->end returns. */
	pthread_mutex_lock(&c->lock);
	s->holding = true;
	pthread_mutex_unlock(&c->lock);
	c->env.end(c->env.opaque, s->id, why);
}

static void *vcpu_thread(void *arg)
{
	struct slot *s = arg;
	struct cpus *c = s->c;
	current_slot = s;
	char name[16];
	snprintf(name, sizeof(name), "vcpu%u", s->id);
	pthread_setname_np(pthread_self(), name);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	if (c->cgroup) {
		int r = cpu_cgroup_join(c->cgroup, s->id);
		if (r < 0)
			log_error(NULL, "vcpu %u: cannot join its cgroup in %s: %s (not capped)",
				  s->id, cpu_cgroup_dir(c->cgroup), strerror(-r));
	}
	sandbox_enter(SANDBOX_VCPU); /* a no-op until the VM is set up (lib/sandbox.h) */

	while (checkpoint(c, s)) {
		int r = c->ops->run(s->v);
		if (r == -EINTR)
			continue;
		enum cpu_end why = CPU_END_ERROR;
		if (r < 0)
			log_error(NULL, "vcpu %u: KVM_RUN: %s", s->id, strerror(-r));
		else if (vcpu_handle_exit(s->v, &why))
			continue;
		hold(c, s, why);
	}
	if (c->cgroup)
		cpu_cgroup_leave(c->cgroup); /* its cgroup is empty once the join returns */
	return NULL;
}

/* Under the lock, state already set by the caller. */
static int start_thread(struct slot *s)
{
	/* Every signal blocked in the new thread (it unblocks only the kick): the VMM's own
	 * signals go to its signalfd, whatever thread plugs the vCPU. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	s->stop = false;
	s->cap = (struct cpu_cap_window){0}; /* a new thread's CPU time starts at 0 */
	int64_t halted;
	bool blocking;
	s->kvm_busy = s->c->ops->halted && s->c->ops->halted(s->v, &halted, &blocking) == 0;
	if (s->kvm_busy)
		s->busy_last = s->active_ns - halted;
	int r = pthread_create(&s->thread, NULL, vcpu_thread, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return -r;
	s->thread_alive = true;
	return 0;
}

static int new_vcpu(struct cpus *c, unsigned id, struct vcpu **out)
{
	struct vcpu *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->id = id;
	v->env = &c->env;
	v->fd = -1;
	int r = c->ops->create(v);
	if (r == 0)
		r = c->ops->reset(v, NULL);
	if (r < 0) {
		log_error(NULL, "vcpu %u: cannot create it: %s", id, strerror(-r));
		c->ops->destroy(v);
		free(v);
		return r;
	}
	*out = v;
	return 0;
}

/* The cap's cgroup where the user delegated one, else (said once) the in-VMM cap. */
static void cap_cgroup_open(struct cpus *c)
{
	char dir[4096];
	int r = cpu_cgroup_find(dir, sizeof(dir));
	if (r == 0)
		r = cpu_cgroup_open(dir, c->env.max_cpus, &c->cgroup);
	if (r == 0)
		log_info(NULL, "cpu cap: through cgroup v2 cpu.max in %s", dir);
	else
		log_info(
		    NULL,
		    "cpu cap: in the VMM (no delegated cgroup v2 with the cpu controller%s%s: %s)",
		    r == -EPERM || r == -ENOENT ? "" : " in ",
		    r == -EPERM || r == -ENOENT ? "" : dir, strerror(-r));
}

int cpus_create(const struct cpu_env *env, uint64_t present_mask, struct cpus **out)
{
	if (!env || !out || !env->cpuid || !env->pio || !env->mmio || !env->end ||
	    env->max_cpus < 1 || env->max_cpus > CPUS_MAX || !(present_mask & 1) ||
	    (env->max_cpus < 64 && present_mask >> env->max_cpus))
		return -EINVAL;
	int r = signal_setup();
	if (r < 0)
		return r;
	struct cpus *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->env = *env;
	c->ops = env->ops ? env->ops : &vcpu_kvm_ops;
	c->cap_percent = 100;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->cap_lock, NULL);
	pthread_condattr_t ca; /* monotonic: the cap's sleeps are timed waits on it */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	for (unsigned i = 0; i < CPUS_MAX; i++) {
		c->slot[i].c = c;
		c->slot[i].id = i;
	}
	if (env->cap_cgroup)
		cap_cgroup_open(c);
	for (unsigned i = 0; i < env->max_cpus; i++) {
		if (!(present_mask >> i & 1))
			continue;
		if ((r = new_vcpu(c, i, &c->slot[i].v)) < 0) {
			cpus_destroy(c);
			return r;
		}
		c->slot[i].state = VCPU_CREATED;
	}
	*out = c;
	return 0;
}

int cpus_start(struct cpus *c)
{
	int r = 0;
	pthread_mutex_lock(&c->lock);
	if (c->stopping)
		r = -ESHUTDOWN;
	else if (c->started)
		r = -EALREADY;
	if (r == 0)
		c->started = true;
	for (unsigned i = 0; r == 0 && i < CPUS_MAX; i++) {
		struct slot *s = &c->slot[i];
		if (s->state != VCPU_CREATED)
			continue;
		s->state = VCPU_RUNNING; /* the thread makes it PAUSED if a pause came first */
		if ((r = start_thread(s)) < 0) {
			s->state = VCPU_CREATED;
			log_error(NULL, "vcpu %u: cannot start its thread: %s", i, strerror(-r));
		}
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Every thread that is not leaving has reached its checkpoint.  Under the lock. */
static bool all_paused(struct cpus *c)
{
	for (unsigned i = 0; i < CPUS_MAX; i++) {
		const struct slot *s = &c->slot[i];
		if (s->thread_alive && !s->stop && s->state != VCPU_PAUSED)
			return false;
	}
	return true;
}

int cpus_pause(struct cpus *c)
{
	if (current_slot)
		return -EDEADLK;
	bool mine = false;
	int r;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		if (c->stopping) {
			r = -ESHUTDOWN;
			break;
		}
		if (!c->pause_requested) { /* (again, if a resume came while we waited) */
			c->pause_requested = true;
			mine = true;
			for (unsigned i = 0; i < CPUS_MAX; i++)
				kick(&c->slot[i]);
			pthread_cond_broadcast(&c->cond); /* the holding ones wait on it */
		}
		if (!c->paused && all_paused(c)) {
			c->paused = true;
			pthread_cond_broadcast(&c->cond); /* other callers waiting for it */
		}
		if (c->paused) {
			r = mine ? 0 : -EALREADY;
			break;
		}
		pthread_cond_wait(&c->cond, &c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

int cpus_resume(struct cpus *c)
{
	int r = 0;
	pthread_mutex_lock(&c->lock);
	if (c->stopping) {
		r = -ESHUTDOWN;
	} else if (!c->pause_requested) {
		r = -EALREADY;
	} else if (!c->paused) {
		r = -EBUSY;
	} else {
		c->pause_requested = c->paused = false;
		for (unsigned i = 0; i < CPUS_MAX; i++)
			if (c->slot[i].state == VCPU_PAUSED)
				c->slot[i].state = VCPU_RUNNING;
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

static bool any_busy(struct cpus *c)
{
	for (unsigned i = 0; i < CPUS_MAX; i++)
		if (c->slot[i].busy)
			return true;
	return false;
}

int cpus_stop(struct cpus *c)
{
	if (current_slot)
		return -EDEADLK;
	pthread_mutex_lock(&c->lock);
	if (c->stopping) {
		while (!c->stopped)
			pthread_cond_wait(&c->cond, &c->lock);
		pthread_mutex_unlock(&c->lock);
		return -EALREADY;
	}
	c->stopping = true;
	pthread_cond_broadcast(&c->cond); /* pausers give up */
	while (any_busy(c))		  /* a plug or unplug finishes (it sees `stopping`) */
		pthread_cond_wait(&c->cond, &c->lock);
	for (unsigned i = 0; i < CPUS_MAX; i++) {
		struct slot *s = &c->slot[i];
		if (s->thread_alive) {
			s->stop = true;
			kick(s);
		}
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	/* No call changes thread_alive while `stopping` is set: join without the lock. */
	for (unsigned i = 0; i < CPUS_MAX; i++)
		if (c->slot[i].thread_alive)
			pthread_join(c->slot[i].thread, NULL);
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < CPUS_MAX; i++) {
		struct slot *s = &c->slot[i];
		s->thread_alive = false;
		if (s->v)
			s->state = VCPU_STOPPED;
	}
	c->stopped = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int cpus_reset(struct cpus *c, const struct cpu_boot *boot)
{
	int r = 0;
	pthread_mutex_lock(&c->lock);
	if (c->stopping) {
		r = -ESHUTDOWN;
	} else if (c->started && !c->paused) {
		r = -EBUSY;
	} else {
		/* The threads wait at their checkpoints (or were never started): the fds are ours.
		 * A slot being plugged gets its reset from the plug. */
		for (unsigned i = 0; i < CPUS_MAX; i++) {
			struct slot *s = &c->slot[i];
			if (!present(s->state) || s->busy)
				continue;
			int e = c->ops->reset(s->v, i == 0 ? boot : NULL);
			if (e < 0 && r == 0)
				r = e;
			s->holding = false;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

int cpus_plug(struct cpus *c, unsigned id)
{
	if (id >= c->env.max_cpus)
		return -EINVAL;
	struct slot *s = &c->slot[id];
	int r = 0;
	pthread_mutex_lock(&c->lock);
	if (c->stopping)
		r = -ESHUTDOWN;
	else if (present(s->state))
		r = -EEXIST;
	else if (!c->started || c->pause_requested || s->busy)
		r = -EBUSY;
	else if (s->state != VCPU_ABSENT && s->state != VCPU_PARKED)
		r = -EINVAL;
	if (r < 0) {
		pthread_mutex_unlock(&c->lock);
		return r;
	}
	s->busy = true;
	struct vcpu *v = s->v;
	pthread_mutex_unlock(&c->lock);

	if (v) /* re-plug: the AP's power-on state, as a new one gets in new_vcpu() */
		r = c->ops->reset(v, NULL);
	else
		r = new_vcpu(c, id, &v);

	pthread_mutex_lock(&c->lock);
	if (r == 0 && !s->v) {
		s->v = v;
		s->state = VCPU_PARKED; /* until its thread runs */
	}
	if (r == 0 && c->stopping)
		r = -ESHUTDOWN;
	if (r == 0) {
		/* Even if a pause came meanwhile: the thread then pauses before its first run. */
		s->state = VCPU_RUNNING;
		s->holding = false;
		if ((r = start_thread(s)) < 0)
			s->state = VCPU_PARKED;
	}
	s->busy = false;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int cpus_unplug(struct cpus *c, unsigned id)
{
	if (id >= c->env.max_cpus)
		return -EINVAL;
	if (current_slot)
		return -EDEADLK;
	struct slot *s = &c->slot[id];
	int r = 0;
	pthread_mutex_lock(&c->lock);
	if (id == 0)
		r = -EPERM;
	else if (c->stopping)
		r = -ESHUTDOWN;
	else if (s->state == VCPU_ABSENT || s->state == VCPU_PARKED)
		r = -ENOENT;
	else if (!c->started || c->pause_requested || s->busy)
		r = -EBUSY;
	else if (s->state != VCPU_RUNNING)
		r = -EINVAL;
	if (r < 0) {
		pthread_mutex_unlock(&c->lock);
		return r;
	}
	s->busy = true;
	s->stop = true;
	kick(s);
	pthread_cond_broadcast(&c->cond); /* a holding thread waits on it */
	pthread_mutex_unlock(&c->lock);

	pthread_join(s->thread, NULL);

	pthread_mutex_lock(&c->lock);
	s->thread_alive = false;
	s->stop = false;
	s->state = VCPU_PARKED;
	s->busy = false;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int cpus_state(struct cpus *c, unsigned id)
{
	if (id >= CPUS_MAX)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	int st = c->slot[id].state;
	pthread_mutex_unlock(&c->lock);
	return st;
}

unsigned cpus_count_present(struct cpus *c)
{
	unsigned n = 0;
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < CPUS_MAX; i++)
		n += present(c->slot[i].state);
	pthread_mutex_unlock(&c->lock);
	return n;
}

uint64_t cpus_present_mask(struct cpus *c)
{
	uint64_t m = 0;
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < CPUS_MAX; i++)
		if (present(c->slot[i].state))
			m |= 1ULL << i;
	pthread_mutex_unlock(&c->lock);
	return m;
}

unsigned cpus_max(const struct cpus *c)
{
	return c->env.max_cpus;
}

bool cpus_paused(struct cpus *c)
{
	pthread_mutex_lock(&c->lock);
	bool p = c->paused;
	pthread_mutex_unlock(&c->lock);
	return p;
}

const char *vcpu_state_name(enum vcpu_state s)
{
	static const char *const names[] = {
	    [VCPU_ABSENT] = "absent", [VCPU_CREATED] = "created", [VCPU_RUNNING] = "running",
	    [VCPU_PAUSED] = "paused", [VCPU_PARKED] = "parked",	  [VCPU_STOPPED] = "stopped",
	};
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

int cpus_set_cap(struct cpus *c, unsigned percent)
{
	if (percent < 1 || percent > 100)
		return -EINVAL;
	int r = 0;
	pthread_mutex_lock(&c->cap_lock);
	pthread_mutex_lock(&c->lock);
	if (c->stopping)
		r = -ESHUTDOWN;
	else if (c->cgroup)
		r = cpu_cgroup_set_cap(c->cgroup, percent);
	if (r == 0 && percent != c->cap_percent) {
		c->cap_percent = percent;
		/* Without this, the busy time since the window's last look (all of it, after an
		 * uncapped stretch) would be owed as debt: seconds of no progress. */
		for (unsigned i = 0; i < CPUS_MAX; i++)
			cpu_cap_restart(&c->slot[i].cap);
	}
	pthread_cond_broadcast(&c->cond); /* sleeping vCPUs look at the new cap */
	pthread_mutex_unlock(&c->lock);
	if (c->cgroup) {
		pthread_mutex_unlock(&c->cap_lock);
		return r;
	}
	if (r == 0 && percent < 100 && !c->cap_timer)
		r = cpu_cap_timer_start(cap_tick, c, &c->cap_timer);
	if ((r < 0 || percent == 100) && c->cap_timer) {
		/* Not under c->lock: the timer's tick takes it. */
		cpu_cap_timer_stop(c->cap_timer);
		c->cap_timer = NULL;
	}
	pthread_mutex_unlock(&c->cap_lock);
	return r;
}

unsigned cpus_cap(struct cpus *c)
{
	pthread_mutex_lock(&c->lock);
	unsigned p = c->cap_percent;
	pthread_mutex_unlock(&c->lock);
	return p;
}

const char *cpus_cap_cgroup(struct cpus *c)
{
	return c->cgroup ? cpu_cgroup_dir(c->cgroup) : NULL;
}

unsigned long cpus_cap_throttles(struct cpus *c, unsigned id)
{
	if (id >= CPUS_MAX)
		return 0;
	pthread_mutex_lock(&c->lock);
	unsigned long n = c->slot[id].throttles;
	pthread_mutex_unlock(&c->lock);
	return n;
}

void cpus_destroy(struct cpus *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->cap_lock);
	cpu_cap_timer_stop(c->cap_timer);
	c->cap_timer = NULL;
	pthread_mutex_unlock(&c->cap_lock);
	cpus_stop(c);
	cpu_cgroup_close(c->cgroup); /* its threads ended */
	for (unsigned i = 0; i < CPUS_MAX; i++) {
		if (c->slot[i].v) {
			c->ops->destroy(c->slot[i].v);
			free(c->slot[i].v);
		}
	}
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->cap_lock);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
