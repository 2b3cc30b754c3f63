/* The fake guest RAM of a target that keeps one machine for the whole run: small pages, so that
 * zeroing it before each input (pages dropped, the kernel hands back zero pages) costs what the
 * input touched, not a memset of megabytes or a 2 MiB huge page cleared per touch. */
#ifndef MINIVMM_TESTS_FUZZ_RAM_H
#define MINIVMM_TESTS_FUZZ_RAM_H

#include <stdlib.h>
#include <sys/mman.h>

#include "memory/guest_memory.h"

static inline void fuzz_ram_small_pages(struct guest_memory *gm)
{
	if (madvise(gm->host, gm->size, MADV_NOHUGEPAGE) < 0)
		abort();
}

/* [gpa, gpa + len) reads as zeros again (page-aligned). */
static inline void fuzz_ram_zero(struct guest_memory *gm, uint64_t gpa, uint64_t len)
{
	if (guest_memory_discard(gm, gpa, len) < 0)
		abort();
}

#endif
