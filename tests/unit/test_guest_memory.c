/* The checked guest-physical accessor: bounds, the PCI hole, high RAM and overflow. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_low_only),
	    cmocka_unit_test(test_split),
	    cmocka_unit_test(test_bad_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
