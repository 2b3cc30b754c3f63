/* PCI hot-plug register block, driven as the DSDT's PCNT and _EJ0 do, and by a hostile guest. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devices/pci_hotplug.h"
#include "memory/layout.h"

#define BASE LAYOUT_PORT_PCI_HOTPLUG
#define SLOTS 0xFFFFFF00u /* 8..31 hot-pluggable, as with seven boot devices */

static unsigned notifies, ejects, last_eject;
static struct pci_hotplug *hp;

static void rec_notify(void *o)
{
	(void)o;
	notifies++;
}

static void rec_eject(void *o, unsigned slot)
{
	(void)o;
	ejects++;
	last_eject = slot;
}

static int setup(void **state)
{
	(void)state;
	struct pci_hotplug_ops ops = {rec_notify, rec_eject, NULL};
	notifies = ejects = last_eject = 0;
	return pci_hotplug_create(SLOTS, &ops, &hp);
}

static int teardown(void **state)
{
	(void)state;
	pci_hotplug_destroy(hp);
	return 0;
}

static uint32_t rd(unsigned off, unsigned len)
{
	uint8_t b[8] = {0};
	pci_hotplug_io(hp, (uint16_t)(BASE + off), b, len, false);
	uint32_t v = 0;
	memcpy(&v, b, len > 4 ? 4 : len);
	return v;
}

static void wr(unsigned off, unsigned len, uint32_t v)
{
	uint8_t b[8] = {0};
	memcpy(b, &v, len > 4 ? 4 : len);
	pci_hotplug_io(hp, (uint16_t)(BASE + off), b, len, true);
}

static void test_create_checks(void **state)
{
	(void)state;
	struct pci_hotplug_ops ops = {rec_notify, rec_eject, NULL};
	struct pci_hotplug *x;
	assert_int_equal(pci_hotplug_create(1, &ops, &x), -EINVAL); /* the host bridge */
	assert_int_equal(pci_hotplug_create(2, NULL, &x), -EINVAL);
	assert_int_equal(rd(12, 4), SLOTS);
	assert_int_equal(pci_hotplug_slots(hp), SLOTS);
}

static void test_plug_cycle(void **state)
{
	(void)state;
	int s = pci_hotplug_reserve(hp);
	assert_int_equal(s, 8);
	assert_int_equal(pci_hotplug_reserve(hp), 9); /* a reserved slot is not given twice */
	assert_int_equal(pci_hotplug_release(hp, 9), 0);
	assert_int_equal(notifies, 0);
	assert_int_equal(pci_hotplug_insert(hp, 8), 0);
	assert_int_equal(notifies, 1);
	assert_int_equal(rd(0, 4), 1u << 8);
	assert_int_equal(rd(0, 4), 0);			      /* cleared by the read */
	assert_int_equal(pci_hotplug_insert(hp, 8), -EINVAL); /* not reserved any more */
	assert_int_equal(pci_hotplug_remove(hp, 8), 0);
	assert_int_equal(notifies, 2);
	assert_int_equal(rd(4, 4), 1u << 8);
	assert_int_equal(rd(4, 4), 0);
	wr(8, 4, 1u << 8); /* _EJ0 */
	assert_int_equal(ejects, 1);
	assert_int_equal(last_eject, 8);
	assert_true(pci_hotplug_ejected(hp, 8));
	assert_int_equal(pci_hotplug_remove(hp, 8), -EINPROGRESS);
	assert_int_equal(pci_hotplug_reserve(hp), 9); /* 8 waits for its release */
	assert_int_equal(pci_hotplug_release(hp, 8), 0);
	assert_false(pci_hotplug_ejected(hp, 8));
	assert_int_equal(pci_hotplug_reserve(hp), 8);
	assert_int_equal(pci_hotplug_release(hp, 8), 0);
	assert_int_equal(pci_hotplug_release(hp, 8), -EINVAL);
}

static void test_refusals(void **state)
{
	(void)state;
	assert_int_equal(pci_hotplug_remove(hp, 3), -EPERM);  /* a boot slot */
	assert_int_equal(pci_hotplug_remove(hp, 0), -EPERM);  /* the host bridge */
	assert_int_equal(pci_hotplug_remove(hp, 40), -EPERM); /* no such slot */
	assert_int_equal(pci_hotplug_remove(hp, 12), -ENOENT);
	assert_int_equal(pci_hotplug_insert(hp, 12), -EINVAL);
	assert_int_equal(pci_hotplug_insert(hp, 99), -EINVAL);
	assert_int_equal(pci_hotplug_release(hp, 99), -EINVAL);
	assert_int_equal(notifies, 0);
	for (int i = 8; i < 32; i++)
		assert_int_equal(pci_hotplug_reserve(hp), i);
	assert_int_equal(pci_hotplug_reserve(hp), -ENOSPC);
}

/* A guest that writes anything anywhere ejects nothing it should not and never crashes. */
static void test_hostile(void **state)
{
	(void)state;
	assert_int_equal(pci_hotplug_reserve(hp), 8);
	assert_int_equal(pci_hotplug_insert(hp, 8), 0);
	wr(8, 4, 0xFFFFFFFFu & ~(1u << 8)); /* every slot but the plugged one: boot, empty */
	assert_int_equal(ejects, 0);
	wr(8, 1, 0xFF); /* wrong sizes and offsets: ignored */
	wr(8, 2, 0xFFFF);
	wr(9, 4, 0xFFFFFFFF);
	wr(16, 4, 0xFFFFFFFF);
	wr(0xFFFF, 4, 0xFFFFFFFF);
	wr(0, 4, 0); /* the event words are read-only */
	wr(12, 4, 0xFFFFFFFF);
	assert_int_equal(ejects, 0);
	assert_int_equal(rd(12, 4), SLOTS);
	assert_int_equal(rd(1, 1), 0xFF);
	assert_int_equal(rd(2, 2), 0xFFFF);
	assert_int_equal(rd(20, 4), 0xFFFFFFFF);
	assert_int_equal(rd(8, 4), 0);
	wr(8, 4, 0xFFFFFFFF); /* ejects only the plugged slot, once */
	wr(8, 4, 0xFFFFFFFF);
	assert_int_equal(ejects, 1);
	assert_int_equal(last_eject, 8);
	assert_int_equal(rd(0, 4), 0); /* the eject took the pending insert event with it */
}

static void test_reset_drops_events(void **state)
{
	(void)state;
	assert_int_equal(pci_hotplug_reserve(hp), 8);
	assert_int_equal(pci_hotplug_insert(hp, 8), 0);
	assert_int_equal(pci_hotplug_remove(hp, 8), 0);
	pci_hotplug_reset(hp);
	assert_int_equal(rd(0, 4), 0);
	assert_int_equal(rd(4, 4), 0);
	/* still plugged: the guest can still eject it, the VMM ask again */
	assert_int_equal(pci_hotplug_remove(hp, 8), 0);
	wr(8, 4, 1u << 8);
	assert_int_equal(ejects, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_create_checks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plug_cycle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset_drops_events, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
