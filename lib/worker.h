/* One thread that runs jobs one at a time, in the order they were queued: the place for work that
 * must wait (for vCPUs to park, for disk requests to end) without blocking the event loop.
 *
 * Jobs run on the worker thread only, so two jobs never run at once: a control verb that pauses
 * the VM and a guest reboot cannot interleave.  A job may queue further jobs.
 */
#ifndef MINIVMM_LIB_WORKER_H
#define MINIVMM_LIB_WORKER_H

#include <stdbool.h>

struct worker;

/* name: the thread's name (at most 15 characters), for debuggers and `top -H`. */
int worker_create(const char *name, struct worker **out);
/* Runs the jobs still queued, then ends the thread and frees the worker.  Never from a job. */
void worker_destroy(struct worker *w);
/* Queue fn(opaque); safe from any thread.  -ENOMEM, or -ESHUTDOWN once destroy has begun. */
int worker_submit(struct worker *w, void (*fn)(void *), void *opaque);
bool worker_on_thread(const struct worker *w);

#endif
