/* The seccomp sandbox: once the VM is set up, every thread runs under an allow-list fitted to its
 * role, and a forbidden system call stops the whole VMM with a message naming it (SIGSYS handler).
 *
 * Two layers.  sandbox_start() installs the process filter (the union of every role) on every
 * thread at once (TSYNC), so no thread ever runs unfiltered after it.  Then each thread narrows
 * itself with sandbox_enter(ROLE) at its next safe point (a vCPU thread when it starts, the worker
 * before a job, an I/O thread before a request).  A thread inherits its creator's filters, so a
 * role that creates threads of another role allows at least what they need: WORKER and LOOP
 * (which plug vCPUs and open disks) allow everything a vCPU does, and a vCPU everything an I/O
 * thread does.
 *
 * Roles:
 *   VCPU    device emulation on guest exits: KVM ioctls, I/O on open descriptors, eventfds,
 *           io_uring, timers, signals within the process, madvise; no new files or sockets.
 *   IO      block requests: read/write/flush/allocate on open image files only.
 *   LOOP    the event loop (console, control socket, completions) and the VM's teardown.
 *   WORKER  control verbs: media change, snapshots, hot-plug: also opens and creates files
 *           and connects UNIX sockets.
 * No role may execve, fork a process, ptrace, mount, change ids, load modules or BPF, map
 * executable memory, create non-UNIX sockets, or signal another process.
 */
#ifndef MINIVMM_LIB_SANDBOX_H
#define MINIVMM_LIB_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

enum sandbox_role { SANDBOX_VCPU, SANDBOX_IO, SANDBOX_LOOP, SANDBOX_WORKER, SANDBOX_ROLES };

/* Build every filter, set PR_SET_NO_NEW_PRIVS and the SIGSYS handler; nothing is enforced yet.
 * 0, or -errno with one line in error_msg() (lib/error.h). */
int sandbox_prepare(void);
/* Enforce the process filter on every thread of the process.  After sandbox_prepare; 0, or -errno
 * with one line in error_msg(). */
int sandbox_start(void);
/* The calling thread narrows to its role (and drops its capabilities when it has any); once per
 * thread, later calls return at once.  A no-op while the sandbox is not started. */
void sandbox_enter(enum sandbox_role role);
bool sandbox_started(void);
const char *sandbox_role_name(enum sandbox_role role);

#endif
