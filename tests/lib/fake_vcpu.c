/* The fake vCPU backend (fake_vcpu.h). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/kvm.h>

#include <cmocka.h>

#include "cpu/vcpu.h"
#include "tests/lib/fake_vcpu.h"

struct fake_vcpus fake;

/* The run page with room for the port data after it. */
struct fake_run {
	struct kvm_run run;
	uint8_t data[8];
};

static void changed(void)
{
	pthread_cond_broadcast(&fake.cond);
}

static void work_port(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	(void)opaque;
	(void)offset;
	if (!is_write || len != 1 || data[0] >= CPUS_MAX)
		return;
	pthread_mutex_lock(&fake.lock);
	fake.work[data[0]]++;
	changed();
	pthread_mutex_unlock(&fake.lock);
}

static void end(void *opaque, unsigned cpu, enum cpu_end why)
{
	(void)opaque;
	pthread_mutex_lock(&fake.lock);
	fake.ends[cpu]++;
	fake.last_end[cpu] = why;
	changed();
	pthread_mutex_unlock(&fake.lock);
}

static int fake_create(struct vcpu *v)
{
	struct fake_run *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	v->run = &r->run;
	pthread_mutex_lock(&fake.lock);
	fake.creates[v->id]++;
	changed();
	pthread_mutex_unlock(&fake.lock);
	return 0;
}

static int fake_reset(struct vcpu *v, const struct cpu_boot *boot)
{
	pthread_mutex_lock(&fake.lock);
	fake.resets[v->id]++;
	fake.boot[v->id] = boot;
	changed();
	pthread_mutex_unlock(&fake.lock);
	return 0;
}

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Sleep in the kernel until the kick signal, as KVM_RUN on a halted vCPU: the signal is blocked
 * while immediate_exit is checked and unblocked atomically by sigsuspend, so no kick is lost. */
static int block_until_kicked(struct vcpu *v)
{
	sigset_t kick, old;
	sigemptyset(&kick);
	sigaddset(&kick, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &kick, &old);
	if (!__atomic_load_n(&v->run->immediate_exit, __ATOMIC_SEQ_CST)) {
		pthread_mutex_lock(&fake.lock);
		fake.blocked[v->id]++;
		fake.blocking[v->id] = true;
		fake.block_start[v->id] = now_ns();
		changed();
		pthread_mutex_unlock(&fake.lock);
		sigset_t wait = old;
		sigdelset(&wait, SIGUSR1);
		sigsuspend(&wait);
		pthread_mutex_lock(&fake.lock);
		fake.halted_ns[v->id] += now_ns() - fake.block_start[v->id];
		fake.blocking[v->id] = false;
		changed();
		pthread_mutex_unlock(&fake.lock);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -EINTR;
}

static int fake_run(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	if (fake.cpus && cpus_paused(fake.cpus)) {
		pthread_mutex_lock(&fake.lock);
		fake.violations++;
		pthread_mutex_unlock(&fake.lock);
	}
	if (__atomic_load_n(&run->immediate_exit, __ATOMIC_SEQ_CST))
		return -EINTR;
	pthread_mutex_lock(&fake.lock);
	uint32_t exit = fake.exit_once[v->id], event = fake.event_once[v->id];
	int fail = fake.fail_once[v->id];
	bool block = fake.block[v->id];
	uint16_t port = fake.port[v->id] ? fake.port[v->id] : FAKE_PORT_WORK;
	fake.exit_once[v->id] = 0;
	fake.fail_once[v->id] = 0;
	pthread_mutex_unlock(&fake.lock);
	if (fail)
		return fail;
	if (exit) {
		run->exit_reason = exit;
		run->system_event.type = event;
		return 0;
	}
	if (block)
		return block_until_kicked(v);
	sched_yield(); /* a spinning guest, but polite to the other tests' threads */
	struct fake_run *fr = (struct fake_run *)run;
	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = KVM_EXIT_IO_OUT;
	run->io.size = 1;
	run->io.port = port;
	run->io.count = 1;
	run->io.data_offset = offsetof(struct fake_run, data);
	fr->data[0] = (uint8_t)v->id;
	return 0;
}

static void fake_destroy(struct vcpu *v)
{
	free(v->run);
	v->run = NULL;
	pthread_mutex_lock(&fake.lock);
	fake.destroys[v->id]++;
	pthread_mutex_unlock(&fake.lock);
}

static int fake_halted(struct vcpu *v, int64_t *ns, bool *blocking)
{
	pthread_mutex_lock(&fake.lock);
	bool on = fake.halt_stats;
	*ns = fake.halted_ns[v->id];
	*blocking = fake.blocking[v->id];
	pthread_mutex_unlock(&fake.lock);
	return on ? 0 : -ENOTSUP;
}

const struct vcpu_ops fake_vcpu_ops = {
    .create = fake_create,
    .reset = fake_reset,
    .run = fake_run,
    .destroy = fake_destroy,
    .halted = fake_halted,
};

static const struct kvm_cpuid2 no_cpuid;

void fake_setup(struct cpu_env *env, unsigned max)
{
	memset(&fake, 0, sizeof(fake));
	pthread_mutex_init(&fake.lock, NULL);
	pthread_cond_init(&fake.cond, NULL);
	assert_int_equal(io_bus_init(&fake.pio), 0);
	assert_int_equal(io_bus_init(&fake.mmio), 0);
	assert_int_equal(io_bus_register(&fake.pio, FAKE_PORT_WORK, 1, work_port, NULL), 0);
	*env = (struct cpu_env){.kvm_fd = -1,
				.vm_fd = -1,
				.cpuid = &no_cpuid,
				.max_cpus = max,
				.pio = &fake.pio,
				.mmio = &fake.mmio,
				.end = end,
				.ops = &fake_vcpu_ops};
}

void fake_teardown(void)
{
	io_bus_destroy(&fake.pio);
	io_bus_destroy(&fake.mmio);
	pthread_cond_destroy(&fake.cond);
	pthread_mutex_destroy(&fake.lock);
}

void fake_wait(bool (*pred)(void *arg), void *arg)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10; /* only against a hang */
	pthread_mutex_lock(&fake.lock);
	int r = 0;
	while (!pred(arg) && r == 0)
		r = pthread_cond_timedwait(&fake.cond, &fake.lock, &deadline);
	bool ok = pred(arg);
	pthread_mutex_unlock(&fake.lock);
	assert_true(ok);
}

struct progress {
	unsigned id;
	unsigned long than;
};

static bool did_work(void *arg)
{
	const struct progress *p = arg;
	return fake.work[p->id] > p->than;
}

static bool did_block(void *arg)
{
	const struct progress *p = arg;
	return fake.blocked[p->id] > p->than;
}

static bool did_end(void *arg)
{
	const struct progress *p = arg;
	return fake.ends[p->id] > p->than;
}

void fake_wait_work(unsigned id, unsigned long than)
{
	struct progress p = {id, than};
	fake_wait(did_work, &p);
}

void fake_wait_blocked(unsigned id, unsigned than)
{
	struct progress p = {id, than};
	fake_wait(did_block, &p);
}

void fake_wait_end(unsigned id, unsigned than)
{
	struct progress p = {id, than};
	fake_wait(did_end, &p);
}

unsigned long fake_work(unsigned id)
{
	pthread_mutex_lock(&fake.lock);
	unsigned long w = fake.work[id];
	pthread_mutex_unlock(&fake.lock);
	return w;
}
