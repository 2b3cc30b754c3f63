/* virtio-balloon (virtio 1.2, 5.5) on the virtio-pci transport, as Linux's virtio_balloon drives
 * it.
 *
 * Queues, in the order the driver numbers them (a queue whose feature was not negotiated takes no
 * index): inflate, deflate, stats (STATS_VQ), free page reporting (REPORTING).  Offered:
 * STATS_VQ, DEFLATE_ON_OOM, PAGE_POISON, REPORTING (not MUST_TELL_HOST: the host needs no word
 * before the guest reuses a deflated page, which reads back zeroed; not FREE_PAGE_HINT, which only
 * serves migration).
 *
 * Inflated pages and reported free ranges go back to the host (guest_memory_discard).  Every PFN
 * is checked: one outside RAM or in a hole is refused, one already in the balloon (inflate) or not
 * in it (deflate) is ignored; each is counted.  A page the guest deflates while the host's target
 * still wants it is counted as an OOM deflation (DEFLATE_ON_OOM).  With PAGE_POISON and a
 * non-zero poison_val, reported pages are kept: the guest expects its poison there, not zeroes.
 *
 * Stats: the driver's buffer is held by the device; virtio_balloon_query hands it back so the
 * driver refills it, and waits (bounded) for the new figures.
 */
#ifndef MINIVMM_DEVICES_VIRTIO_BALLOON_VIRTIO_BALLOON_H
#define MINIVMM_DEVICES_VIRTIO_BALLOON_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stdint.h>

struct pci_bus;
struct guest_memory;
struct event_loop;
struct virtio_balloon;
struct virtio_pci;

#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ 1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT 3
#define VIRTIO_BALLOON_F_PAGE_POISON 4
#define VIRTIO_BALLOON_F_REPORTING 5

#define VIRTIO_BALLOON_PAGE 4096u /* the PFN unit, whatever the guest's page size */
#define VIRTIO_BALLOON_CONFIG_LEN 16
#define VIRTIO_BALLOON_QUEUES 4

/* Guest statistics tags (5.5.6.3). */
enum virtio_balloon_stat {
	VIRTIO_BALLOON_S_SWAP_IN,  /* bytes */
	VIRTIO_BALLOON_S_SWAP_OUT, /* bytes */
	VIRTIO_BALLOON_S_MAJFLT,
	VIRTIO_BALLOON_S_MINFLT,
	VIRTIO_BALLOON_S_MEMFREE, /* bytes */
	VIRTIO_BALLOON_S_MEMTOT,  /* bytes */
	VIRTIO_BALLOON_S_AVAIL,	  /* bytes */
	VIRTIO_BALLOON_S_CACHES,  /* bytes */
	VIRTIO_BALLOON_S_HTLB_PGALLOC,
	VIRTIO_BALLOON_S_HTLB_PGFAIL,
	VIRTIO_BALLOON_S_NR
};

/* How much RAM the balloon may take: all of it but a floor of max(RAM/8, 64 MiB), so that the
 * guest keeps room to run. */
#define VIRTIO_BALLOON_FLOOR_MIN_MIB 64
uint64_t virtio_balloon_limit_mib(uint64_t ram_mib);

struct virtio_balloon_env {
	struct pci_bus *pci;
	const struct guest_memory *mem;
	struct event_loop *loop; /* may be NULL */
	uint64_t target_pages;	 /* at power-on (run --balloon MB) */
	bool no_reporting;	 /* do not offer REPORTING (run --free-page-reporting off) */
	/* run --memory MIN:MAX: MIN in pages, and the target follows balloon_policy.h, the guest's
	 * statistics asked for every second on the loop; 0: the target is set by hand. */
	uint64_t auto_min_pages;
};

struct virtio_balloon_info {
	uint64_t target_pages; /* what the host asks for */
	uint32_t actual_pages; /* what the driver says it holds (config `actual`) */
	uint64_t held_pages;   /* what the host counted in: distinct valid inflated PFNs */
	uint64_t inflated, deflated, oom_deflated; /* pages, since power-on */
	uint64_t bad_pfns, duplicate_pfns,
	    stray_pfns; /* refused; inflated twice; deflated unheld */
	uint64_t reported_bytes,
	    reported_kept_bytes; /* free page reporting: freed, kept (poison) */
	uint64_t discard_errors;
	uint64_t features; /* negotiated */
	bool driver_ok;
	bool automatic; /* the target follows --memory MIN:MAX */
	/* the guest's last statistics */
	uint64_t stats_updates; /* buffers received */
	int64_t stats_age_ms;	/* -1: none yet */
	uint32_t stats_valid;	/* bit per tag present */
	uint64_t stats[VIRTIO_BALLOON_S_NR];
};

int virtio_balloon_create(const struct virtio_balloon_env *env, struct virtio_balloon **out);
void virtio_balloon_destroy(struct virtio_balloon *b);
/* Machine reset: the balloon empties (the guest owns all its RAM again); the target stays. */
void virtio_balloon_reset(struct virtio_balloon *b);

/* A new target in pages (at most the RAM): the driver hears of it through a configuration
 * interrupt.  -ERANGE above RAM, -EBUSY when the target is automatic. */
int virtio_balloon_set_target(struct virtio_balloon *b, uint64_t pages);
/* The counters; with wait_ms > 0 and the stats queue running, first ask the guest for new
 * statistics and wait up to wait_ms for them (only a guest that does not answer makes it wait). */
void virtio_balloon_query(struct virtio_balloon *b, int wait_ms, struct virtio_balloon_info *out);
/* For tests. */
struct virtio_pci *virtio_balloon_transport(struct virtio_balloon *b);

#endif
