/* The checked guest-physical accessor: bounds, the PCI hole, high RAM and overflow. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "memory/guest_memory.h"
#include "memory/layout.h"

static void test_low_only(void **state)
{
	(void)state;
	struct guest_memory gm;
	assert_int_equal(guest_memory_create(&gm, 64 * MiB), 0);
	assert_int_equal(gm.low_size, 64 * MiB);
	assert_int_equal(gm.high_size, 0);
	assert_ptr_equal(guest_memory_ptr(&gm, 0, 64 * MiB), gm.host);
	assert_ptr_equal(guest_memory_ptr(&gm, 64 * MiB - 1, 1), gm.host + 64 * MiB - 1);
	assert_null(guest_memory_ptr(&gm, 64 * MiB - 1, 2));
	assert_null(guest_memory_ptr(&gm, 64 * MiB, 0));
	assert_null(guest_memory_ptr(&gm, 64 * MiB, 1));
	assert_null(guest_memory_ptr(&gm, 0, 64 * MiB + 1));
	assert_null(guest_memory_ptr(&gm, 1, UINT64_MAX));
	assert_null(guest_memory_ptr(&gm, UINT64_MAX, 2));
	assert_null(guest_memory_ptr(&gm, UINT64_MAX - 1, 1));
	assert_null(guest_memory_ptr(&gm, LAYOUT_HIGH_RAM_START, 1));
	uint8_t buf[4] = {1, 2, 3, 4}, back[4];
	assert_int_equal(guest_memory_write(&gm, 0x1000, buf, 4), 0);
	assert_int_equal(guest_memory_read(&gm, 0x1000, back, 4), 0);
	assert_memory_equal(buf, back, 4);
	assert_int_equal(guest_memory_write(&gm, 64 * MiB - 2, buf, 4), -EFAULT);
	assert_int_equal(guest_memory_read(&gm, UINT64_MAX - 1, back, 4), -EFAULT);
	guest_memory_destroy(&gm);
}

static void test_split(void **state)
{
	(void)state;
	struct guest_memory gm;
	uint64_t size = LAYOUT_LOW_RAM_END + 64 * MiB; /* MAP_NORESERVE: costs nothing */
	assert_int_equal(guest_memory_create(&gm, size), 0);
	assert_int_equal(gm.low_size, LAYOUT_LOW_RAM_END);
	assert_int_equal(gm.high_size, 64 * MiB);
	/* the PCI hole is not RAM, and no range may straddle it */
	assert_null(guest_memory_ptr(&gm, LAYOUT_LOW_RAM_END, 1));
	assert_null(guest_memory_ptr(&gm, LAYOUT_LOW_RAM_END - 1, 2));
	assert_null(guest_memory_ptr(&gm, LAYOUT_PCI_MMIO32_END, 4));
	assert_null(guest_memory_ptr(&gm, LAYOUT_HIGH_RAM_START - 1, 2));
	assert_ptr_equal(guest_memory_ptr(&gm, LAYOUT_HIGH_RAM_START, 64 * MiB),
			 gm.host + LAYOUT_LOW_RAM_END);
	assert_null(guest_memory_ptr(&gm, LAYOUT_HIGH_RAM_START + 64 * MiB, 1));
	assert_null(guest_memory_ptr(&gm, LAYOUT_HIGH_RAM_START + 64 * MiB - 8, 9));
	assert_null(guest_memory_ptr(&gm, LAYOUT_HIGH_RAM_START + 8, UINT64_MAX - 4));
	guest_memory_destroy(&gm);
}

static void test_bad_sizes(void **state)
{
	(void)state;
	struct guest_memory gm;
	assert_int_equal(guest_memory_create(&gm, 0), -EINVAL);
	assert_int_equal(guest_memory_create(&gm, 4097), -EINVAL);
	assert_null(guest_memory_ptr(&gm, 0, 1)); /* a failed create leaves nothing mapped */
}

/* Is the page at host pointer p resident (mincore)? */
static int resident(void *p)
{
	unsigned char v = 0;
	assert_int_equal(mincore(p, 4096, &v), 0);
	return v & 1;
}

/* Fill 4 pages from gpa with 0xAB, discard the second and third; they read back zero and are no
 * longer resident, the others keep their bytes. */
static void check_discard(struct guest_memory *gm, uint64_t gpa)
{
	uint8_t *p = guest_memory_ptr(gm, gpa, 4 * 4096);
	assert_non_null(p);
	memset(p, 0xAB, 4 * 4096);
	assert_int_equal(guest_memory_discard(gm, gpa + 4096, 2 * 4096), 0);
	for (unsigned i = 0; i < 4 * 4096; i++)
		assert_int_equal(p[i], i < 4096 || i >= 3 * 4096 ? 0xAB : 0);
	assert_true(resident(p));
	memset(p, 0xAB, 4 * 4096);
	assert_int_equal(guest_memory_discard(gm, gpa + 4096, 4096), 0);
	assert_false(resident(p + 4096));
}

static void test_discard_private(void **state)
{
	(void)state;
	struct guest_memory gm;
	assert_int_equal(guest_memory_create(&gm, LAYOUT_LOW_RAM_END + 64 * MiB), 0);
	assert_false(gm.shared);
	check_discard(&gm, 0x100000);
	check_discard(&gm, LAYOUT_HIGH_RAM_START + 8 * MiB);
	/* refused: unaligned, outside RAM, in the PCI hole, straddling it, wrapping */
	assert_int_equal(guest_memory_discard(&gm, 0x100001, 4096), -EINVAL);
	assert_int_equal(guest_memory_discard(&gm, 0x100000, 100), -EINVAL);
	assert_int_equal(guest_memory_discard(&gm, LAYOUT_LOW_RAM_END, 4096), -EFAULT);
	assert_int_equal(guest_memory_discard(&gm, LAYOUT_LOW_RAM_END - 4096, 8192), -EFAULT);
	assert_int_equal(guest_memory_discard(&gm, LAYOUT_HIGH_RAM_START + 64 * MiB, 4096),
			 -EFAULT);
	assert_int_equal(guest_memory_discard(&gm, UINT64_MAX - 4095, 8192), -EFAULT); /* wraps */
	assert_int_equal(guest_memory_discard(&gm, 0xFFFFFFFFFFFFF000ULL, 4096), -EFAULT);
	assert_int_equal(guest_memory_discard(&gm, 0, 0), 0);
	guest_memory_destroy(&gm);
}

static void test_discard_shared(void **state)
{
	(void)state;
	struct guest_memory gm;
	struct stat st;
	assert_int_equal(guest_memory_create_shared(&gm, 16 * MiB), 0);
	assert_true(gm.shared);
	memset(gm.host, 0x5A, 8 * MiB);
	assert_int_equal(fstat(gm.memfd, &st), 0);
	long before = (long)st.st_blocks;
	check_discard(&gm, 2 * MiB);
	/* the memfd gives its pages back too (MADV_DONTNEED alone would keep them) */
	assert_int_equal(guest_memory_discard(&gm, 4 * MiB, 4 * MiB), 0);
	assert_int_equal(fstat(gm.memfd, &st), 0);
	assert_true((long)st.st_blocks <= before - (long)(4 * MiB / 512));
	assert_int_equal(gm.host[4 * MiB], 0);
	guest_memory_destroy(&gm);
}

static void test_discard_host(void **state)
{
	(void)state;
	struct guest_memory gm;
	assert_int_equal(guest_memory_create(&gm, 16 * MiB), 0);
	memset(gm.host, 0x11, 16384);
	/* only the whole pages inside [100, 100 + 3 pages) go: the second and third */
	assert_int_equal(guest_memory_discard_host(&gm, gm.host + 100, 3 * 4096), 2 * 4096);
	assert_int_equal(gm.host[4095], 0x11);
	assert_int_equal(gm.host[4096], 0);
	assert_int_equal(gm.host[3 * 4096 - 1], 0);
	assert_int_equal(gm.host[3 * 4096], 0x11);
	assert_int_equal(guest_memory_discard_host(&gm, gm.host + 100, 200), 0);
	assert_int_equal(guest_memory_discard_host(&gm, gm.host + 16 * MiB - 4096, 8192), -EFAULT);
	assert_int_equal(guest_memory_discard_host(&gm, gm.host - 4096, 4096), -EFAULT);
	assert_int_equal(guest_memory_discard_host(&gm, gm.host + 4096, UINT64_MAX), -EFAULT);
	guest_memory_destroy(&gm);
}

static void test_mergeable(void **state)
{
	(void)state;
	struct guest_memory gm;
	assert_int_equal(guest_memory_create(&gm, 16 * MiB), 0);
	assert_int_equal(guest_memory_set_mergeable(&gm, 1), 0);
	assert_int_equal(guest_memory_set_mergeable(&gm, 0), 0);
	guest_memory_destroy(&gm);
	assert_int_equal(guest_memory_set_mergeable(&gm, 1), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_low_only),	   cmocka_unit_test(test_split),
	    cmocka_unit_test(test_bad_sizes),	   cmocka_unit_test(test_discard_private),
	    cmocka_unit_test(test_discard_shared), cmocka_unit_test(test_discard_host),
	    cmocka_unit_test(test_mergeable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
