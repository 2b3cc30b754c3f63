/* The CFI flash under OVMF's own sequences (OvmfPkg/QemuFlashFvbServicesRuntimeDxe): the probe
 * that must find "FLASH", byte programs, block erases, the mapping switched off and on, the
 * written range made durable on read-array, and broken sequences. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devices/pflash.h"

#define SIZE 0x4000
#define BLOCK 0x1000

static uint8_t mem[SIZE];
static unsigned romd_calls;
static bool romd_on;
static uint64_t persisted_off, persisted_len;
static unsigned persist_calls;
static int persist_result;

static void romd(void *opaque, bool on)
{
	(void)opaque;
	romd_calls++;
	romd_on = on;
}

static int persist(void *opaque, uint64_t off, uint64_t len)
{
	(void)opaque;
	persist_calls++;
	persisted_off = off;
	persisted_len = len;
	return persist_result;
}

static const struct pflash_ops ops = {.romd = romd, .persist = persist};
static struct pflash *f;

static int setup(void **state)
{
	(void)state;
	memset(mem, 0xA5, sizeof(mem));
	romd_calls = persist_calls = 0;
	romd_on = true;
	persist_result = 0;
	assert_int_equal(pflash_create(mem, SIZE, BLOCK, &ops, &f), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pflash_destroy(f);
	return 0;
}

static void wr(uint64_t off, uint8_t v)
{
	pflash_io(f, off, &v, 1, true);
}

/* What the guest reads: the memory while mapped, else what exits to the device. */
static uint8_t rd(uint64_t off)
{
	if (romd_on)
		return mem[off];
	uint8_t v;
	pflash_io(f, off, &v, 1, false);
	return v;
}

static void test_create_checks(void **state)
{
	(void)state;
	struct pflash *g;
	assert_int_equal(pflash_create(mem, SIZE, 0x1800, &ops, &g), -EINVAL);
	assert_int_equal(pflash_create(mem, 0x1800, BLOCK, &ops, &g), -EINVAL);
	assert_int_equal(pflash_create(NULL, SIZE, BLOCK, &ops, &g), -EINVAL);
}

/* QemuFlashDetected, step by step: it must conclude "behaves as FLASH". */
static void test_ovmf_probe(void **state)
{
	(void)state;
	uint8_t orig = rd(0);
	wr(0, 0x50); /* CLEAR_STATUS */
	uint8_t probe = rd(0);
	assert_false(orig != 0x50 && probe == 0x50); /* not "RAM" */
	wr(0, 0x70);				     /* READ_STATUS */
	probe = rd(0);
	assert_int_not_equal(probe, orig); /* not "ROM" */
	assert_int_equal(probe, 0x00);	   /* CLEARED_ARRAY_STATUS */
	wr(0, 0x10);
	wr(0, orig);
	wr(0, 0x70);
	probe = rd(0);
	wr(0, 0xFF);
	assert_int_equal(probe & 0x10, 0); /* no program error: "FLASH" */
	assert_true(probe & PFLASH_STATUS_READY);
	assert_true(romd_on);
	assert_int_equal(rd(0), orig);
}

static void test_program_and_erase(void **state)
{
	(void)state;
	/* QemuFlashWrite: program each byte, then read-array once. */
	const char *s = "NVRAM";
	for (unsigned i = 0; s[i]; i++) {
		wr(0x1200 + i, 0x10);
		assert_false(romd_on);
		wr(0x1200 + i, (uint8_t)s[i]);
		assert_int_equal(rd(0x1200 + i), PFLASH_STATUS_READY);
	}
	assert_int_equal(persist_calls, 0); /* durable at read-array, not per byte */
	wr(0x1200, 0xFF);
	assert_true(romd_on);
	assert_memory_equal(mem + 0x1200, s, 5);
	assert_int_equal(persist_calls, 1);
	assert_int_equal(persisted_off, 0x1200);
	assert_int_equal(persisted_len, 5);
	/* QemuFlashEraseBlock: the whole block holding the address, nothing around it. */
	wr(0x1234, 0x20);
	wr(0x1234, 0xD0);
	wr(0x1234, 0xFF);
	for (unsigned i = 0; i < BLOCK; i++)
		assert_int_equal(mem[0x1000 + i], 0xFF);
	assert_int_equal(mem[0xFFF], 0xA5);
	assert_int_equal(mem[0x2000], 0xA5);
	assert_int_equal(persisted_off, 0x1000);
	assert_int_equal(persisted_len, BLOCK);
}

static void test_broken_sequences(void **state)
{
	(void)state;
	/* Erase without its confirmation: nothing erased, error bits, still answering. */
	wr(0x100, 0x20);
	wr(0x100, 0x42);
	assert_int_equal(rd(0x100) & 0x30, 0x30);
	wr(0x100, 0xFF);
	assert_int_equal(mem[0x100], 0xA5);
	assert_int_equal(persist_calls, 0);
	/* Clear status clears them. */
	wr(0x100, 0x50);
	assert_int_equal(rd(0x100), 0);
	/* Unknown commands (read ID, CFI query): back to reading the array. */
	wr(0, 0x90);
	assert_true(romd_on);
	assert_int_equal(rd(0), 0xA5);
	/* Accesses beyond the flash (a region larger than the device): ignored, all ones. */
	uint8_t v[2] = {0x10, 0};
	pflash_io(f, SIZE, v, 1, true);
	assert_true(romd_on);
	pflash_io(f, SIZE - 1, v, 2, false);
	assert_int_equal(v[0], 0xFF);
	assert_int_equal(v[1], 0xFF);
	/* A failing store: the program error bit tells the guest. */
	persist_result = -EIO;
	wr(0x300, 0x10);
	wr(0x300, 0x00);
	wr(0x300, 0xFF);
	wr(0x300, 0x70);
	assert_true(rd(0x300) & PFLASH_STATUS_PROGRAM_ERROR);
}

static void test_reset(void **state)
{
	(void)state;
	wr(0x10, 0x10);
	wr(0x10, 0x11);
	assert_false(romd_on);
	pflash_reset(f); /* a reboot mid-sequence: durable, mapped, ready */
	assert_true(romd_on);
	assert_true(pflash_romd(f));
	assert_int_equal(persist_calls, 1);
	assert_int_equal(mem[0x10], 0x11);
	wr(0x10, 0x70);
	assert_int_equal(rd(0x10), PFLASH_STATUS_READY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_checks),
	    cmocka_unit_test_setup_teardown(test_ovmf_probe, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_program_and_erase, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_broken_sequences, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
