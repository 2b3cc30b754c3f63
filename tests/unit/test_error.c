/* lib/error: the one error channel (a -errno return plus a thread-local message). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/error.h"

static void test_set_returns_negative_errno(void **state)
{
	(void)state;
	assert_int_equal(error_set(-EINVAL, "disk %s: bad size %u", "a.img", 7), -EINVAL);
	assert_string_equal(error_msg(), "disk a.img: bad size 7");
	assert_int_equal(error_set(EIO, "x"), -EIO); /* a positive errno comes back negative */
	assert_true(error_recorded());
}

static void test_clear(void **state)
{
	(void)state;
	error_set(-EIO, "something");
	error_clear();
	assert_false(error_recorded());
	assert_string_equal(error_msg(), "no error recorded");
}

static void test_wrap_puts_context_first(void **state)
{
	(void)state;
	error_set(-ENOENT, "base.qcow2: cannot open: No such file or directory");
	assert_int_equal(error_wrap(-ENOENT, "%s: in its backing chain", "top.qcow2"), -ENOENT);
	assert_string_equal(error_msg(),
			    "top.qcow2: in its backing chain: base.qcow2: cannot open: No such "
			    "file or directory");
}

static void test_long_messages_are_cut(void **state)
{
	(void)state;
	char big[2000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	error_set(-E2BIG, "%s", big);
	size_t n = strlen(error_msg());
	assert_true(n > 100 && n < sizeof(big));
	error_wrap(-E2BIG, "%s", big); /* context alone fills it: no overflow, still a string */
	assert_true(strlen(error_msg()) == n);
}

static void *other_thread(void *arg)
{
	(void)arg;
	const char *before = error_msg();
	bool fresh = !error_recorded() && !strcmp(before, "no error recorded");
	error_set(-EPERM, "other thread");
	return (void *)(uintptr_t)fresh;
}

static void test_thread_local(void **state)
{
	(void)state;
	error_set(-EIO, "main thread");
	pthread_t t;
	void *fresh;
	assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
	assert_int_equal(pthread_join(t, &fresh), 0);
	assert_true(fresh);
	assert_string_equal(error_msg(), "main thread");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_set_returns_negative_errno),
	    cmocka_unit_test(test_clear),
	    cmocka_unit_test(test_wrap_puts_context_first),
	    cmocka_unit_test(test_long_messages_are_cut),
	    cmocka_unit_test(test_thread_local),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
