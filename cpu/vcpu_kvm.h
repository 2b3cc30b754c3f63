/* The KVM backend's private state of a vCPU (cpu/ only: vcpu_kvm.c, vcpu_reset.c). */
#ifndef MINIVMM_CPU_VCPU_KVM_H
#define MINIVMM_CPU_VCPU_KVM_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>

struct vcpu;
struct cpu_boot;

struct vcpu_kvm {
	struct kvm_lapic_state lapic; /* as KVM made it: the LAPIC's power-on registers */
	bool xsave, xcrs, debugregs, events;
	int stats_fd;	       /* KVM_GET_STATS_FD, -1 without */
	int64_t halt_wait_off; /* offset of halt_wait_ns in it, -1 without */
};

/* Power-on architectural state (cpus_reset() in cpus.h). */
int vcpu_kvm_reset(struct vcpu *v, const struct cpu_boot *boot);

/* vcpu_kvm_stats.c: find halt_wait_ns among the vCPU's binary stats (none: stats_fd -1). */
void vcpu_kvm_stats_open(struct vcpu *v);
int64_t vcpu_kvm_halted_ns(struct vcpu *v);

#endif
