/* The CPUID a vCPU sees: what KVM supports, with this vCPU's APIC ID and the machine's topology
 * (all vCPUs are cores of one socket), the hypervisor bit and KVM's signature leaves so the guest
 * uses kvm-clock and paravirtual features. */
#ifndef MINIVMM_CPU_CPUID_H
#define MINIVMM_CPU_CPUID_H

#include <linux/kvm.h>

/* KVM_GET_SUPPORTED_CPUID into a new buffer (free() it). */
int cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **out);
/* Rewrite `c` in place for vCPU `apic_id` of `ncpus` (pure: unit-tested). */
void cpuid_fixup(struct kvm_cpuid2 *c, unsigned apic_id, unsigned ncpus);
/* The entry for leaf fn, subleaf index, or NULL. */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, __u32 fn, __u32 index);
/* Offer no XSAVE (the guest falls back to FXSAVE). */
void cpuid_hide_xsave(struct kvm_cpuid2 *c);

#endif
