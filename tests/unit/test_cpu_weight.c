/* --cpu-weight to nice (cpu/cpu_weight.h): cgroup v2's cpu.weight scale onto CFS's nice levels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

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

static void test_apply(void **unused)
{
	(void)unused;
	/* Raising nice is always allowed (lowering it back may not be: skip if already higher). */
	if (getpriority(PRIO_PROCESS, 0) > cpu_weight_to_nice(10))
		skip();
	assert_int_equal(cpu_weight_apply(10), 0);
	assert_int_equal(getpriority(PRIO_PROCESS, 0), cpu_weight_to_nice(10));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mapping),
	    cmocka_unit_test(test_apply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
