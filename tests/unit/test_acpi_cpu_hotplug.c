/* CPU hot-plug register block, driven with the same register sequences as the DSDT's methods
 * (CSTA, CSCN, CEJT, COST in devices/acpi_cpus_aml.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devices/acpi_cpu_hotplug.h"
#include "memory/layout.h"

#define BASE LAYOUT_PORT_CPU_HOTPLUG

struct recorder {
	unsigned notifies, ejects, osts;
	unsigned last_eject, ost_cpu;
	uint32_t ost_event, ost_status;
	/* Notify (Cxxx, code) calls made by the simulated CSCN */
	unsigned notified[16][2];
	unsigned nnotified;
};

static struct recorder rec;
static struct acpi_cpu_hotplug *hp;

static void rec_notify(void *o)
{
	((struct recorder *)o)->notifies++;
}

static void rec_eject(void *o, unsigned cpu)
{
	struct recorder *r = o;
	r->ejects++;
	r->last_eject = cpu;
}

static void rec_ost(void *o, unsigned cpu, uint32_t ev, uint32_t st)
{
	struct recorder *r = o;
	r->osts++;
	r->ost_cpu = cpu;
	r->ost_event = ev;
	r->ost_status = st;
}

static int setup(void **state)
{
	(void)state;
	struct acpi_cpu_hotplug_ops ops = {rec_notify, rec_eject, rec_ost, &rec};
	memset(&rec, 0, sizeof(rec));
	return acpi_cpu_hotplug_create(4, 2, &ops, &hp);
}

static int teardown(void **state)
{
	(void)state;
	acpi_cpu_hotplug_destroy(hp);
	return 0;
}

static uint32_t rd(unsigned off, unsigned len)
{
	uint8_t b[4] = {0};
	acpi_cpu_hotplug_io(hp, BASE + off, b, len, false);
	return b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;
}

static void wr(unsigned off, unsigned len, uint32_t v)
{
	uint8_t b[4] = {v, v >> 8, v >> 16, v >> 24};
	acpi_cpu_hotplug_io(hp, BASE + off, b, len, true);
}

/* The AML methods, as register accesses (fields: CSEL dword +0, flags byte +4, CCMD byte +5,
 * CDAT dword +8). */
static unsigned csta(unsigned sel)
{
	wr(0, 4, sel);
	return (rd(4, 1) & 1) ? 0x0F : 0;
}

static void cejt(unsigned sel)
{
	wr(0, 4, sel);
	wr(4, 1, 0x08);
}

static void cost(unsigned sel, uint32_t ev, uint32_t st)
{
	wr(0, 4, sel);
	wr(5, 1, 1);
	wr(8, 4, ev);
	wr(5, 1, 2);
	wr(8, 4, st);
}

static void cscn(void)
{
	for (unsigned pass = 0; pass < 8; pass++) {
		wr(5, 1, 0);
		uint32_t flags = rd(4, 1);
		unsigned code;
		if (flags & 0x02)
			code = 1;
		else if (flags & 0x04)
			code = 3;
		else
			return;
		assert_true(rec.nnotified < 16);
		rec.notified[rec.nnotified][0] = rd(8, 4);
		rec.notified[rec.nnotified][1] = code;
		rec.nnotified++;
		wr(4, 1, code == 1 ? 0x02 : 0x04);
	}
	fail_msg("CSCN did not finish");
}

static void test_boot_state(void **state)
{
	(void)state;
	assert_int_equal(csta(0), 0x0F);
	assert_int_equal(csta(1), 0x0F);
	assert_int_equal(csta(2), 0);
	assert_int_equal(csta(3), 0);
	cscn();
	assert_int_equal(rec.nnotified, 0);
	assert_int_equal(rec.notifies, 0);
}

static void test_insert(void **state)
{
	(void)state;
	assert_int_equal(acpi_cpu_hotplug_insert(hp, 3), 0);
	assert_int_equal(rec.notifies, 1);
	assert_int_equal(acpi_cpu_hotplug_insert(hp, 2), 0);
	cscn();
	assert_int_equal(rec.nnotified, 2);
	/* Both found, each once, with "device check". */
	assert_int_equal(rec.notified[0][0] + rec.notified[1][0], 5);
	assert_int_equal(rec.notified[0][1], 1);
	assert_int_equal(rec.notified[1][1], 1);
	assert_int_equal(csta(2), 0x0F);
	assert_int_equal(csta(3), 0x0F);
	cscn();
	assert_int_equal(rec.nnotified, 2); /* events were cleared */
	assert_int_equal(acpi_cpu_hotplug_insert(hp, 3), -EEXIST);
	assert_int_equal(acpi_cpu_hotplug_insert(hp, 4), -EINVAL);
	/* Command 3 returns the APIC ID of the selected CPU. */
	wr(0, 4, 3);
	wr(5, 1, 3);
	assert_int_equal(rd(8, 4), 3);
	assert_int_equal(rd(0, 4), 0);
}

static void test_remove_and_eject(void **state)
{
	(void)state;
	assert_int_equal(acpi_cpu_hotplug_remove(hp, 1), 0);
	assert_int_equal(rec.notifies, 1);
	cscn();
	assert_int_equal(rec.nnotified, 1);
	assert_int_equal(rec.notified[0][0], 1);
	assert_int_equal(rec.notified[0][1], 3); /* eject request */
	cost(1, 3, 0x80);			 /* Linux: "ejection in progress" */
	assert_int_equal(rec.osts, 1);
	assert_int_equal(rec.ost_status, 0x80);
	cejt(1);
	assert_int_equal(rec.ejects, 1);
	assert_int_equal(rec.last_eject, 1);
	assert_int_equal(csta(1), 0);
	assert_false(acpi_cpu_hotplug_enabled(hp, 1));
	cost(1, 3, 0);
	assert_int_equal(rec.osts, 2);
	assert_int_equal(rec.ost_cpu, 1);
	assert_int_equal(rec.ost_event, 3);
	assert_int_equal(rec.ost_status, 0);
	/* Plugging it back works. */
	assert_int_equal(acpi_cpu_hotplug_insert(hp, 1), 0);
	assert_int_equal(csta(1), 0x0F);
}

static void test_refusals(void **state)
{
	(void)state;
	assert_int_equal(acpi_cpu_hotplug_remove(hp, 0), -EPERM);
	assert_int_equal(acpi_cpu_hotplug_remove(hp, 2), -ENOENT);
	assert_int_equal(acpi_cpu_hotplug_remove(hp, 9), -EINVAL);
	/* The guest may not eject CPU 0, nor a CPU the VMM did not ask for. */
	cejt(0);
	cejt(1);
	assert_int_equal(rec.ejects, 0);
	assert_int_equal(csta(0), 0x0F);
	assert_int_equal(csta(1), 0x0F);
	assert_int_equal(rec.notifies, 0);
}

static void test_bad_selector_and_accesses(void **state)
{
	(void)state;
	wr(0, 4, 4);
	assert_int_equal(rd(4, 1), 0);
	wr(4, 1, 0xFF);
	wr(5, 1, 3);
	assert_int_equal(rd(8, 4), 0);
	wr(5, 1, 2);
	wr(8, 4, 1);
	assert_int_equal(rec.ejects + rec.osts, 0);
	wr(0, 4, 0xFFFFFFFF);
	assert_int_equal(rd(4, 1), 0);
	/* Command 0 from an invalid selector still finds an event. */
	assert_int_equal(acpi_cpu_hotplug_insert(hp, 2), 0);
	wr(5, 1, 0);
	assert_int_equal(rd(8, 4), 2);
	/* Wrong sizes and offsets read as all-ones and change nothing. */
	assert_int_equal(rd(0, 2), 0xFFFF);
	assert_int_equal(rd(4, 4), 0xFFFFFFFF);
	assert_int_equal(rd(6, 1), 0xFF);
	assert_int_equal(rd(12, 1), 0xFF);
	wr(0, 1, 1);
	assert_int_equal(rd(8, 4), 2);
	uint8_t b[8];
	acpi_cpu_hotplug_io(hp, BASE - 1, b, 1, false);
	assert_int_equal(b[0], 0xFF);
	struct acpi_cpu_hotplug *x;
	struct acpi_cpu_hotplug_ops ops = {0};
	assert_int_equal(acpi_cpu_hotplug_create(2, 3, &ops, &x), -EINVAL);
	assert_int_equal(acpi_cpu_hotplug_create(LAYOUT_MAX_VCPUS + 1, 1, &ops, &x), -EINVAL);
	assert_int_equal(acpi_cpu_hotplug_create(1, 0, &ops, &x), -EINVAL);
}

/* --plugged-cpus 0,3 of 4: the mask decides which start enabled; bad masks are refused. */
static void test_create_mask(void **state)
{
	(void)state;
	struct acpi_cpu_hotplug_ops ops = {rec_notify, rec_eject, rec_ost, &rec};
	struct acpi_cpu_hotplug *m;
	assert_int_equal(acpi_cpu_hotplug_create_mask(4, 0x9, &ops, &m), 0);
	assert_true(acpi_cpu_hotplug_enabled(m, 0));
	assert_false(acpi_cpu_hotplug_enabled(m, 1));
	assert_false(acpi_cpu_hotplug_enabled(m, 2));
	assert_true(acpi_cpu_hotplug_enabled(m, 3));
	assert_false(acpi_cpu_hotplug_enabled(m, 4));
	acpi_cpu_hotplug_destroy(m);
	assert_int_equal(acpi_cpu_hotplug_create_mask(4, 0x8, &ops, &m), -EINVAL);  /* no CPU 0 */
	assert_int_equal(acpi_cpu_hotplug_create_mask(4, 0x11, &ops, &m), -EINVAL); /* past 4 */
	assert_int_equal(acpi_cpu_hotplug_create_mask(0, 0x1, &ops, &m), -EINVAL);
	assert_int_equal(acpi_cpu_hotplug_create_mask(LAYOUT_MAX_VCPUS + 1, 1, &ops, &m), -EINVAL);
	assert_int_equal(acpi_cpu_hotplug_create_mask(64, ~0ULL, &ops, &m), 0);
	assert_true(acpi_cpu_hotplug_enabled(m, 63));
	acpi_cpu_hotplug_destroy(m);
}

/* A reboot drops pending events (a remove the guest never acted on cannot be ejected later) and
 * keeps the plugged CPUs. */
static void test_reset(void **state)
{
	(void)state;
	assert_int_equal(acpi_cpu_hotplug_insert(hp, 2), 0);
	assert_int_equal(acpi_cpu_hotplug_remove(hp, 1), 0);
	wr(0, 4, 1);
	acpi_cpu_hotplug_reset(hp);
	assert_int_equal(rd(8, 4), 0);
	wr(0, 4, 2);
	assert_int_equal(rd(4, 1), 0x01); /* enabled, no insert event */
	wr(0, 4, 1);
	assert_int_equal(rd(4, 1), 0x01); /* enabled, no remove event */
	cejt(1);
	assert_int_equal(rec.ejects, 0); /* the removal was not asked any more */
	assert_true(acpi_cpu_hotplug_enabled(hp, 1));
}

/* A guest writing every value to every register, in every width, at every offset of the block
 * and around it: no callback for a CPU it was not asked to release, no crash, and the VMM's
 * state (CPU 0 present, CPU 1 present) intact. */
static void test_hostile_sweep(void **state)
{
	(void)state;
	static const uint32_t values[] = {
	    0,	    1,	     2,		 3,	     4,		 8,  0x0F, 0xFF, 0x100,
	    0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 63, 64,   65};
	for (unsigned sel = 0; sel < sizeof(values) / sizeof(values[0]); sel++) {
		for (int off = -4; off < ACPI_CPU_HOTPLUG_LEN + 4; off++) {
			for (unsigned len = 1; len <= 4; len++) {
				for (unsigned v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
					uint8_t b[4] = {values[v], values[v] >> 8, values[v] >> 16,
							values[v] >> 24};
					wr(0, 4, values[sel]);
					acpi_cpu_hotplug_io(hp, BASE + off, b, len, true);
					acpi_cpu_hotplug_io(hp, BASE + off, b, len, false);
				}
			}
		}
	}
	assert_int_equal(rec.ejects, 0);
	assert_true(acpi_cpu_hotplug_enabled(hp, 0));
	assert_true(acpi_cpu_hotplug_enabled(hp, 1));
	/* _OST writes with any selector report only CPUs that exist. */
	assert_true(rec.osts == 0 || rec.ost_cpu < 4);
	/* NULL data and a NULL device are ignored. */
	acpi_cpu_hotplug_io(hp, BASE, NULL, 4, true);
	acpi_cpu_hotplug_io(NULL, BASE, (uint8_t[4]){0}, 4, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_boot_state, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_insert, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_remove_and_eject, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_selector_and_accesses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_mask, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_sweep, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
