/* The machine's vCPUs: one slot per APIC ID, each vCPU's state, and the threads that run them.
 *
 * cpu/ owns all of it; vmm/ asks by function only and learns of the guest's end requests through
 * the callback in struct cpu_env.  A slot, once it holds a vCPU, keeps it until cpus_destroy():
 * KVM cannot destroy a vCPU, so an unplugged vCPU's fd stays parked for a later re-plug.
 *
 * States of one slot (cpus_state()):
 *
 *   state     thread             KVM fd  present for the guest
 *   ABSENT    none               none    no   (no vCPU was ever made for this APIC ID)
 *   CREATED   not started yet    yes     yes
 *   RUNNING   in its loop        yes     yes  (in KVM_RUN, handling an exit, or holding, below)
 *   PAUSED    waiting for resume yes     yes
 *   PARKED    joined             yes     no   (unplugged; power-on state again on re-plug)
 *   STOPPED   joined             yes     -    (teardown: final)
 *
 * Transitions, and the only calls that make them:
 *
 *   from                     to       call            when
 *   ABSENT                   CREATED  cpus_create()   the CPUs present at power-on
 *   CREATED                  RUNNING  cpus_start()    (PAUSED instead if a pause came first)
 *   RUNNING                  PAUSED   cpus_pause()    the thread parks itself at its next exit
 *   PAUSED                   RUNNING  cpus_resume()
 *   CREATED, PAUSED          same     cpus_reset()    power-on state again (reboot)
 *   ABSENT, PARKED           RUNNING  cpus_plug()     started and not paused
 *   RUNNING                  PARKED   cpus_unplug()   not CPU 0; started and not paused
 *   CREATED, RUNNING,
 *   PAUSED, PARKED           STOPPED  cpus_stop()
 *
 * Anything else is refused and changes nothing: -EINVAL (ID out of range, wrong state for the
 * call), -EEXIST (plug of a present CPU), -ENOENT (unplug of an absent one), -EPERM (unplug of
 * CPU 0), -EBUSY (the machine or that slot is in another transition: paused, pausing, plugging),
 * -ESHUTDOWN (stopping or stopped), -EALREADY (already in the asked state), -EDEADLK (a call that
 * waits for the vCPUs, made from a vCPU thread: it would wait for itself).  The calls may come
 * from any non-vCPU threads at once; none holds the lock while it waits for a thread.  A device
 * handler (running on a vCPU thread) must not wait for a thread that may be in cpus_pause(),
 * cpus_stop() or cpus_unplug(): that thread waits for the vCPU in turn.
 *
 * A reboot in the same process: cpus_pause(), reset the devices and load the kernel again,
 * cpus_reset(&boot), cpus_resume().  The in-kernel PIC, IOAPIC and PIT are the VM's, not cpu/'s.
 *
 * Holding: after an exit that ends the machine (power-off, reset, triple fault, a failed entry,
 * an unknown exit, a KVM_RUN error) the vCPU reports it through env->end and does not enter
 * KVM_RUN again until cpus_reset(); it still pauses and stops like the others, so the VMM may
 * pause, reset and resume the machine (in-process reboot) or stop it.
 */
#ifndef MINIVMM_CPU_CPUS_H
#define MINIVMM_CPU_CPUS_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

struct io_bus;
struct vcpu_ops;

/* APIC IDs 0..CPUS_MAX-1 (a present mask is one 64-bit word). */
#define CPUS_MAX 64

enum vcpu_state {
	VCPU_ABSENT = 0,
	VCPU_CREATED,
	VCPU_RUNNING,
	VCPU_PAUSED,
	VCPU_PARKED,
	VCPU_STOPPED,
};

/* Why a vCPU asks for the machine to end. */
enum cpu_end {
	CPU_END_POWEROFF,     /* KVM_SYSTEM_EVENT_SHUTDOWN */
	CPU_END_RESET,	      /* KVM_SYSTEM_EVENT_RESET */
	CPU_END_TRIPLE_FAULT, /* KVM_EXIT_SHUTDOWN: a PC resets */
	CPU_END_ERROR,	      /* failed entry, internal error, unknown exit, KVM_RUN error */
};

/* What the vCPUs need from the VM, given once at creation (copied). */
struct cpu_env {
	int kvm_fd, vm_fd;
	int run_size;			/* mmap size of a kvm_run */
	const struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID; fixed up per vCPU */
	unsigned max_cpus;		/* possible CPUs: APIC IDs 0..max_cpus-1, CPUID topology */
	struct io_bus *pio, *mmio;	/* where port I/O and MMIO exits go */
	/* A vCPU asks for the machine to end (called on that vCPU's thread, then it holds). */
	void (*end)(void *opaque, unsigned cpu, enum cpu_end why);
	void *opaque;
	const struct vcpu_ops *ops; /* NULL: KVM (cpu/vcpu.h); tests put a fake here */
	/* Cap through the process's delegated cgroup v2 where it can (cpu/cpu_cgroup.h), else in
	 * the VMM (cpu/cpu_cap.h). */
	bool cap_cgroup;
};

/* How the boot CPU starts after a reset, chosen by the VMM's boot code (e.g. the bzImage 64-bit
 * entry): cpu/ first puts every register in its power-on state, then applies these on CPU 0.
 * Without one, CPU 0 starts at the reset vector F000:FFF0 as with firmware. */
struct cpu_boot {
	struct kvm_regs regs;			       /* all of them */
	struct kvm_segment cs, ds, es, fs, gs, ss, tr; /* LDTR keeps its power-on value */
	struct kvm_dtable gdt, idt;
	uint64_t cr0, cr3, cr4, efer;
};

struct cpus;

/* Create the vCPUs whose bit is set in `present` (bit 0 must be) in their power-on state:
 * CPU 0 at the reset vector, the others waiting for INIT/SIPI.  -EINVAL for a bad env or mask. */
int cpus_create(const struct cpu_env *env, uint64_t present, struct cpus **out);
/* Stop (if needed) and free everything, closing the vCPU fds.  NULL is fine. */
void cpus_destroy(struct cpus *c);

/* Start the threads of the CREATED vCPUs.  -EALREADY when started; on a thread creation
 * failure the ones started keep running (cpus_stop() ends them). */
int cpus_start(struct cpus *c);
/* Every present vCPU out of KVM_RUN and waiting; returns when all are (0).  -EALREADY when
 * already paused, also to a caller that found a pause under way: it returns when that one is
 * done, so either caller may then rely on the machine being paused. */
int cpus_pause(struct cpus *c);
/* Let the paused vCPUs run again.  -EALREADY when not paused, -EBUSY while a pause is under way. */
int cpus_resume(struct cpus *c);
/* Stop every vCPU thread and join it (teardown).  -EALREADY the second time. Not from a vCPU. */
int cpus_stop(struct cpus *c);
/* Power-on state for every present vCPU: registers, segment and control registers, FPU/XSAVE
 * and XCR0, MSRs (syscall, PAT, MTRRs, KVM's paravirtual ones off), debug registers, pending
 * events, LAPIC and MP state; CPU 0 then gets `boot` (NULL: the reset vector), the others wait
 * for INIT/SIPI.  Only when paused or not yet started (-EBUSY otherwise); clears holding. */
int cpus_reset(struct cpus *c, const struct cpu_boot *boot);

/* Hot-plug primitives (ACPI notification is the VMM's).  Plug creates the vCPU for an ABSENT
 * slot or re-uses a PARKED one, in the power-on state of an AP, and starts its thread. */
int cpus_plug(struct cpus *c, unsigned id);
/* Stop and join the vCPU's thread, keeping its fd (PARKED). */
int cpus_unplug(struct cpus *c, unsigned id);

/* The slot's state, or -EINVAL for an ID >= CPUS_MAX. */
int cpus_state(struct cpus *c, unsigned id);
/* CPUs the guest has: CREATED, RUNNING or PAUSED. */
unsigned cpus_count_present(struct cpus *c);
/* The same as a mask (bit = APIC ID). */
uint64_t cpus_present_mask(struct cpus *c);
unsigned cpus_max(const struct cpus *c);
/* True between a completed cpus_pause() and cpus_resume(). */
bool cpus_paused(struct cpus *c);
const char *vcpu_state_name(enum vcpu_state s);

/* Execution cap (cpu/cpu_cap.h): every vCPU busy at most `percent` (1..100) of each 100 ms
 * period, halted time not counted; 100 lifts it.  Takes effect within a period; -EINVAL out of
 * range, -ESHUTDOWN when stopping, or a thread creation error. */
int cpus_set_cap(struct cpus *c, unsigned percent);
unsigned cpus_cap(struct cpus *c);
/* The cgroup directory the cap works through (env->cap_cgroup), NULL when in the VMM. */
const char *cpus_cap_cgroup(struct cpus *c);
/* How often vCPU `id` slept for the cap (tests, info). */
unsigned long cpus_cap_throttles(struct cpus *c, unsigned id);

#endif
