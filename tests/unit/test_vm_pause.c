/* The VM's pause verbs over cpu/ (vm_pause/vm_resume/vm_paused/vm_vcpu_count) and its end request,
 * with the fake vCPU backend (tests/lib/fake_vcpu.h) in place of KVM: a paused VM runs no vCPU
 * code until resumed, and a VM that is ending refuses a pause. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "cpu/cpus.h"
#include "tests/lib/fake_vcpu.h"
#include "vmm/vm.h"

#define N 3

static struct vm vm;

static void test_pause_resume_end(void **state)
{
	(void)state;
	memset(&vm, 0, sizeof(vm));
	pthread_mutex_init(&vm.lock, NULL);
	pthread_cond_init(&vm.cond, NULL);
	vm.event_fd = eventfd(0, EFD_NONBLOCK);
	assert_true(vm.event_fd >= 0);
	struct cpu_env env;
	fake_setup(&env, N);
	assert_int_equal(cpus_create(&env, (1u << N) - 1, &vm.cpus), 0);
	fake.cpus = vm.cpus;
	assert_int_equal(cpus_start(vm.cpus), 0);
	assert_int_equal(vm_vcpu_count(&vm), N);
	for (int round = 0; round < 20; round++) {
		for (unsigned i = 0; i < N; i++)
			fake_wait_work(i, 0);
		assert_false(vm_paused(&vm));
		assert_int_equal(vm_pause(&vm), 0);
		assert_true(vm_paused(&vm));
		unsigned long a[N];
		for (unsigned i = 0; i < N; i++)
			a[i] = fake_work(i);
		for (int y = 0; y < 100; y++)
			sched_yield();
		for (unsigned i = 0; i < N; i++)
			assert_int_equal(fake_work(i), a[i]); /* nothing runs while paused */
		assert_int_equal(vm_pause(&vm), -EALREADY);
		assert_int_equal(vm_resume(&vm), 0);
		assert_int_equal(vm_resume(&vm), -EALREADY);
		for (unsigned i = 0; i < N; i++)
			fake_wait_work(i, a[i]); /* each runs again */
	}
	/* an end request: the first reason wins, vm_run's loop is woken, pausing is refused */
	vm_request_end(&vm, VM_END_STOP);
	vm_request_end(&vm, VM_END_ERROR);
	assert_int_equal(vm.end, VM_END_STOP);
	uint64_t ev;
	assert_int_equal(read(vm.event_fd, &ev, 8), 8);
	assert_int_equal(vm_pause(&vm), -ESHUTDOWN);
	assert_int_equal(cpus_stop(vm.cpus), 0); /* what vm_run does next */
	assert_int_equal(vm_vcpu_count(&vm), 0);
	cpus_destroy(vm.cpus);
	assert_int_equal(fake.violations, 0);
	fake_teardown();
	close(vm.event_fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pause_resume_end),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
