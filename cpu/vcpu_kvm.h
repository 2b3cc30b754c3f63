/* The KVM backend's private state of a vCPU (cpu/ only: vcpu_kvm.c, vcpu_reset.c). */
#ifndef MINIVMM_CPU_VCPU_KVM_H
#define MINIVMM_CPU_VCPU_KVM_H

#include <stdbool.h>
#include <linux/kvm.h>

struct vcpu;
struct cpu_boot;

struct vcpu_kvm {
	struct kvm_lapic_state lapic; /* as KVM made it: the LAPIC's power-on registers */
	bool xsave, xcrs, debugregs, events;
};

/* Power-on architectural state (cpus_reset() in cpus.h). */
int vcpu_kvm_reset(struct vcpu *v, const struct cpu_boot *boot);

#endif
