/* One epoll event loop: file descriptors, timers and calls from other threads, all run on the one
 * thread that sits in event_loop_run().  Each VM has one (kvmtool's epoll.c is the model); devices,
 * the console, the control socket and block completions register here instead of running loops of
 * their own.
 *
 * Callbacks run on the loop thread, one at a time, so state touched only from callbacks needs no
 * lock.  A source may be removed from any callback, its own included: it is freed only after the
 * current batch of events has been dispatched, so no callback ever sees a freed source.
 */
#ifndef MINIVMM_LIB_EVENT_LOOP_H
#define MINIVMM_LIB_EVENT_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct event_loop;
struct event_source;

/* events: the EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP bits that fired (EPOLLIN for a timer). */
typedef void event_fn(void *opaque, uint32_t events);

int event_loop_create(struct event_loop **out);
/* Frees every source still registered (without calling them); the loop must not be running. */
void event_loop_destroy(struct event_loop *l);

/* Watch fd (not owned: the caller closes it after removing the source) for EPOLLIN/EPOLLOUT. */
int event_loop_add_fd(struct event_loop *l, int fd, uint32_t events, event_fn *fn, void *opaque,
		      struct event_source **out);
/* Change the events watched (0 pauses the source without removing it). */
int event_source_set_events(struct event_source *s, uint32_t events);

/* A timer (timerfd, CLOCK_MONOTONIC): first expiry after first_ns, then every period_ns (0: once).
 * first_ns 0 creates it disarmed. */
int event_loop_add_timer(struct event_loop *l, uint64_t first_ns, uint64_t period_ns, event_fn *fn,
			 void *opaque, struct event_source **out);
int event_timer_arm(struct event_source *s, uint64_t first_ns, uint64_t period_ns);

/* Stop watching and free the source (and close a timer's fd).  NULL is ignored.  Loop thread
 * only, or any thread while the loop is not running. */
void event_source_remove(struct event_source *s);

/* Run fn(opaque) on the loop thread soon; safe from any thread.  -errno on failure. */
int event_loop_call(struct event_loop *l, void (*fn)(void *), void *opaque);
/* Run fn(opaque) on the loop thread and wait until it returned; runs it at once when called on the
 * loop thread or while no thread runs the loop. */
int event_loop_call_wait(struct event_loop *l, void (*fn)(void *), void *opaque);

/* Dispatch events until event_loop_stop(); returns 0, or -errno when epoll fails. */
int event_loop_run(struct event_loop *l);
/* Make event_loop_run return after the current callback; safe from any thread. */
void event_loop_stop(struct event_loop *l);
bool event_loop_on_thread(const struct event_loop *l);
/* Some thread is inside event_loop_run (a snapshot: it may start or end right after). */
bool event_loop_running(struct event_loop *l);

#endif
