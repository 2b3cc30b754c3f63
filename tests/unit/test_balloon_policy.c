/* The automatic balloon of --memory MIN:MAX: deflate under LOW, inflate over HIGH by at most a
 * step, never past MAX-MIN, nothing in between. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "devices/virtio/balloon/balloon_policy.h"

#define MIB 256ULL /* pages */

static const struct balloon_policy p = {.max_pages = 1024 * MIB, .min_pages = 512 * MIB};
/* LOW 102.4 MiB, HIGH 256 MiB, GOAL 179.2 MiB, STEP 64 MiB, ceiling 512 MiB */

static void test_deflate_under_low(void **state)
{
	(void)state;
	uint64_t low = p.max_pages / 10, goal = (p.max_pages / 10 + p.max_pages / 4) / 2;
	/* 50 MiB available with 400 in the balloon: give back what reaches GOAL, at once */
	assert_int_equal(balloon_policy_target(&p, 400 * MIB, 400 * MIB, 50 * MIB),
			 400 * MIB - (goal - 50 * MIB));
	/* more needed than the balloon holds: empty it */
	assert_int_equal(balloon_policy_target(&p, 20 * MIB, 20 * MIB, 0), 0);
	assert_int_equal(balloon_policy_target(&p, 0, 0, 10 * MIB), 0);
	/* after an OOM deflation (actual 300 < target 400) the deflation starts from the actual */
	assert_int_equal(balloon_policy_target(&p, 400 * MIB, 300 * MIB, 50 * MIB),
			 300 * MIB - (goal - 50 * MIB));
	/* just at LOW: no change */
	assert_int_equal(balloon_policy_target(&p, 300 * MIB, 300 * MIB, low), 300 * MIB);
}

static void test_inflate_over_high(void **state)
{
	(void)state;
	/* plenty free: one step at a time */
	assert_int_equal(balloon_policy_target(&p, 100 * MIB, 100 * MIB, 600 * MIB), 164 * MIB);
	/* just over HIGH: still a step (HIGH - GOAL is more than a step) */
	assert_int_equal(balloon_policy_target(&p, 100 * MIB, 100 * MIB, p.max_pages / 4 + 1),
			 164 * MIB);
	/* never past MAX-MIN */
	assert_int_equal(balloon_policy_target(&p, 500 * MIB, 500 * MIB, 900 * MIB), 512 * MIB);
	assert_int_equal(balloon_policy_target(&p, 512 * MIB, 512 * MIB, 900 * MIB), 512 * MIB);
	/* a target above the ceiling (set by hand) comes down to it */
	assert_int_equal(balloon_policy_target(&p, 700 * MIB, 700 * MIB, 200 * MIB), 512 * MIB);
}

static void test_between(void **state)
{
	(void)state;
	for (uint64_t a = p.max_pages / 10; a <= p.max_pages / 4; a += MIB)
		assert_int_equal(balloon_policy_target(&p, 200 * MIB, 200 * MIB, a), 200 * MIB);
}

static void test_min_equals_max(void **state)
{
	(void)state;
	struct balloon_policy q = {.max_pages = 512 * MIB, .min_pages = 512 * MIB};
	assert_int_equal(balloon_policy_target(&q, 0, 0, 500 * MIB), 0);
	assert_int_equal(balloon_policy_target(&q, 100 * MIB, 100 * MIB, 500 * MIB), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_deflate_under_low),
	    cmocka_unit_test(test_inflate_over_high),
	    cmocka_unit_test(test_between),
	    cmocka_unit_test(test_min_equals_max),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
