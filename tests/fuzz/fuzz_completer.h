/* The VM's I/O thread in small, for targets whose device waits (reset, disable) for requests in
 * flight: a thread that sleeps until a disk's completion eventfd is readable, then runs that
 * disk's completions.  The fixtures' completers poll each disk in turn with a 1 ms timeout, which
 * spins when nothing is pending (two such threads on a 2-core machine left the fuzzing thread a
 * fraction of a core) and holds one disk's completions while it waits on another. */
#ifndef MINIVMM_TESTS_FUZZ_COMPLETER_H
#define MINIVMM_TESTS_FUZZ_COMPLETER_H

#include <poll.h>
#include <pthread.h>
#include <stdlib.h>

#include "storage/core/block_aio.h"

#define FUZZ_COMPLETER_MAX 8

struct fuzz_completer {
	struct block_aio_ctx *aio[FUZZ_COMPLETER_MAX];
	unsigned n;
	pthread_t thread;
};

static inline void *fuzz_completer_main(void *arg)
{
	struct fuzz_completer *c = arg;
	struct pollfd p[FUZZ_COMPLETER_MAX];
	for (unsigned i = 0; i < c->n; i++)
		p[i] = (struct pollfd){.fd = block_aio_fd(c->aio[i]), .events = POLLIN};
	for (;;) {
		unsigned pending = 0;
		for (unsigned i = 0; i < c->n; i++)
			pending += block_aio_pending(c->aio[i]);
		/* The timeout only retries a submission io_uring refused (the next reap does). */
		poll(p, c->n, pending ? 1 : 100);
		for (unsigned i = 0; i < c->n; i++)
			block_aio_complete(c->aio[i]);
	}
	return NULL;
}

/* Add a disk's context (NULL: a drive without a medium, skipped). */
static inline void fuzz_completer_add(struct fuzz_completer *c, struct block_aio_ctx *aio)
{
	if (!aio)
		return;
	if (c->n == FUZZ_COMPLETER_MAX)
		abort();
	c->aio[c->n++] = aio;
}

/* Runs until the process ends. */
static inline void fuzz_completer_start(struct fuzz_completer *c)
{
	if (pthread_create(&c->thread, NULL, fuzz_completer_main, c) != 0)
		abort();
}

#endif
