/* The execution cap (--cpu-cap, VirtualBox's --cpuexecutioncap): each vCPU may be busy PERCENT of
 * every period.  Busy is the wall time the vCPU spends out of its checkpoint (running the guest
 * or handling its exits) less the time KVM says it was halted (vcpu_stats.h), so the guest gets
 * PERCENT of wall time whatever the host scheduler accounts to the thread; where KVM has no stats,
 * busy is the thread's CPU time (as VirtualBox counts it).  Either way a halted vCPU costs
 * nothing.  When a vCPU's budget is spent, cpus.c kicks it out of KVM_RUN and it sleeps until it
 * may run a budget again (cpu_cap_check).
 *
 * Inside cpu/ only: cpus.c keeps one window per vCPU and runs the timer below; vmm/ sets the cap
 * with cpus_set_cap() (cpus.h).
 */
#ifndef MINIVMM_CPU_CPU_CAP_H
#define MINIVMM_CPU_CPU_CAP_H

#include <stdbool.h>
#include <stdint.h>

#define CPU_CAP_PERIOD_NS 100000000LL /* 100 ms, as VirtualBox's EM time slice */
#define CPU_CAP_MIN_CHECK_NS 1000000LL
#define CPU_CAP_LATE_NS 300000000LL /* lateness tolerated: a wake-up this late loses nothing */

/* One vCPU's budget: a bucket of CPU time that fills at the cap's rate. */
struct cpu_cap_window {
	int64_t start;	    /* monotonic ns of the last look; 0: none yet */
	int64_t busy_start; /* the vCPU's busy ns then */
	int64_t tokens;	    /* ns it may still run (negative: owed) */
};

/* Account `busy` (the vCPU's busy ns since it was made, never decreasing) at `now` against
 * `percent` (1..100).  Returns 0 to let it run, else the monotonic ns until which it must sleep.
 * *next_check (when to look again if it keeps running flat out) is set either way.  Flat out,
 * a vCPU runs percent% of each CPU_CAP_PERIOD_NS and sleeps the rest; time run past its budget
 * (a late kick) is owed, at most percent% of CPU_CAP_LATE_NS; idle time banks at most percent% of
 * CPU_CAP_LATE_NS (beyond the (100 - percent)% of a budget it wakes with), which lets a vCPU that
 * wakes that late from its cap sleep lose nothing. */
int64_t cpu_cap_check(struct cpu_cap_window *w, unsigned percent, int64_t now, int64_t busy,
		      int64_t *next_check);

/* A new cap starts a new window at the next look: time run uncapped (or under the old cap) is not
 * owed under the new one. */
void cpu_cap_restart(struct cpu_cap_window *w);

/* Busy ns from KVM's figures: `active` ns out of the checkpoint less `halted` ns.  While the vCPU
 * is `blocking` (halted now), the halt under way is in `active` but not yet in `halted`: the
 * figure then stays at *last, the one of the last look (its true value lies between the two). */
int64_t cpu_cap_busy_kvm(int64_t active, int64_t halted, bool blocking, int64_t *last);

/* A thread that calls tick(opaque, now) and sleeps until the monotonic time it returns (at least
 * CPU_CAP_MIN_CHECK_NS later, at most one period). */
struct cpu_cap_timer;
int cpu_cap_timer_start(int64_t (*tick)(void *opaque, int64_t now), void *opaque,
			struct cpu_cap_timer **out);
void cpu_cap_timer_stop(struct cpu_cap_timer *t); /* joins it; NULL is fine */

int64_t cpu_cap_now(void); /* CLOCK_MONOTONIC in ns */

#endif
