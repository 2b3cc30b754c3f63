/* lib/log: level names, trace lists, MINIVMM_LOG, and that trace points cost nothing when off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "lib/log.h"

static void reset(void)
{
	log_level = LOG_WARN;
	trace_mask = 0;
	unsetenv("MINIVMM_LOG");
}

static void test_levels(void **state)
{
	(void)state;
	reset();
	assert_int_equal(log_set_level("debug"), 0);
	assert_int_equal(log_level, LOG_DEBUG);
	assert_int_equal(log_set_level("error"), 0);
	assert_int_equal(log_level, LOG_ERROR);
	assert_int_equal(log_set_level("verbose"), -22);
	assert_int_equal(log_level, LOG_ERROR);
}

static void test_trace_lists(void **state)
{
	(void)state;
	reset();
	assert_int_equal(trace_enable("ahci,virtio"), 0);
	assert_true(trace_mask & (1ull << TRACE_AHCI));
	assert_true(trace_mask & (1ull << TRACE_VIRTIO));
	assert_false(trace_mask & (1ull << TRACE_IDE));
	reset();
	assert_int_equal(trace_enable("ide+ata"), 0);
	assert_int_equal(trace_mask, (1ull << TRACE_IDE) | (1ull << TRACE_ATA));
}

static void test_trace_bad(void **state)
{
	(void)state;
	static const char *const bad[] = {"", "ahci,", "ahci,nope", "ahc", ",ide", "all,"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reset();
		assert_int_equal(trace_enable(bad[i]), -22);
		assert_int_equal(trace_mask, 0);
	}
	reset();
	assert_int_equal(trace_enable("all"), 0);
	assert_int_equal(trace_mask, (1ull << TRACE_CATEGORIES) - 1);
}

static int traced;
static int side_effect(void)
{
	return ++traced;
}

static void test_trace_off_evaluates_nothing(void **state)
{
	(void)state;
	reset();
	traced = 0;
	TRACE(AHCI, "value %d", side_effect());
	assert_int_equal(traced, 0);
	assert_int_equal(trace_enable("ahci"), 0);
	TRACE(AHCI, "value %d", side_effect());
	assert_int_equal(traced, 1);
	reset();
}

static void test_env(void **state)
{
	(void)state;
	reset();
	setenv("MINIVMM_LOG", "info,trace=block+pci", 1);
	assert_int_equal(log_init_from_env(), 0);
	assert_int_equal(log_level, LOG_INFO);
	assert_int_equal(trace_mask, (1ull << TRACE_BLOCK) | (1ull << TRACE_PCI));
	/* a malformed setting is ignored as a whole */
	reset();
	setenv("MINIVMM_LOG", "debug,trace=nope", 1);
	assert_int_equal(log_init_from_env(), -22);
	assert_int_equal(log_level, LOG_WARN);
	assert_int_equal(trace_mask, 0);
	reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_levels),    cmocka_unit_test(test_trace_lists),
	    cmocka_unit_test(test_trace_bad), cmocka_unit_test(test_trace_off_evaluates_nothing),
	    cmocka_unit_test(test_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
