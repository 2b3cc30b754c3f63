/* The CPUID a vCPU sees: what KVM supports, with this vCPU's APIC ID and the machine's topology
 * (all vCPUs are cores of one socket), the hypervisor bit and KVM's signature leaves so the guest
 * uses kvm-clock and paravirtual features. */
#ifndef MINIVMM_CPU_CPUID_H
#define MINIVMM_CPU_CPUID_H

#include <linux/kvm.h>

/* KVM_GET_SUPPORTED_CPUID into a new buffer (free() it). */
int cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **out);
/* Offer the LAPIC's TSC-deadline timer mode (CPUID 1 ECX bit 24), as QEMU does where KVM has
 * KVM_CAP_TSC_DEADLINE_TIMER: Linux before 6.10 leaves it out of KVM_GET_SUPPORTED_CPUID though
 * its in-kernel LAPIC emulates it.  The guest then arms its timer with one MSR write per event. */
void cpuid_offer_tsc_deadline(struct kvm_cpuid2 *c);
/* Rewrite `c` in place for vCPU `apic_id` of `ncpus` (pure: unit-tested). */
void cpuid_fixup(struct kvm_cpuid2 *c, unsigned apic_id, unsigned ncpus);

#endif
