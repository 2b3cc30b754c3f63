/* SMBIOS tables: entry point checksums and fields, a structure walk (lengths, string sets, the
 * end marker, unique handles), the UUID's byte order, processors and memory per configuration. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devices/smbios.h"
#include "lib/endian.h"
#include "memory/layout.h"

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s += *p++;
	return s;
}

struct walk {
	unsigned count, by_type[128], handles[256];
	const uint8_t *first[128];
	size_t max_struct;
};

/* Walk the table as an OS does; fails the test on anything malformed. */
static void walk(const uint8_t *t, size_t len, struct walk *w)
{
	memset(w, 0, sizeof(*w));
	size_t off = 0;
	bool ended = false;
	while (off < len) {
		assert_false(ended);
		assert_true(off + 4 <= len);
		const uint8_t *s = t + off;
		uint8_t type = s[0], slen = s[1];
		assert_true(slen >= 4 && off + slen + 2 <= len);
		for (unsigned i = 0; i < w->count; i++)
			assert_int_not_equal(w->handles[i], get_le16(s + 2)); /* handles unique */
		assert_true(w->count < 256);
		w->handles[w->count++] = get_le16(s + 2);
		/* strings: until a double NUL */
		size_t p = off + slen;
		if (t[p] == 0) {
			assert_int_equal(t[p + 1], 0);
			p += 2;
		} else {
			while (p + 1 < len && !(t[p] == 0 && t[p + 1] == 0))
				p++;
			assert_true(p + 1 < len);
			p += 2;
		}
		if (p - off > w->max_struct)
			w->max_struct = p - off;
		if (type < 128) {
			if (!w->by_type[type])
				w->first[type] = s;
			w->by_type[type]++;
		}
		ended = type == 127;
		off = p;
	}
	assert_true(ended);
	assert_int_equal(off, len);
}

/* String `n` (1-based) of the structure at s. */
static const char *str(const uint8_t *s, unsigned n)
{
	const char *p = (const char *)s + s[1];
	while (--n)
		p += strlen(p) + 1;
	return p;
}

static void build(const struct smbios_config *c, uint8_t **t, size_t *len, uint8_t *a,
		  struct walk *w)
{
	assert_int_equal(smbios_build(c, t, len, a), 0);
	assert_memory_equal(a, "_SM_", 4);
	assert_int_equal(a[5], SMBIOS_ANCHOR_LEN);
	assert_int_equal(sum(a, SMBIOS_ANCHOR_LEN), 0);
	assert_memory_equal(a + 0x10, "_DMI_", 5);
	assert_int_equal(sum(a + 0x10, 0x0F), 0);
	assert_int_equal(a[6], 2);
	assert_int_equal(a[7], 8);
	assert_int_equal(get_le16(a + 0x16), *len);
	walk(*t, *len, w);
	assert_int_equal(get_le16(a + 0x1C), w->count);
	assert_int_equal(get_le16(a + 8), w->max_struct);
}

static void test_small(void **state)
{
	(void)state;
	struct smbios_config c = {
	    .ncpus = 2,
	    .ncpus_possible = 4,
	    .low_ram = 1 * GiB,
	    .version = "0.1.0",
	    .uuid = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8}};
	uint8_t *t, a[SMBIOS_ANCHOR_LEN];
	size_t len;
	struct walk w;
	build(&c, &t, &len, a, &w);
	assert_int_equal(w.by_type[0], 1);
	assert_int_equal(w.by_type[1], 1);
	assert_int_equal(w.by_type[3], 1);
	assert_int_equal(w.by_type[4], 4);
	assert_int_equal(w.by_type[16], 1);
	assert_int_equal(w.by_type[17], 1);
	assert_int_equal(w.by_type[19], 1); /* no high RAM */
	assert_int_equal(w.by_type[32], 1);
	assert_int_equal(w.by_type[127], 1);
	const uint8_t *t1 = w.first[1];
	assert_string_equal(str(t1, t1[4]), "minivmm");
	static const uint8_t want[16] = {0x78, 0x56, 0x34, 0x12, 0xbc, 0x9a, 0xf0, 0xde,
					 1,    2,    3,	   4,	 5,    6,    7,	   8};
	assert_memory_equal(t1 + 8, want, 16);
	const uint8_t *t0 = w.first[0];
	assert_string_equal(str(t0, t0[5]), "0.1.0");
	/* processors: the first two enabled, the rest empty sockets */
	const uint8_t *p = w.first[4];
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(p[0], 4);
		assert_int_equal(p[0x18], i < 2 ? 0x41 : 0x00);
		char want_sock[16];
		snprintf(want_sock, sizeof(want_sock), "CPU %u", i);
		assert_string_equal(str(p, p[4]), want_sock);
		const char *q = (const char *)p + p[1];
		while (q[0] || q[1])
			q++;
		p = (const uint8_t *)q + 2;
	}
	const uint8_t *m = w.first[17];
	assert_int_equal(get_le16(m + 0x0C), 1024); /* MiB */
	assert_int_equal(get_le16(m + 4), get_le16(w.first[16] + 2));
	const uint8_t *r = w.first[19];
	assert_int_equal(get_le32(r + 4), 0);
	assert_int_equal(get_le32(r + 8), 1 * GiB / KiB - 1);
	free(t);
}

static void test_large(void **state)
{
	(void)state;
	struct smbios_config c = {.ncpus = 64,
				  .ncpus_possible = 64,
				  .low_ram = 3 * GiB,
				  .high_ram = 8189ULL * GiB, /* 8 TiB in all: the extended fields */
				  .version = "x"};
	uint8_t *t, a[SMBIOS_ANCHOR_LEN];
	size_t len;
	struct walk w;
	build(&c, &t, &len, a, &w);
	assert_int_equal(w.by_type[4], 64);
	assert_int_equal(w.by_type[19], 2);
	const uint8_t *m16 = w.first[16];
	assert_int_equal(get_le32(m16 + 7), 0x80000000u);
	assert_int_equal(get_le64(m16 + 0x0F), 8192ULL * GiB);
	const uint8_t *m17 = w.first[17];
	assert_int_equal(get_le16(m17 + 0x0C), 0x7FFF);
	assert_int_equal(get_le32(m17 + 0x1C), 8192ULL * 1024);
	free(t);
}

static void test_errors(void **state)
{
	(void)state;
	uint8_t *t, a[SMBIOS_ANCHOR_LEN];
	size_t len;
	struct smbios_config c = {.ncpus = 0, .ncpus_possible = 1, .low_ram = MiB, .version = "x"};
	assert_int_equal(smbios_build(&c, &t, &len, a), -EINVAL);
	c.ncpus = 2;
	assert_int_equal(smbios_build(&c, &t, &len, a), -EINVAL);
	c.ncpus = 1;
	c.version = "";
	assert_int_equal(smbios_build(&c, &t, &len, a), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_small),
	    cmocka_unit_test(test_large),
	    cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
