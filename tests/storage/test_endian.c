/* lib/endian.h: the byte layout of every helper at every alignment, and that a store touches
 * only its own bytes. Run under UBSan, so an unaligned cast in a helper would be reported. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/endian.h"

/* Bytes 0x01 0x02 ... 0x08 read as each width and order. */
static const uint8_t seq[8] = {1, 2, 3, 4, 5, 6, 7, 8};

/* buf holds 0xEE except at [off, off + n), which must equal want. */
static void check_bytes(const uint8_t *buf, size_t off, const uint8_t *want, size_t n)
{
	for (size_t i = 0; i < 24; i++) {
		uint8_t expect = i >= off && i < off + n ? want[i - off] : 0xEE;
		if (buf[i] != expect)
			fail_msg("offset %zu width %zu: byte %zu is %#x, want %#x", off, n, i,
				 buf[i], expect);
	}
}

static void test_get_every_alignment(void **state)
{
	uint8_t buf[24];

	(void)state;
	for (size_t off = 0; off < 8; off++) {
		memset(buf, 0xEE, sizeof(buf));
		memcpy(buf + off, seq, sizeof(seq));
		assert_int_equal(get_le16(buf + off), 0x0201);
		assert_int_equal(get_be16(buf + off), 0x0102);
		assert_int_equal(get_le32(buf + off), 0x04030201u);
		assert_int_equal(get_be32(buf + off), 0x01020304u);
		assert_true(get_le64(buf + off) == 0x0807060504030201ull);
		assert_true(get_be64(buf + off) == 0x0102030405060708ull);
	}
}

/* put(buf + off, v) at every offset 0..7 writes exactly the n bytes of want there. */
#define CHECK_PUT(put, v, want, n)                                                                 \
	for (size_t off = 0; off < 8; off++) {                                                     \
		memset(buf, 0xEE, sizeof(buf));                                                    \
		put(buf + off, v);                                                                 \
		check_bytes(buf, off, want, n);                                                    \
	}

static void test_put_every_alignment(void **state)
{
	static const uint8_t rev[8] = {8, 7, 6, 5, 4, 3, 2, 1};
	uint8_t buf[24];

	(void)state;
	CHECK_PUT(put_le16, 0x0201, seq, 2);
	CHECK_PUT(put_be16, 0x0102, seq, 2);
	CHECK_PUT(put_le32, 0x04030201u, seq, 4);
	CHECK_PUT(put_be32, 0x01020304u, seq, 4);
	CHECK_PUT(put_le64, 0x0807060504030201ull, seq, 8);
	CHECK_PUT(put_be64, 0x0807060504030201ull, rev, 8);
}

/* The high bits of each width survive a round trip (no sign extension, no truncation). */
static void test_round_trip_extremes(void **state)
{
	static const uint64_t v[] = {0,
				     1,
				     0x80,
				     0xFF,
				     0x8000,
				     0xFFFF,
				     0x80000000u,
				     0xFFFFFFFFu,
				     0x8000000000000000ull,
				     0xFFFFFFFFFFFFFFFFull};
	uint8_t buf[16];

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		put_le16(buf + 1, (uint16_t)v[i]);
		assert_int_equal(get_le16(buf + 1), (uint16_t)v[i]);
		put_be16(buf + 3, (uint16_t)v[i]);
		assert_int_equal(get_be16(buf + 3), (uint16_t)v[i]);
		put_le32(buf + 1, (uint32_t)v[i]);
		assert_int_equal(get_le32(buf + 1), (uint32_t)v[i]);
		put_be32(buf + 3, (uint32_t)v[i]);
		assert_int_equal(get_be32(buf + 3), (uint32_t)v[i]);
		put_le64(buf + 1, v[i]);
		assert_true(get_le64(buf + 1) == v[i]);
		put_be64(buf + 5, v[i]);
		assert_true(get_be64(buf + 5) == v[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get_every_alignment),
	    cmocka_unit_test(test_put_every_alignment),
	    cmocka_unit_test(test_round_trip_extremes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
