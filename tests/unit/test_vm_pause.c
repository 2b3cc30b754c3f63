/* Pause, resume and end of the vCPU threads (vm_pause/vm_resume/vm_vcpu_checkpoint), with stand-in
 * threads in place of KVM_RUN: a paused VM runs no vCPU code until resumed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <linux/kvm.h>

#include <cmocka.h>

#include "cpu/vcpu.h"
#include "vmm/vm.h"

#define N 3

static struct vm vm;
static struct vcpu cpus[N];
static struct kvm_run runs[N];
static volatile unsigned long work[N];

/* What a vCPU thread does, with the KVM_RUN call replaced by a unit of work. */
static void *fake_vcpu(void *arg)
{
	struct vcpu *v = arg;
	while (!vm_vcpu_checkpoint(&vm, v))
		__atomic_add_fetch(&work[v->id], 1, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&vm.lock);
	vm.threads_alive--;
	pthread_cond_broadcast(&vm.cond);
	pthread_mutex_unlock(&vm.lock);
	return NULL;
}

static unsigned long total(void)
{
	unsigned long t = 0;
	for (int i = 0; i < N; i++)
		t += __atomic_load_n(&work[i], __ATOMIC_SEQ_CST);
	return t;
}

static void test_pause_resume_end(void **state)
{
	(void)state;
	memset(&vm, 0, sizeof(vm));
	pthread_mutex_init(&vm.lock, NULL);
	pthread_cond_init(&vm.cond, NULL);
	vm.event_fd = eventfd(0, EFD_NONBLOCK);
	assert_true(vm.event_fd >= 0);
	assert_int_equal(vcpu_signal_setup(), 0);
	for (int i = 0; i < N; i++) {
		cpus[i] = (struct vcpu){.vm = &vm, .id = i, .fd = -1, .run = &runs[i]};
		vm.vcpus[i] = &cpus[i];
		vm.threads_alive++;
		assert_int_equal(pthread_create(&cpus[i].thread, NULL, fake_vcpu, &cpus[i]), 0);
		cpus[i].thread_started = true;
	}
	assert_int_equal(vm_vcpu_count(&vm), N);
	for (int round = 0; round < 20; round++) {
		assert_int_equal(vm_pause(&vm), 0);
		assert_int_equal(vm.threads_parked, N);
		for (int i = 0; i < N; i++)
			assert_int_equal(runs[i].immediate_exit, 1); /* kicked out of KVM_RUN */
		unsigned long a = total();
		usleep(1000);
		assert_int_equal(total(), a); /* nothing runs while paused */
		assert_int_equal(vm_pause(&vm), -EALREADY);
		assert_int_equal(vm_resume(&vm), 0);
		assert_int_equal(vm_resume(&vm), -EALREADY);
		while (total() == a) /* runs again (ends as soon as any thread works) */
			sched_yield();
	}
	/* an end request stops every thread, even a paused one */
	assert_int_equal(vm_pause(&vm), 0);
	vm_request_end(&vm, VM_END_STOP);
	vm_request_end(&vm, VM_END_ERROR); /* the first reason wins */
	for (int i = 0; i < N; i++)
		vcpu_join(&cpus[i]);
	assert_int_equal(vm.threads_alive, 0);
	assert_int_equal(vm.end, VM_END_STOP);
	assert_int_equal(vm_pause(&vm), -EALREADY); /* still marked paused */
	uint64_t ev;
	assert_int_equal(read(vm.event_fd, &ev, 8), 8); /* vm_run's loop was woken */
	close(vm.event_fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pause_resume_end),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
