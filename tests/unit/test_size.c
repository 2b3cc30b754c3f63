/* tools/size.c: every suffix, fractions, and the inputs that must be refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tools/size.h"

static void ok(const char *text, uint64_t want)
{
	uint64_t got = 12345;
	int ret = size_parse(text, &got);
	if (ret != 0 || got != want)
		fail_msg("size_parse(\"%s\") = %d, %llu; want 0, %llu", text, ret,
			 (unsigned long long)got, (unsigned long long)want);
}

static void bad(const char *text, int want_err)
{
	uint64_t got = 777;
	int ret = size_parse(text, &got);
	if (ret != want_err || got != 777)
		fail_msg("size_parse(\"%s\") = %d; want %d and output untouched", text, ret,
			 want_err);
}

static void test_plain_and_suffixes(void **state)
{
	(void)state;
	ok("0", 0);
	ok("1", 1);
	ok("4096", 4096);
	ok("512b", 512);
	ok("512B", 512);
	ok("1k", 1024);
	ok("64K", 65536);
	ok("1M", 1 << 20);
	ok("3m", 3 << 20);
	ok("1G", 1ULL << 30);
	ok("2g", 2ULL << 30);
	ok("1T", 1ULL << 40);
	ok("1P", 1ULL << 50);
	ok("7E", 7ULL << 60);
	ok("007k", 7 << 10);
}

static void test_fractions(void **state)
{
	(void)state;
	ok("1.5G", 3ULL << 29);
	ok("0.5k", 512);
	ok("1.0M", 1 << 20);
	ok("0.25M", 1 << 18);
	/* A fraction truncates to whole bytes. */
	ok("0.001k", 1);
	ok("1.00000000000000000000001K", 1024);
}

static void test_refused(void **state)
{
	(void)state;
	bad("", -EINVAL);
	bad("-1", -EINVAL);
	bad("+1", -EINVAL);
	bad(" 1", -EINVAL);
	bad("1 ", -EINVAL);
	bad("0x10", -EINVAL);
	bad("1KB", -EINVAL);
	bad("1Q", -EINVAL);
	bad("k", -EINVAL);
	bad(".", -EINVAL);
	bad("1.", -EINVAL);
}

static void test_fraction_edge(void **state)
{
	(void)state;
	/* ".5k" has digits only after the point: accepted as half a KiB, like qemu-img. */
	ok(".5k", 512);
	bad("1.5", -EINVAL); /* a fraction of a byte */
	bad("1.x", -EINVAL);
}

static void test_overflow(void **state)
{
	(void)state;
	ok("9223372036854775807", INT64_MAX);
	bad("9223372036854775808", -ERANGE);
	bad("99999999999999999999999", -ERANGE);
	ok("8191P", 8191ULL << 50);
	bad("8E", -ERANGE);
	bad("8192P", -ERANGE);
	bad(NULL, -EINVAL);
}

static void fmt(uint64_t v, const char *want)
{
	char buf[32];
	assert_string_equal(size_format(v, buf, sizeof(buf)), want);
}

static void test_format(void **state)
{
	(void)state;
	fmt(0, "0 B");
	fmt(512, "512 B");
	fmt(999, "999 B");
	fmt(1000, "0.977 KiB");
	fmt(1024, "1 KiB");
	fmt(200704, "196 KiB");
	fmt(3ULL << 29, "1.5 GiB");
	fmt(1ULL << 30, "1 GiB");
	fmt(10ULL << 40, "10 TiB");
	fmt(INT64_MAX, "8 EiB");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_and_suffixes),
	    cmocka_unit_test(test_fractions),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_fraction_edge),
	    cmocka_unit_test(test_overflow),
	    cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
