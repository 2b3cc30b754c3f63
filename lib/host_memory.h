/* What this process costs the host in memory, and the host's KSM (page fusion) totals: read from
 * /proc/self and /sys/kernel/mm/ksm for `control NAME stats`. */
#ifndef MINIVMM_LIB_HOST_MEMORY_H
#define MINIVMM_LIB_HOST_MEMORY_H

#include <stdint.h>

struct host_memory_usage {
	uint64_t rss_kib;	   /* VmRSS */
	uint64_t rss_anon_kib;	   /* RssAnon: guest RAM and heap */
	uint64_t rss_shmem_kib;	   /* RssShmem: shared (memfd) guest RAM */
	int64_t ksm_merging_pages; /* /proc/self/ksm_merging_pages; -1 when the kernel has none */
};

struct host_ksm {
	int run;		/* /sys/kernel/mm/ksm/run: 0 stopped, 1 running, 2 unmerging */
	int64_t pages_shared;	/* KSM pages in use (each backs many) */
	int64_t pages_sharing;	/* guest pages saved by them */
	int64_t pages_unshared; /* scanned, unique so far */
	int64_t full_scans;
};

/* -errno when /proc/self/status cannot be read. */
int host_memory_usage_self(struct host_memory_usage *u);
/* -ENOENT when the kernel has no KSM; fields it lacks read -1. */
int host_ksm_read(struct host_ksm *k);

#endif
