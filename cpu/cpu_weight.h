/* --cpu-weight: a VM's share of the host CPUs against other VMs when they are overcommitted, in
 * cgroup v2 cpu.weight units (1..10000, 100 the default), applied as the nice level whose CFS
 * weight is nearest (CFS: nice 0 weighs 1024, each step about 1.25 times less).  Threads inherit
 * their creator's nice, so applying it on the VMM's main thread before any other thread exists
 * weighs every vCPU and I/O thread of the VM.  Where the kernel groups tasks by session
 * (autogroups), nice only weighs threads within one session: the VMM's session group gets the same
 * nice while it runs (/proc/self/autogroup, restored at exit). */
#ifndef MINIVMM_CPU_CPU_WEIGHT_H
#define MINIVMM_CPU_CPU_WEIGHT_H

/* The nice level (-20..19) for a weight; 1..10000, others are clamped. */
int cpu_weight_to_nice(unsigned weight);
/* Set it on the calling thread: 0 or -errno (-EACCES/-EPERM: a negative nice needs
 * CAP_SYS_NICE or RLIMIT_NICE). */
int cpu_weight_apply(unsigned weight);
/* The nice of /proc/self/autogroup's text ("/autogroup-12 nice 3"): 0 or -EINVAL. */
int cpu_weight_parse_autogroup(const char *text, int *nice);

#endif
