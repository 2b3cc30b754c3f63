/* A vCPU backend without KVM for the state-machine tests (cpu/vcpu.h): each fake vCPU "runs" by
 * returning a port write exit (port FAKE_PORT_WORK, one byte: its ID) to the test's bus, returns
 * a scripted exit once when told, or blocks until kicked as a halted vCPU does in KVM_RUN.  It
 * counts creates, resets and destroys, reports the time it blocked (the halted op), and records
 * every run attempted while the machine is paused (which must never happen).
 */
#ifndef MINIVMM_TESTS_LIB_FAKE_VCPU_H
#define MINIVMM_TESTS_LIB_FAKE_VCPU_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cpu/cpus.h"
#include "devices/io_bus.h"

#define FAKE_PORT_WORK 0x80

struct fake_vcpus {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* broadcast on every change below */
	struct cpus *cpus;   /* set by the test after cpus_create(), for the paused check */
	struct io_bus pio, mmio;
	unsigned long work[CPUS_MAX]; /* port writes seen on the bus */
	unsigned creates[CPUS_MAX], resets[CPUS_MAX], destroys[CPUS_MAX];
	const struct cpu_boot *boot[CPUS_MAX]; /* given to the last reset */
	uint16_t port[CPUS_MAX];	       /* where a run writes (0: FAKE_PORT_WORK) */
	bool block[CPUS_MAX];		       /* run blocks until kicked */
	unsigned blocked[CPUS_MAX];	       /* runs that blocked so far */
	uint32_t exit_once[CPUS_MAX];	       /* exit reason for the next run (0: none) */
	uint32_t event_once[CPUS_MAX];	       /* its system event type, if any */
	int fail_once[CPUS_MAX];	       /* -errno for the next run (0: none) */
	unsigned ends[CPUS_MAX];
	enum cpu_end last_end[CPUS_MAX];
	unsigned violations; /* runs while cpus_paused() */
	/* The halted op (as KVM's stats fd) answers only when halt_stats is set: the time blocked
	 * runs spent, added when each block ends, and whether one is blocked now. */
	bool halt_stats;
	int64_t halted_ns[CPUS_MAX], block_start[CPUS_MAX];
	bool blocking[CPUS_MAX];
};

extern struct fake_vcpus fake;
extern const struct vcpu_ops fake_vcpu_ops;

/* Reset `fake`, set up its buses (the work port registered) and an env using them and the fake
 * backend, with `max` possible CPUs. */
void fake_setup(struct cpu_env *env, unsigned max);
void fake_teardown(void);
/* Wait (bounded: 10 s, then fail the test) until pred(arg) holds, checking under fake.lock after
 * every change. */
void fake_wait(bool (*pred)(void *arg), void *arg);
/* Wait until vCPU `id` did more work than `than`, or blocked more often than `than`. */
void fake_wait_work(unsigned id, unsigned long than);
void fake_wait_blocked(unsigned id, unsigned than);
void fake_wait_end(unsigned id, unsigned than);
unsigned long fake_work(unsigned id);

#endif
