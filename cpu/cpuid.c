/* CPUID preparation (see cpuid.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "cpu/cpuid.h"

#define MAX_ENTRIES_LIMIT 4096

int cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **out)
{
	for (unsigned n = 128; n <= MAX_ENTRIES_LIMIT; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return -ENOMEM;
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
				cpuid_offer_tsc_deadline(c); /* minivmm's LAPIC is always KVM's */
			*out = c;
			return 0;
		}
		int e = errno;
		free(c);
		if (e != E2BIG)
			return -e;
	}
	return -E2BIG;
}

void cpuid_offer_tsc_deadline(struct kvm_cpuid2 *c)
{
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == 1)
			c->entries[i].ecx |= 1u << 24;
}

/* Bits needed to number `n` things (0 for 1). */
static unsigned order(unsigned n)
{
	unsigned b = 0;
	while ((1u << b) < n)
		b++;
	return b;
}

static struct kvm_cpuid_entry2 *find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t index)
{
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == index)
			return &c->entries[i];
	return NULL;
}

#define XSTATE_LEGACY_SIZE 576 /* FXSAVE area + XSAVE header */

/* Offer only the XSAVE components whose CPU features are offered too: nested or emulated hosts
 * can report components without the feature, and Linux then warns that the sizes disagree. */
static void xsave_sanitize(struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *l1 = find(c, 1, 0), *l7 = find(c, 7, 0), *d0 = find(c, 0xD, 0);
	if (!l1 || !d0)
		return;
	uint64_t ok = 0x3; /* x87, SSE */
	if (l1->ecx & (1u << 28))
		ok |= 1u << 2; /* AVX */
	if (l7 && (l7->ebx & (1u << 14)))
		ok |= 3u << 3; /* MPX */
	if (l7 && (l7->ebx & (1u << 16)))
		ok |= 7u << 5; /* AVX-512 */
	if (l7 && (l7->ecx & (1u << 3)))
		ok |= 1u << 9; /* PKRU */
	uint64_t user = ((uint64_t)d0->edx << 32 | d0->eax) & ok;
	d0->eax = user;
	d0->edx = user >> 32;
	uint32_t max = XSTATE_LEGACY_SIZE;
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function != 0xD || e->index < 2 || e->index >= 63)
			continue;
		if (user >> e->index & 1) {
			if (e->ebx + e->eax > max)
				max = e->ebx + e->eax;
		} else if (!(e->ecx & 1)) { /* a user component not offered: hide it */
			e->eax = e->ebx = e->ecx = e->edx = 0;
		}
	}
	d0->ecx = max;
	d0->ebx = XSTATE_LEGACY_SIZE; /* for XCR0 at reset; KVM updates it as the guest sets XCR0 */
}

void cpuid_fixup(struct kvm_cpuid2 *c, unsigned apic_id, unsigned ncpus)
{
	xsave_sanitize(c);
	unsigned core_bits = order(ncpus);
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000FFFF) | (apic_id << 24) |
				 ((ncpus > 255 ? 255 : ncpus) << 16);
			e->ecx |= 1u << 31; /* running under a hypervisor */
			if (ncpus > 1)
				e->edx |= 1u << 28; /* HTT: the package has several logical CPUs */
			else
				e->edx &= ~(1u << 28);
			break;
		case 4: /* deterministic cache parameters: cores per package - 1 in EAX[31:26] */
			if ((e->eax & 0x1F) == 0)
				break;
			e->eax = (e->eax & 0x3FFF) | ((ncpus - 1) & 0x3F) << 26;
			break;
		case 0xB:
		case 0x1F: /* x2APIC topology: level 0 SMT (1 thread), level 1 core */
			e->edx = apic_id;
			if (e->index == 0) {
				e->eax = 0;
				e->ebx = 1;
				e->ecx = 1 << 8;
			} else if (e->index == 1) {
				e->eax = core_bits;
				e->ebx = ncpus;
				e->ecx = 2 << 8 | 1;
			} else {
				e->eax = 0;
				e->ebx = 0;
				e->ecx = e->index & 0xFF;
			}
			break;
		case 0x40000000:	     /* KVM signature: the guest then looks for kvm-clock */
			e->ebx = 0x4b4d564b; /* "KVMK" */
			e->ecx = 0x564b4d56; /* "VMKV" */
			e->edx = 0x0000004d; /* "M" */
			if (e->eax < 0x40000001)
				e->eax = 0x40000001;
			break;
		case 0x80000008: /* AMD: cores per package - 1, and APIC ID bits for the core */
			e->ecx = (e->ecx & ~0xF0FFu) | (core_bits << 12) | ((ncpus - 1) & 0xFF);
			break;
		case 0x8000001E: /* AMD topology extensions: extended APIC ID, one thread per core
				  */
			e->eax = apic_id;
			e->ebx = (e->ebx & ~0xFFFFu) | (apic_id & 0xFF);
			e->ecx = 0;
			break;
		default:
			break;
		}
	}
}
