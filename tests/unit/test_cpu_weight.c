/* --cpu-weight to nice (cpu/cpu_weight.h): cgroup v2's cpu.weight scale onto CFS's nice levels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cpu/cpu_weight.h"

static void test_mapping(void **unused)
{
	(void)unused;
	assert_int_equal(cpu_weight_to_nice(100), 0);
	assert_int_equal(cpu_weight_to_nice(80), 1);   /* 100 / 1.25 */
	assert_int_equal(cpu_weight_to_nice(125), -1); /* 100 * 1.25 */
	assert_int_equal(cpu_weight_to_nice(50), 3);   /* 1.25^3 = 1.95 */
	assert_int_equal(cpu_weight_to_nice(200), -3);
	assert_int_equal(cpu_weight_to_nice(1), 19);
	assert_int_equal(cpu_weight_to_nice(0), 19);
	assert_int_equal(cpu_weight_to_nice(10000), -20);
	assert_int_equal(cpu_weight_to_nice(1000000), -20);
	/* monotonic: more weight, never a higher nice */
	for (unsigned w = 1; w < 10000; w++)
		assert_true(cpu_weight_to_nice(w + 1) <= cpu_weight_to_nice(w));
}

/* In a child of its own session: the nice goes to the thread and to the session's autogroup
 * (where the kernel has them), without touching the session that runs the tests. */
static void test_apply(void **unused)
{
	(void)unused;
	/* Raising nice is always allowed (lowering it back may not be: skip if already higher). */
	if (getpriority(PRIO_PROCESS, 0) > cpu_weight_to_nice(10))
		skip();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int ok = setsid() >= 0 && cpu_weight_apply(10) == 0 &&
			 getpriority(PRIO_PROCESS, 0) == cpu_weight_to_nice(10);
		FILE *f = fopen("/proc/self/autogroup", "r");
		char text[64];
		int nice;
		if (f) {
			ok = ok && fgets(text, sizeof(text), f) &&
			     cpu_weight_parse_autogroup(text, &nice) == 0 &&
			     nice == cpu_weight_to_nice(10);
			fclose(f);
		}
		_exit(ok ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_parse_autogroup(void **unused)
{
	(void)unused;
	int nice = 99;
	assert_int_equal(cpu_weight_parse_autogroup("/autogroup-512 nice 3\n", &nice), 0);
	assert_int_equal(nice, 3);
	assert_int_equal(cpu_weight_parse_autogroup("/autogroup-1 nice -20", &nice), 0);
	assert_int_equal(nice, -20);
	assert_int_equal(cpu_weight_parse_autogroup("/autogroup-1 nice 20", &nice), -EINVAL);
	assert_int_equal(cpu_weight_parse_autogroup("/autogroup-1", &nice), -EINVAL);
	assert_int_equal(cpu_weight_parse_autogroup("", &nice), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mapping),
	    cmocka_unit_test(test_apply),
	    cmocka_unit_test(test_parse_autogroup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
