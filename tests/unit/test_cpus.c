/* The vCPU state machine (cpu/cpus.h) on the fake backend (tests/lib/fake_vcpu.h), no KVM:
 * start, pause/resume (also from two threads at once), stop (also while paused or with a vCPU
 * blocked in its run), plug/unplug and their refusals, the exits that end the machine, holding,
 * reset, the calls a vCPU thread may not make, and plug/unplug racing pause/resume. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <linux/kvm.h>

#include <cmocka.h>

#include "cpu/cpus.h"
#include "tests/lib/fake_vcpu.h"

static struct cpus *make(unsigned max, uint64_t present)
{
	struct cpu_env env;
	fake_setup(&env, max);
	struct cpus *c = NULL;
	assert_int_equal(cpus_create(&env, present, &c), 0);
	fake.cpus = c;
	return c;
}

static void finish(struct cpus *c)
{
	cpus_destroy(c);
	assert_int_equal(fake.violations, 0); /* no vCPU ran while the machine was paused */
	fake_teardown();
}

static void assert_states(struct cpus *c, unsigned n, enum vcpu_state want)
{
	for (unsigned i = 0; i < n; i++)
		assert_string_equal(vcpu_state_name(cpus_state(c, i)), vcpu_state_name(want));
}

static void test_create_refusals(void **unused)
{
	(void)unused;
	struct cpu_env env;
	struct cpus *c = NULL;
	fake_setup(&env, 4);
	assert_int_equal(cpus_create(&env, 0x2, &c), -EINVAL);	/* no CPU 0 */
	assert_int_equal(cpus_create(&env, 0x11, &c), -EINVAL); /* CPU 4 of 4 */
	env.max_cpus = 0;
	assert_int_equal(cpus_create(&env, 0x1, &c), -EINVAL);
	env.max_cpus = CPUS_MAX + 1;
	assert_int_equal(cpus_create(&env, 0x1, &c), -EINVAL);
	env.max_cpus = 4;
	env.end = NULL;
	assert_int_equal(cpus_create(&env, 0x1, &c), -EINVAL);
	assert_null(c);
	fake_teardown();

	/* all 64 */
	c = make(CPUS_MAX, ~0ULL);
	assert_int_equal(cpus_count_present(c), CPUS_MAX);
	assert_int_equal(cpus_max(c), CPUS_MAX);
	assert_int_equal(cpus_state(c, CPUS_MAX), -EINVAL);
	finish(c);
	for (unsigned i = 0; i < CPUS_MAX; i++)
		assert_int_equal(fake.destroys[i], 1);
}

static void test_created_and_reset_before_start(void **unused)
{
	(void)unused;
	struct cpus *c = make(4, 0x5); /* CPUs 0 and 2 */
	assert_int_equal(cpus_state(c, 0), VCPU_CREATED);
	assert_int_equal(cpus_state(c, 1), VCPU_ABSENT);
	assert_int_equal(cpus_state(c, 2), VCPU_CREATED);
	assert_int_equal(cpus_state(c, 3), VCPU_ABSENT);
	assert_int_equal(cpus_count_present(c), 2);
	assert_int_equal(fake.creates[0] + fake.creates[1] + fake.creates[2], 2);
	assert_int_equal(fake.resets[0], 1); /* power-on state at creation */
	assert_null(fake.boot[0]);
	struct cpu_boot boot = {.regs = {.rip = 0x1000}};
	assert_int_equal(cpus_reset(c, &boot), 0); /* the VMM's boot entry, before the start */
	assert_ptr_equal(fake.boot[0], &boot);
	assert_null(fake.boot[2]); /* only the boot CPU gets it */
	assert_int_equal(fake.resets[2], 2);
	assert_int_equal(fake.resets[1], 0);
	/* hot-plug needs a started machine; unplug needs a running vCPU */
	assert_int_equal(cpus_plug(c, 1), -EBUSY);
	assert_int_equal(cpus_unplug(c, 2), -EBUSY);
	assert_int_equal(cpus_resume(c), -EALREADY);
	assert_int_equal(cpus_start(c), 0);
	assert_int_equal(cpus_start(c), -EALREADY);
	fake_wait_work(0, 0);
	fake_wait_work(2, 0);
	assert_int_equal(cpus_state(c, 0), VCPU_RUNNING);
	assert_int_equal(cpus_reset(c, &boot), -EBUSY); /* running */
	assert_int_equal(cpus_stop(c), 0);
	assert_int_equal(cpus_state(c, 0), VCPU_STOPPED);
	finish(c);
}

static void test_pause_resume(void **unused)
{
	(void)unused;
	struct cpus *c = make(3, 0x7);
	assert_int_equal(cpus_start(c), 0);
	for (int round = 0; round < 20; round++) {
		for (unsigned i = 0; i < 3; i++)
			fake_wait_work(i, 0);
		assert_false(cpus_paused(c));
		assert_int_equal(cpus_pause(c), 0);
		assert_true(cpus_paused(c));
		assert_states(c, 3, VCPU_PAUSED);
		unsigned long w[3];
		for (unsigned i = 0; i < 3; i++)
			w[i] = fake_work(i);
		for (int y = 0; y < 100; y++)
			sched_yield();
		for (unsigned i = 0; i < 3; i++)
			assert_int_equal(fake_work(i), w[i]); /* nothing runs while paused */
		assert_int_equal(cpus_pause(c), -EALREADY);
		assert_int_equal(cpus_resume(c), 0);
		assert_false(cpus_paused(c));
		assert_states(c, 3, VCPU_RUNNING);
		assert_int_equal(cpus_resume(c), -EALREADY);
		for (unsigned i = 0; i < 3; i++)
			fake_wait_work(i, w[i]); /* each runs again */
	}
	finish(c);
}

struct pauser {
	struct cpus *c;
	pthread_barrier_t *go;
	int r;
	bool all_paused; /* every vCPU PAUSED when cpus_pause returned */
};

static void *pause_thread(void *arg)
{
	struct pauser *p = arg;
	pthread_barrier_wait(p->go);
	p->r = cpus_pause(p->c);
	p->all_paused = true;
	for (unsigned i = 0; i < 4; i++)
		p->all_paused &= cpus_state(p->c, i) == VCPU_PAUSED;
	return NULL;
}

static void test_concurrent_pause(void **unused)
{
	(void)unused;
	struct cpus *c = make(4, 0xF);
	fake.block[3] = true; /* one halted vCPU: the pause must kick it out */
	assert_int_equal(cpus_start(c), 0);
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, 2);
	for (int round = 0; round < 30; round++) {
		struct pauser a = {.c = c, .go = &go}, b = {.c = c, .go = &go};
		pthread_t ta, tb;
		assert_int_equal(pthread_create(&ta, NULL, pause_thread, &a), 0);
		assert_int_equal(pthread_create(&tb, NULL, pause_thread, &b), 0);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		/* one did it, the other found it under way or done: both return with all paused */
		assert_true((a.r == 0 && b.r == -EALREADY) || (a.r == -EALREADY && b.r == 0));
		assert_true(a.all_paused);
		assert_true(b.all_paused);
		assert_int_equal(cpus_resume(c), 0);
	}
	pthread_barrier_destroy(&go);
	finish(c);
}

static void test_stop_while_paused(void **unused)
{
	(void)unused;
	struct cpus *c = make(4, 0xF);
	fake.block[1] = true;
	assert_int_equal(cpus_start(c), 0);
	fake_wait_blocked(1, 0);
	assert_int_equal(cpus_pause(c), 0);
	assert_int_equal(cpus_stop(c), 0); /* joins all, the paused ones too */
	assert_states(c, 4, VCPU_STOPPED);
	assert_int_equal(cpus_stop(c), -EALREADY);
	assert_int_equal(cpus_pause(c), -ESHUTDOWN);
	assert_int_equal(cpus_resume(c), -ESHUTDOWN);
	assert_int_equal(cpus_reset(c, NULL), -ESHUTDOWN);
	assert_int_equal(cpus_plug(c, 2), -ESHUTDOWN);
	assert_int_equal(cpus_unplug(c, 2), -ESHUTDOWN);
	assert_int_equal(cpus_start(c), -ESHUTDOWN);
	assert_int_equal(cpus_count_present(c), 0);
	finish(c);

	/* stop with a vCPU blocked in its run and the others spinning */
	c = make(2, 0x3);
	fake.block[1] = true;
	assert_int_equal(cpus_start(c), 0);
	fake_wait_blocked(1, 0);
	fake_wait_work(0, 0);
	assert_int_equal(cpus_stop(c), 0);
	assert_states(c, 2, VCPU_STOPPED);
	finish(c);

	/* stop before start */
	c = make(2, 0x3);
	assert_int_equal(cpus_stop(c), 0);
	assert_states(c, 2, VCPU_STOPPED);
	finish(c);
}

static void test_plug_unplug(void **unused)
{
	(void)unused;
	struct cpus *c = make(4, 0x3);
	fake.block[2] = true; /* an offlined CPU sits halted in KVM_RUN */
	assert_int_equal(cpus_start(c), 0);
	assert_int_equal(cpus_plug(c, 1), -EEXIST);
	assert_int_equal(cpus_plug(c, 0), -EEXIST);
	assert_int_equal(cpus_plug(c, 4), -EINVAL);
	assert_int_equal(cpus_plug(c, 1000), -EINVAL);
	assert_int_equal(cpus_unplug(c, 0), -EPERM);
	assert_int_equal(cpus_unplug(c, 2), -ENOENT);
	assert_int_equal(cpus_unplug(c, 4), -EINVAL);
	for (unsigned round = 0; round < 20; round++) {
		assert_int_equal(cpus_plug(c, 2), 0);
		assert_int_equal(cpus_state(c, 2), VCPU_RUNNING);
		assert_int_equal(cpus_count_present(c), 3);
		assert_int_equal(cpus_plug(c, 2), -EEXIST);
		fake_wait_blocked(2, round);
		assert_int_equal(cpus_unplug(c, 2), 0);
		assert_int_equal(cpus_state(c, 2), VCPU_PARKED);
		assert_int_equal(cpus_count_present(c), 2);
		assert_int_equal(cpus_unplug(c, 2), -ENOENT);
		assert_int_equal(fake.creates[2], 1); /* created once, its fd re-used */
		assert_int_equal(fake.resets[2], round + 1);
	}
	/* a spinning one unplugs too */
	assert_int_equal(cpus_unplug(c, 1), 0);
	assert_int_equal(cpus_state(c, 1), VCPU_PARKED);
	assert_int_equal(cpus_plug(c, 1), 0);
	unsigned long w = fake_work(1);
	fake_wait_work(1, w);
	/* paused: no plugging */
	assert_int_equal(cpus_pause(c), 0);
	assert_int_equal(cpus_plug(c, 3), -EBUSY);
	assert_int_equal(cpus_plug(c, 2), -EBUSY);
	assert_int_equal(cpus_unplug(c, 1), -EBUSY);
	assert_int_equal(cpus_state(c, 3), VCPU_ABSENT);
	assert_int_equal(cpus_resume(c), 0);
	assert_int_equal(cpus_plug(c, 3), 0);
	fake_wait_work(3, 0);
	/* parked slots are not reset with the machine, present ones are */
	assert_int_equal(cpus_pause(c), 0);
	unsigned r2 = fake.resets[2], r3 = fake.resets[3];
	assert_int_equal(cpus_reset(c, NULL), 0);
	assert_int_equal(fake.resets[2], r2);
	assert_int_equal(fake.resets[3], r3 + 1);
	assert_int_equal(cpus_resume(c), 0);
	assert_int_equal(cpus_stop(c), 0);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(cpus_state(c, i), VCPU_STOPPED); /* the parked one too */
	finish(c);
	assert_int_equal(fake.destroys[2], 1);
}

static void test_end_hold_reset(void **unused)
{
	(void)unused;
	static const struct {
		uint32_t exit, event;
		int fail;
		enum cpu_end why;
	} cases[] = {
	    {KVM_EXIT_SHUTDOWN, 0, 0, CPU_END_TRIPLE_FAULT},
	    {KVM_EXIT_SYSTEM_EVENT, KVM_SYSTEM_EVENT_SHUTDOWN, 0, CPU_END_POWEROFF},
	    {KVM_EXIT_SYSTEM_EVENT, KVM_SYSTEM_EVENT_RESET, 0, CPU_END_RESET},
	    {KVM_EXIT_SYSTEM_EVENT, 99, 0, CPU_END_ERROR},
	    {KVM_EXIT_FAIL_ENTRY, 0, 0, CPU_END_ERROR},
	    {KVM_EXIT_INTERNAL_ERROR, 0, 0, CPU_END_ERROR},
	    {KVM_EXIT_HLT, 0, 0, CPU_END_ERROR}, /* not expected with the in-kernel LAPIC */
	    {0, 0, -EIO, CPU_END_ERROR},	 /* KVM_RUN itself failed */
	};
	struct cpus *c = make(2, 0x3);
	assert_int_equal(cpus_start(c), 0);
	struct cpu_boot boot = {.regs = {.rip = 0x100000}};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pthread_mutex_lock(&fake.lock);
		fake.exit_once[1] = cases[i].exit;
		fake.event_once[1] = cases[i].event;
		fake.fail_once[1] = cases[i].fail;
		pthread_mutex_unlock(&fake.lock);
		fake_wait_end(1, i);
		assert_int_equal(fake.last_end[1], cases[i].why);
		/* it holds: no more runs (the other one goes on) */
		unsigned long w1 = fake_work(1), w0 = fake_work(0);
		fake_wait_work(0, w0 + 50);
		assert_int_equal(fake_work(1), w1);
		assert_int_equal(cpus_state(c, 1), VCPU_RUNNING);
		/* pause counts a holding vCPU; resume alone does not let it run */
		assert_int_equal(cpus_pause(c), 0);
		assert_int_equal(cpus_state(c, 1), VCPU_PAUSED);
		assert_int_equal(cpus_resume(c), 0);
		w0 = fake_work(0);
		fake_wait_work(0, w0 + 50);
		assert_int_equal(fake_work(1), w1);
		/* the in-process reboot: pause, reset, resume */
		assert_int_equal(cpus_pause(c), 0);
		assert_int_equal(cpus_reset(c, &boot), 0);
		assert_ptr_equal(fake.boot[0], &boot);
		assert_null(fake.boot[1]);
		assert_int_equal(cpus_resume(c), 0);
		fake_wait_work(1, w1);
	}
	assert_int_equal(fake.ends[0], 0);
	finish(c);
}

/* Calls made from a vCPU thread (a device handler on its exit): the waiting ones are refused. */
static struct {
	int pause, stop, unplug;
	bool done;
} from_vcpu;

static void nested_port(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	(void)offset;
	(void)data;
	(void)len;
	(void)is_write;
	struct cpus *c = opaque;
	pthread_mutex_lock(&fake.lock);
	bool done = from_vcpu.done;
	pthread_mutex_unlock(&fake.lock);
	if (done)
		return;
	int p = cpus_pause(c), s = cpus_stop(c), u = cpus_unplug(c, 1);
	pthread_mutex_lock(&fake.lock);
	from_vcpu.pause = p;
	from_vcpu.stop = s;
	from_vcpu.unplug = u;
	from_vcpu.done = true;
	pthread_cond_broadcast(&fake.cond);
	pthread_mutex_unlock(&fake.lock);
}

static bool nested_done(void *arg)
{
	(void)arg;
	return from_vcpu.done;
}

static void test_calls_from_vcpu_thread(void **unused)
{
	(void)unused;
	struct cpus *c = make(2, 0x3);
	assert_int_equal(io_bus_register(&fake.pio, 0x81, 1, nested_port, c), 0);
	assert_int_equal(cpus_start(c), 0);
	pthread_mutex_lock(&fake.lock);
	fake.port[1] = 0x81;
	pthread_mutex_unlock(&fake.lock);
	fake_wait(nested_done, NULL);
	assert_int_equal(from_vcpu.pause, -EDEADLK);
	assert_int_equal(from_vcpu.stop, -EDEADLK);
	assert_int_equal(from_vcpu.unplug, -EDEADLK);
	assert_false(cpus_paused(c));
	finish(c);
}

/* Plug/unplug racing pause/resume and a reset: every call returns, with an expected code. */
struct racer {
	struct cpus *c;
	int rounds;
	bool stopping; /* -ESHUTDOWN is expected too */
	unsigned ok, bad;
};

static bool expected(const struct racer *r, int got, int a, int b)
{
	return got == a || got == b || (r->stopping && got == -ESHUTDOWN);
}

static void *pause_racer(void *arg)
{
	struct racer *r = arg;
	for (int i = 0; i < r->rounds; i++) {
		int p = cpus_pause(r->c);
		if (p == 0) {
			r->ok++;
			r->bad += !expected(r, cpus_reset(r->c, NULL), 0, 0);
			r->bad += !expected(r, cpus_resume(r->c), 0, 0);
		} else {
			r->bad += !expected(r, p, -ESHUTDOWN, -ESHUTDOWN);
		}
	}
	return NULL;
}

static void *plug_racer(void *arg)
{
	struct racer *r = arg;
	for (int i = 0; i < r->rounds; i++) {
		unsigned id = 1 + i % 3;
		int p = cpus_plug(r->c, id);
		r->bad += !expected(r, p, 0, -EBUSY) && p != -EEXIST;
		int u = cpus_unplug(r->c, id);
		r->bad += !expected(r, u, 0, -EBUSY) && u != -ENOENT;
		r->ok += p == 0 && u == 0;
	}
	return NULL;
}

static void test_races(void **unused)
{
	(void)unused;
	struct cpus *c = make(4, 0x1);
	fake.block[2] = true;
	assert_int_equal(cpus_start(c), 0);
	struct racer a = {.c = c, .rounds = 300}, b = {.c = c, .rounds = 300};
	pthread_t ta, tb;
	assert_int_equal(pthread_create(&ta, NULL, pause_racer, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, plug_racer, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(a.bad, 0);
	assert_int_equal(b.bad, 0);
	assert_int_equal(a.ok, 300);
	assert_int_equal(cpus_state(c, 0), VCPU_RUNNING);
	for (unsigned i = 1; i < 4; i++) {
		int s = cpus_state(c, i);
		assert_true(s == VCPU_ABSENT || s == VCPU_PARKED || s == VCPU_RUNNING);
	}
	/* and a stop racing pauses and plugs */
	struct racer d = {.c = c, .rounds = 1000, .stopping = true};
	struct racer e = {.c = c, .rounds = 1000, .stopping = true};
	assert_int_equal(pthread_create(&ta, NULL, pause_racer, &d), 0);
	assert_int_equal(pthread_create(&tb, NULL, plug_racer, &e), 0);
	fake_wait_work(0, fake_work(0) + 100);
	int s = cpus_stop(c);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(s, 0);
	assert_int_equal(d.bad, 0);
	assert_int_equal(e.bad, 0);
	for (unsigned i = 0; i < 4; i++) {
		int st = cpus_state(c, i);
		assert_true(st == VCPU_ABSENT || st == VCPU_STOPPED);
	}
	finish(c);
}

/* Wait (bounded, against a hang only) until vCPU `id` slept for the cap more than `than` times. */
static void wait_throttled(struct cpus *c, unsigned id, unsigned long than)
{
	for (int i = 0; i < 10000 && cpus_cap_throttles(c, id) <= than; i++)
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	assert_true(cpus_cap_throttles(c, id) > than);
}

/* The execution cap on spinning fake vCPUs: they get throttled, pause/plug/unplug/stop still work
 * while they sleep for it, lifting it lets them run, bad values are refused. */
static void test_cap(void **unused)
{
	(void)unused;
	struct cpus *c = make(3, 0x3);
	assert_int_equal(cpus_set_cap(c, 0), -EINVAL);
	assert_int_equal(cpus_set_cap(c, 101), -EINVAL);
	assert_int_equal(cpus_cap(c), 100);
	assert_int_equal(cpus_start(c), 0);
	fake_wait_work(0, 0);
	assert_int_equal(cpus_cap_throttles(c, 0), 0); /* no cap: never throttled */
	assert_int_equal(cpus_set_cap(c, 5), 0);
	assert_int_equal(cpus_cap(c), 5);
	wait_throttled(c, 0, 0);
	wait_throttled(c, 1, 0);
	/* pause reaches vCPUs sleeping for the cap */
	assert_int_equal(cpus_pause(c), 0);
	assert_states(c, 2, VCPU_PAUSED);
	unsigned long w0 = fake_work(0);
	assert_int_equal(cpus_resume(c), 0);
	fake_wait_work(0, w0);
	assert_int_equal(cpus_plug(c, 2), 0);
	wait_throttled(c, 2, 0);
	assert_int_equal(cpus_unplug(c, 2), 0);
	assert_int_equal(cpus_state(c, 2), VCPU_PARKED);
	/* lifted: runs on, the timer thread is gone (destroy would hang on it otherwise) */
	assert_int_equal(cpus_set_cap(c, 100), 0);
	unsigned long w = fake_work(1);
	fake_wait_work(1, w + 1000);
	assert_int_equal(cpus_set_cap(c, 50), 0);
	assert_int_equal(cpus_set_cap(c, 20), 0);
	finish(c); /* stops the vCPUs and the timer while capped */
}

/* The cap with busy from the backend's halted time (KVM's stats fd): a vCPU halted in its run is
 * never kicked for the cap however long it halts, one that spins is throttled. */
static void test_cap_halt_stats(void **unused)
{
	(void)unused;
	struct cpu_env env;
	fake_setup(&env, 2);
	fake.halt_stats = true;
	fake.block[0] = true; /* CPU 0 halts; CPU 1 spins */
	struct cpus *c = NULL;
	assert_int_equal(cpus_create(&env, 0x3, &c), 0);
	fake.cpus = c;
	assert_int_equal(cpus_set_cap(c, 5), 0);
	assert_int_equal(cpus_start(c), 0);
	fake_wait_blocked(0, 0);
	wait_throttled(c, 1, 3); /* a few periods go by: CPU 1 spent its budget in each */
	pthread_mutex_lock(&fake.lock);
	unsigned blocked = fake.blocked[0];
	pthread_mutex_unlock(&fake.lock);
	assert_int_equal(blocked, 1); /* never kicked out of its halt */
	assert_int_equal(cpus_cap_throttles(c, 0), 0);
	/* woken (a pause kicks it), it halts again and still owes nothing */
	assert_int_equal(cpus_pause(c), 0);
	assert_int_equal(cpus_resume(c), 0);
	fake_wait_blocked(0, 1);
	assert_int_equal(cpus_cap_throttles(c, 0), 0);
	finish(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_refusals),
	    cmocka_unit_test(test_created_and_reset_before_start),
	    cmocka_unit_test(test_pause_resume),
	    cmocka_unit_test(test_concurrent_pause),
	    cmocka_unit_test(test_stop_while_paused),
	    cmocka_unit_test(test_plug_unplug),
	    cmocka_unit_test(test_end_hold_reset),
	    cmocka_unit_test(test_calls_from_vcpu_thread),
	    cmocka_unit_test(test_races),
	    cmocka_unit_test(test_cap),
	    cmocka_unit_test(test_cap_halt_stats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
