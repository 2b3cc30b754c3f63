/* A vCPU's halted time from KVM's binary statistics (KVM_GET_STATS_FD, Linux 5.14+): the
 * execution cap counts busy as time out of cpus.c's checkpoint less this, which is independent
 * of how the host scheduler accounts the vCPU thread's CPU time (poorly, in nested KVM).
 *
 * The file's layout is KVM's, found by name once: halt_wait_ns (required), halt_poll_success_ns
 * and halt_poll_fail_ns (polling for a wake-up is halted time too), and blocking (5.16+: the vCPU
 * is in a halt now, so the halt under way is not yet in halt_wait_ns).  Every size and offset in
 * the file is checked; a layout that does not fit is -ENOTSUP and the cap falls back to the
 * thread's CPU time.
 */
#ifndef MINIVMM_CPU_VCPU_STATS_H
#define MINIVMM_CPU_VCPU_STATS_H

#include <stdbool.h>
#include <stdint.h>

#define VCPU_STATS_HALT_FIELDS 3 /* halt_wait_ns, halt_poll_success_ns, halt_poll_fail_ns */

struct vcpu_stats {
	int fd;					  /* -1: none */
	int64_t halt_off[VCPU_STATS_HALT_FIELDS]; /* file offsets of the u64s; -1: missing */
	int64_t blocking_off;			  /* -1: missing (older kernels) */
};

/* Find the fields in an open stats file `fd` (taken over: closed by vcpu_stats_close()).
 * -ENOTSUP without halt_wait_ns or with a layout out of bounds, -errno on a read error. */
int vcpu_stats_parse(int fd, struct vcpu_stats *s);
/* KVM_GET_STATS_FD on a vCPU fd, then vcpu_stats_parse().  -ENOTSUP where KVM has no stats fd. */
int vcpu_stats_open(int vcpu_fd, struct vcpu_stats *s);
/* The vCPU's halted ns so far and whether it is halted now (false where KVM does not say). */
int vcpu_stats_halted(const struct vcpu_stats *s, int64_t *halted_ns, bool *blocking);
void vcpu_stats_close(struct vcpu_stats *s); /* fd -1 afterwards; twice is fine */

#endif
