/* One virtual CPU: its KVM fd, its kvm_run page and the thread that runs it.
 *
 * vcpu_create() prepares the CPU as a freshly reset x86 would be after firmware: CPUID with its
 * APIC ID, the MSRs Linux expects, LAPIC LINT0=ExtINT and LINT1=NMI, and the MP state (the boot
 * CPU runnable, the others waiting for the guest's INIT/SIPI).  The thread runs KVM_RUN and
 * dispatches exits to the VM's buses; vcpu_kick() gets it out of KVM_RUN (signal + immediate_exit).
 */
#ifndef MINIVMM_CPU_VCPU_H
#define MINIVMM_CPU_VCPU_H

#include <pthread.h>
#include <stdbool.h>

struct vm;
struct kvm_run;

struct vcpu {
	struct vm *vm;
	unsigned id; /* APIC ID and KVM vCPU id */
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	bool stop_requested; /* under vm->lock */
	bool parked;	     /* under vm->lock: waiting in the pause */
};

/* Signal used to kick vCPU threads out of KVM_RUN; install once before starting threads. */
int vcpu_signal_setup(void);
int vcpu_create(struct vm *vm, unsigned id, unsigned ncpus, struct vcpu **out);
int vcpu_start(struct vcpu *v);
/* Make the thread leave KVM_RUN soon. Caller holds vm->lock. */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);

#endif
