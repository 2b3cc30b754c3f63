/* ACPI fixed hardware: PM1 status/enable/control, PM timer, GPE0, SCI level and sleep. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devices/acpi_pm.h"
#include "memory/layout.h"

#define PM1_STS (LAYOUT_PORT_ACPI_PM + 0)
#define PM1_EN (LAYOUT_PORT_ACPI_PM + 2)
#define PM1_CNT (LAYOUT_PORT_ACPI_PM + 4)
#define PM_TMR (LAYOUT_PORT_ACPI_PM + 8)
#define GPE0_STS LAYOUT_PORT_ACPI_GPE0
#define GPE0_EN (LAYOUT_PORT_ACPI_GPE0 + LAYOUT_PORT_ACPI_GPE0_LEN / 2)

struct recorder {
	bool sci;
	unsigned sci_calls;
	unsigned sleeps;
	unsigned slp_typ;
};

static void rec_set_sci(void *opaque, bool level)
{
	struct recorder *r = opaque;
	r->sci = level;
	r->sci_calls++;
}

static void rec_sleep(void *opaque, unsigned slp_typ)
{
	struct recorder *r = opaque;
	r->sleeps++;
	r->slp_typ = slp_typ;
}

static struct recorder rec;
static struct acpi_pm *pm;

static int setup(void **state)
{
	(void)state;
	struct acpi_pm_ops ops = {.set_sci = rec_set_sci, .sleep = rec_sleep, .opaque = &rec};
	memset(&rec, 0, sizeof(rec));
	return acpi_pm_create(&ops, &pm);
}

static int teardown(void **state)
{
	(void)state;
	acpi_pm_destroy(pm);
	pm = NULL;
	return 0;
}

static uint32_t rd(uint16_t port, unsigned len)
{
	uint8_t b[4] = {0};
	acpi_pm_io(pm, port, b, len, false);
	return b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;
}

static void wr(uint16_t port, unsigned len, uint32_t v)
{
	uint8_t b[4] = {v, v >> 8, v >> 16, v >> 24};
	acpi_pm_io(pm, port, b, len, true);
}

static void test_sci_en_always_set(void **state)
{
	(void)state;
	assert_int_equal(rd(PM1_CNT, 2) & 1, 1);
	wr(PM1_CNT, 2, 0);
	assert_int_equal(rd(PM1_CNT, 2) & 1, 1);
	assert_int_equal(rec.sleeps, 0);
}

static void test_sleep_s5(void **state)
{
	(void)state;
	/* SLP_TYP without SLP_EN only stores the type. */
	wr(PM1_CNT, 2, ACPI_PM_SLP_TYP_S5 << 10);
	assert_int_equal(rec.sleeps, 0);
	assert_int_equal((rd(PM1_CNT, 2) >> 10) & 7, ACPI_PM_SLP_TYP_S5);
	wr(PM1_CNT, 2, ACPI_PM_SLP_TYP_S5 << 10 | 1 << 13);
	assert_int_equal(rec.sleeps, 1);
	assert_int_equal(rec.slp_typ, ACPI_PM_SLP_TYP_S5);
	assert_int_equal(rd(PM1_CNT, 2) & (1 << 13), 0); /* SLP_EN is write-only */
	/* A byte write to the high half works the same (SLP_EN is bit 5 of it). */
	wr(PM1_CNT + 1, 1, (3 << 2) | (1 << 5));
	assert_int_equal(rec.sleeps, 2);
	assert_int_equal(rec.slp_typ, 3);
}

static void test_power_button(void **state)
{
	(void)state;
	acpi_pm_press_power_button(pm);
	assert_int_equal(rd(PM1_STS, 2) & (1 << 8), 1 << 8);
	assert_false(rec.sci); /* not enabled yet */
	wr(PM1_EN, 2, 1 << 8);
	assert_int_equal(rd(PM1_EN, 2), 1 << 8);
	assert_true(rec.sci);
	wr(PM1_STS, 2, 0); /* writing 0 clears nothing */
	assert_true(rec.sci);
	assert_int_equal(rd(PM1_STS, 2) & (1 << 8), 1 << 8);
	wr(PM1_STS, 2, 1 << 8);
	assert_int_equal(rd(PM1_STS, 2) & (1 << 8), 0);
	assert_false(rec.sci);
	/* The SCI follows the level: raised again on a new press, lowered by disabling. */
	acpi_pm_press_power_button(pm);
	assert_true(rec.sci);
	wr(PM1_EN + 1, 1, 0);
	assert_false(rec.sci);
}

static void test_gpe(void **state)
{
	(void)state;
	acpi_pm_raise_gpe(pm, 2);
	assert_int_equal(rd(GPE0_STS, 1), 1 << 2);
	assert_false(rec.sci);
	wr(GPE0_EN, 1, 1 << 2);
	assert_true(rec.sci);
	wr(GPE0_STS, 1, 1 << 3); /* another bit: no effect */
	assert_true(rec.sci);
	wr(GPE0_STS, 1, 1 << 2);
	assert_false(rec.sci);
	assert_int_equal(rd(GPE0_STS, 4), 0);
	/* Bit 31 lands in the last status byte; out-of-range bits are ignored. */
	acpi_pm_raise_gpe(pm, 31);
	assert_int_equal(rd(GPE0_STS, 4), 1u << 31);
	acpi_pm_raise_gpe(pm, 32);
	acpi_pm_raise_gpe(pm, ~0u);
	assert_int_equal(rd(GPE0_STS, 4), 1u << 31);
	assert_int_equal(rd(GPE0_EN, 4), 1 << 2);
}

static void test_timer(void **state)
{
	(void)state;
	uint32_t t0 = rd(PM_TMR, 4), t1 = t0;
	assert_true(t0 <= 0xFFFFFF);
	/* The counter moves at 3.58 MHz; wait for a change without depending on how long. */
	for (long i = 0; i < 100000000 && t1 == t0; i++)
		t1 = rd(PM_TMR, 4);
	assert_true(t1 != t0);
	assert_true(t1 <= 0xFFFFFF);
	assert_int_equal(rd(PM_TMR + 3, 1), 0);
	wr(PM_TMR, 4, 0); /* read-only */
	assert_int_equal(rec.sci_calls, 0);
}

static void test_bad_accesses(void **state)
{
	(void)state;
	assert_int_equal(rd(PM1_CNT + 2, 2), 0xFFFF);		 /* hole after PM1_CNT */
	assert_int_equal(rd(LAYOUT_PORT_ACPI_PM + 12, 1), 0xFF); /* past the block */
	assert_int_equal(rd(LAYOUT_PORT_ACPI_PM - 1, 1), 0xFF);
	assert_int_equal(rd(PM_TMR + 2, 4), 0xFFFFFFFF); /* crosses the end */
	assert_int_equal(rd(GPE0_EN + 2, 4), 0xFFFFFFFF);
	uint8_t b[3] = {0, 0, 0};
	acpi_pm_io(pm, PM1_STS, b, 3, false); /* odd size */
	assert_int_equal(b[0] & b[1] & b[2], 0xFF);
	b[0] = b[1] = b[2] = 0xFF;
	acpi_pm_io(pm, PM1_CNT, b, 3, true);
	assert_int_equal(rec.sleeps, 0);
	wr(PM1_EN, 2, 0xFFFF); /* only defined enable bits stick */
	assert_int_equal(rd(PM1_EN, 2) & ~0x4721u, 0);
	assert_int_equal(acpi_pm_create(NULL, NULL), -EINVAL);
}

static void *press_loop(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20000; i++) {
		acpi_pm_press_power_button(pm);
		acpi_pm_raise_gpe(pm, i % 32);
	}
	return NULL;
}

static void *clear_loop(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20000; i++) {
		wr(PM1_STS, 2, 1 << 8);
		wr(GPE0_STS, 4, 0xFFFFFFFF);
	}
	return NULL;
}

/* Racing raisers and clearers: the last SCI level reported must match the final registers,
 * because the level is recomputed and reported under the device's lock. */
static void test_concurrent_sci(void **state)
{
	(void)state;
	pthread_t a, b;
	wr(PM1_EN, 2, 1 << 8);
	wr(GPE0_EN, 4, 0xFFFFFFFF);
	assert_int_equal(pthread_create(&a, NULL, press_loop, NULL), 0);
	assert_int_equal(pthread_create(&b, NULL, clear_loop, NULL), 0);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	bool level = (rd(PM1_STS, 2) & (1 << 8)) || rd(GPE0_STS, 4);
	assert_int_equal(rec.sci, level);
	wr(PM1_STS, 2, 1 << 8);
	wr(GPE0_STS, 4, 0xFFFFFFFF);
	assert_false(rec.sci);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_sci_en_always_set, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sleep_s5, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_power_button, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_gpe, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_accesses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_sci, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
