/* The execution cap through cgroup v2 (cpu.max), where the user delegated a cgroup to minivmm:
 * each vCPU thread in a threaded child cgroup of the process's own cgroup, whose cpu.max is the
 * cap (PERCENT of every 100 ms period).  The kernel's CFS bandwidth control then does what the
 * in-VMM cap (cpu_cap.h) does, without a timer thread or kicks.
 *
 * Used only where it is the user's to use: the process's cgroup is not the root, lists the cpu
 * controller in cgroup.controllers, and the directory and its cgroup.subtree_control are writable.
 * Every step that fails leaves nothing behind and the caller falls back to the in-VMM cap.
 *
 * Layout, in the process's cgroup DIR:  DIR/minivmm-PID-vcpuN (cgroup.type threaded, N < max
 * CPUs) and +cpu in DIR/cgroup.subtree_control; the rest of the process stays in DIR.
 */
#ifndef MINIVMM_CPU_CPU_CGROUP_H
#define MINIVMM_CPU_CPU_CGROUP_H

#include <stddef.h>

struct cpu_cgroup;

/* The process's cgroup v2 directory (from /proc/self/cgroup and /proc/self/mountinfo) in `out`.
 * -ENOENT without a cgroup2 mount, -EPERM for the root cgroup (the system's, not delegated). */
int cpu_cgroup_find(char *out, size_t len);
/* Make the vCPU cgroups of CPUs 0..max_cpus-1 in `dir` (cpu.max "max").  -ENOTSUP without the
 * cpu controller, -EACCES when not writable, else the -errno of the step that failed. */
int cpu_cgroup_open(const char *dir, unsigned max_cpus, struct cpu_cgroup **out);
/* Move the calling thread (a vCPU's) into the cgroup of vCPU `id`. */
int cpu_cgroup_join(struct cpu_cgroup *g, unsigned id);
/* Move the calling thread back to the process's cgroup (a vCPU thread before it ends: a thread
 * that is exiting may still count in its cgroup when the joiner removes that). */
int cpu_cgroup_leave(struct cpu_cgroup *g);
/* cpu.max of every vCPU cgroup: PERCENT (1..100) of 100 ms; 100 is "max" (no limit). */
int cpu_cgroup_set_cap(struct cpu_cgroup *g, unsigned percent);
const char *cpu_cgroup_dir(const struct cpu_cgroup *g);
/* Remove the vCPU cgroups (their threads must have ended) and free.  NULL is fine. */
void cpu_cgroup_close(struct cpu_cgroup *g);

#endif
