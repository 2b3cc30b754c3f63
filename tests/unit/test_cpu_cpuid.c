/* The TSC-deadline timer offered in CPUID (cpu/cpuid.h): bit 24 of leaf 1 ECX set, every other
 * bit and leaf left as KVM gave them, and still there after the per-vCPU fixup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "cpu/cpuid.h"

static void test_tsc_deadline(void **unused)
{
	(void)unused;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 3 * sizeof(c->entries[0]));
	assert_non_null(c);
	c->nent = 3;
	c->entries[0] = (struct kvm_cpuid_entry2){.function = 0, .eax = 0xd};
	c->entries[1] = (struct kvm_cpuid_entry2){.function = 1, .ecx = 0x00200001, .edx = 0x10};
	c->entries[2] = (struct kvm_cpuid_entry2){.function = 7, .ecx = 0};
	cpuid_offer_tsc_deadline(c);
	assert_int_equal(c->entries[1].ecx, 0x01200001); /* x2APIC and SSE3 kept, deadline added */
	assert_int_equal(c->entries[1].edx, 0x10);
	assert_int_equal(c->entries[0].eax, 0xd);
	assert_int_equal(c->entries[2].ecx, 0); /* bit 24 of another leaf untouched */
	cpuid_fixup(c, 1, 2);
	assert_true(c->entries[1].ecx & 1u << 24);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_tsc_deadline)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
