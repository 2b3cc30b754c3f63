/* One vCPU as its backend sees it, the backend table, and the exit dispatch.
 *
 * cpus.c (cpus.h) owns the vCPUs' states and threads and calls a backend to create, reset, run
 * and destroy each one: vcpu_kvm_ops on a real machine, a fake in the unit tests, so that the
 * state machine is tested without /dev/kvm.  Backends and tests include this file; vmm/ does not.
 */
#ifndef MINIVMM_CPU_VCPU_H
#define MINIVMM_CPU_VCPU_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu/cpus.h"

struct kvm_run;

struct vcpu {
	unsigned id; /* APIC ID and KVM vCPU id */
	const struct cpu_env *env;
	int fd;		     /* -1 until created */
	struct kvm_run *run; /* the page KVM_RUN reports exits in; immediate_exit is the kick */
	void *priv;	     /* the backend's */
};

struct vcpu_ops {
	/* Make the vCPU behind v->id and v->env: fd, run page, CPUID.  May fail half-way: destroy
	 * then undoes what was done. */
	int (*create)(struct vcpu *v);
	/* Power-on architectural state (cpus.h, cpus_reset()); `boot` only for CPU 0, may be NULL.
	 */
	int (*reset)(struct vcpu *v, const struct cpu_boot *boot);
	/* One KVM_RUN: 0 with an exit in v->run, -EINTR when kicked (a signal or
	 * run->immediate_exit set before the call), another -errno when the vCPU cannot run. */
	int (*run)(struct vcpu *v);
	void (*destroy)(struct vcpu *v);
	/* Optional (NULL, or <0 when unknown): the ns the vCPU spent halted so far and whether it
	 * is halted now, for the execution cap (cpu_cap.h).  Any thread may call it. */
	int (*halted)(struct vcpu *v, int64_t *ns, bool *blocking);
};

extern const struct vcpu_ops vcpu_kvm_ops;

/* Dispatch the exit in v->run to env->pio/mmio.  Returns true to run on, false with *why when
 * the exit ends the machine. */
bool vcpu_handle_exit(struct vcpu *v, enum cpu_end *why);

#endif
