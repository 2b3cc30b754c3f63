/* virtio-balloon queues and configuration (see virtio_balloon.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/virtio/balloon/balloon_policy.h"
#include "devices/virtio/balloon/virtio_balloon.h"
#include "devices/virtio/virtio.h"
#include "devices/virtio/virtio_pci.h"
#include "memory/guest_memory.h"
#include "memory/layout.h"
#include "lib/event_loop.h"
#include "lib/endian.h"

#define PCI_CLASS_UNCLASSIFIED_OTHER 0x00FF00 /* what QEMU's balloon shows too */
#define PFN_CHUNK 256			      /* PFNs read at a time (Linux sends <= 256) */
#define PFNS_PER_CHAIN_MAX 16384	      /* more in one chain are refused, not walked */
#define STAT_ENTRY 10			      /* {le16 tag, le64 value}, packed */
#define STAT_ENTRIES_MAX 64
#define POLICY_PERIOD_NS 1000000000ULL /* --memory MIN:MAX: the guest's figures every second */

enum queue_role { ROLE_INFLATE, ROLE_DEFLATE, ROLE_STATS, ROLE_REPORTING, ROLE_NONE };

struct virtio_balloon {
	struct virtio_pci *vp;
	const struct guest_memory *mem;
	uint64_t ram_pages;
	/* under the transport lock */
	uint64_t *held; /* bit per 4 KiB page of RAM (host offset / 4 KiB): in the balloon */
	struct virtio_balloon_info c;
	uint8_t driver_cfg[VIRTIO_BALLOON_CONFIG_LEN]; /* what the driver wrote: actual, poison */
	bool stats_held;			       /* the driver's stats buffer is ours */
	unsigned stats_q;
	uint16_t stats_head, stats_ndesc;
	struct timespec stats_time;
	pthread_cond_t stats_cond;
	struct vq_elem elem; /* the chain being worked on */
	/* --memory MIN:MAX */
	struct balloon_policy policy;
	struct event_source *policy_timer;
};

uint64_t virtio_balloon_limit_mib(uint64_t ram_mib)
{
	uint64_t floor = ram_mib / 8;
	if (floor < VIRTIO_BALLOON_FLOOR_MIN_MIB)
		floor = VIRTIO_BALLOON_FLOOR_MIN_MIB;
	return ram_mib > floor ? ram_mib - floor : 0;
}

static enum queue_role queue_role(const struct virtio_balloon *b, unsigned q)
{
	uint64_t f = virtio_pci_features(b->vp);
	unsigned next = 2;
	if (q < 2)
		return q == 0 ? ROLE_INFLATE : ROLE_DEFLATE;
	/* Queues of features not negotiated take no index (5.5.2). */
	if (f >> VIRTIO_BALLOON_F_STATS_VQ & 1) {
		if (q == next)
			return ROLE_STATS;
		next++;
	}
	if ((f >> VIRTIO_BALLOON_F_REPORTING & 1) && q == next)
		return ROLE_REPORTING;
	return ROLE_NONE;
}

static bool poisoned(const struct virtio_balloon *b)
{
	return (virtio_pci_features(b->vp) >> VIRTIO_BALLOON_F_PAGE_POISON & 1) &&
	       get_le32(b->driver_cfg + 12) != 0;
}

/* --- inflate and deflate ---------------------------------------------------------------- */

static bool bit_test(const uint64_t *map, uint64_t i)
{
	return map[i / 64] >> (i % 64) & 1;
}

static void bit_flip(uint64_t *map, uint64_t i)
{
	map[i / 64] ^= 1ULL << (i % 64);
}

/* A run of pages to discard with one madvise. */
struct run {
	uint64_t gpa, len;
};

static void run_flush(struct virtio_balloon *b, struct run *r)
{
	if (r->len && guest_memory_discard(b->mem, r->gpa, r->len) < 0)
		b->c.discard_errors++;
	r->len = 0;
}

static void run_add(struct virtio_balloon *b, struct run *r, uint64_t gpa)
{
	if (r->len && r->gpa + r->len == gpa && guest_memory_ptr(b->mem, r->gpa, r->len + 4096)) {
		r->len += VIRTIO_BALLOON_PAGE;
		return;
	}
	run_flush(b, r);
	*r = (struct run){gpa, VIRTIO_BALLOON_PAGE};
}

static void one_pfn(struct virtio_balloon *b, uint32_t pfn, bool inflate, struct run *run)
{
	uint64_t gpa = (uint64_t)pfn * VIRTIO_BALLOON_PAGE;
	uint8_t *p = guest_memory_ptr(b->mem, gpa, VIRTIO_BALLOON_PAGE);
	if (!p) { /* outside RAM, or in the PCI hole */
		b->c.bad_pfns++;
		return;
	}
	uint64_t i = (uint64_t)(p - b->mem->host) / VIRTIO_BALLOON_PAGE;
	bool in = bit_test(b->held, i);
	if (inflate) {
		if (in) {
			b->c.duplicate_pfns++;
			return;
		}
		bit_flip(b->held, i);
		b->c.held_pages++;
		b->c.inflated++;
		run_add(b, run, gpa);
		return;
	}
	if (!in) {
		b->c.stray_pfns++;
		return;
	}
	/* The guest takes back a page the target still wants: only its OOM notifier does that. */
	if (b->c.held_pages <= b->c.target_pages)
		b->c.oom_deflated++;
	bit_flip(b->held, i);
	b->c.held_pages--;
	b->c.deflated++;
}

/* An inflate or deflate chain: an array of le32 PFNs in its device-readable part. */
static void pfns(struct virtio_balloon *b, bool inflate)
{
	uint64_t n = b->elem.out.bytes / 4;
	if (n > PFNS_PER_CHAIN_MAX) {
		b->c.bad_pfns += n;
		return;
	}
	struct run run = {0, 0};
	uint8_t buf[PFN_CHUNK * 4];
	for (uint64_t done = 0; done < n;) {
		unsigned k = n - done < PFN_CHUNK ? (unsigned)(n - done) : PFN_CHUNK;
		sg_list_to_buf(&b->elem.out, done * 4, buf, k * 4);
		for (unsigned j = 0; j < k; j++)
			one_pfn(b, get_le32(buf + 4 * j), inflate, &run);
		done += k;
	}
	run_flush(b, &run);
}

/* --- statistics ------------------------------------------------------------------------- */

static void stats_take(struct virtio_balloon *b, unsigned q)
{
	struct virtqueue *vq = virtio_pci_queue(b->vp, q);
	if (b->stats_held) { /* a second buffer: the first goes back unread */
		vq_push(vq, b->stats_head, b->stats_ndesc, 0);
		virtio_pci_queue_done(b->vp, q);
	}
	uint64_t n = b->elem.out.bytes / STAT_ENTRY;
	if (n > STAT_ENTRIES_MAX)
		n = STAT_ENTRIES_MAX;
	uint8_t e[STAT_ENTRY];
	for (uint64_t i = 0; i < n; i++) {
		sg_list_to_buf(&b->elem.out, i * STAT_ENTRY, e, STAT_ENTRY);
		uint16_t tag = get_le16(e);
		if (tag >= VIRTIO_BALLOON_S_NR)
			continue; /* a newer driver's tag */
		b->c.stats[tag] = get_le64(e + 2);
		b->c.stats_valid |= 1u << tag;
	}
	b->stats_held = true;
	b->stats_q = q;
	b->stats_head = b->elem.head;
	b->stats_ndesc = b->elem.ndesc;
	b->c.stats_updates++;
	clock_gettime(CLOCK_MONOTONIC, &b->stats_time);
	pthread_cond_broadcast(&b->stats_cond);
	if (b->c.automatic && (b->c.stats_valid >> VIRTIO_BALLOON_S_AVAIL & 1)) {
		uint64_t t = balloon_policy_target(
		    &b->policy, b->c.target_pages, get_le32(b->driver_cfg + 4),
		    b->c.stats[VIRTIO_BALLOON_S_AVAIL] / VIRTIO_BALLOON_PAGE);
		if (t != b->c.target_pages) {
			b->c.target_pages = t;
			virtio_pci_config_changed(b->vp);
		}
	}
}

/* Give the buffer back: the driver refills it and posts it again. */
static bool stats_request(struct virtio_balloon *b)
{
	if (!b->stats_held || !virtio_pci_running(b->vp))
		return false;
	struct virtqueue *vq = virtio_pci_queue(b->vp, b->stats_q);
	if (!vq->enabled)
		return false;
	b->stats_held = false;
	vq_push(vq, b->stats_head, b->stats_ndesc, 0);
	virtio_pci_queue_done(b->vp, b->stats_q);
	return true;
}

/* --memory MIN:MAX: ask for the guest's figures; the policy runs when they come (stats_take). */
static void policy_tick(void *opaque, uint32_t events)
{
	struct virtio_balloon *b = opaque;
	(void)events;
	virtio_pci_lock(b->vp);
	stats_request(b);
	virtio_pci_unlock(b->vp);
}

/* --- free page reporting ---------------------------------------------------------------- */

/* Free ranges in the chain's device-writable part (what Linux adds as inbufs). */
static void report(struct virtio_balloon *b)
{
	const struct sg_list *in = &b->elem.in;
	bool keep = poisoned(b);
	for (unsigned i = 0; i < in->n; i++) {
		if (keep) {
			b->c.reported_kept_bytes += in->iov[i].iov_len;
			continue;
		}
		int64_t r =
		    guest_memory_discard_host(b->mem, in->iov[i].iov_base, in->iov[i].iov_len);
		if (r < 0)
			b->c.discard_errors++;
		else
			b->c.reported_bytes += (uint64_t)r;
	}
}

/* --- transport hooks -------------------------------------------------------------------- */

static void queue_notify(void *dev, unsigned q)
{
	struct virtio_balloon *b = dev;
	struct virtqueue *vq = virtio_pci_queue(b->vp, q);
	enum queue_role role = queue_role(b, q);
	unsigned taken = 0;
	do {
		for (;;) {
			if (taken++ == vq->size && virtio_pci_defer_notify(b->vp, q))
				return;
			int got = vq_pop(vq, &b->elem);
			if (got < 0) {
				char why[80];
				snprintf(why, sizeof(why), "balloon queue %u: malformed chain (%s)",
					 q, strerror(-got));
				virtio_pci_needs_reset(b->vp, why);
				return;
			}
			if (got == 0)
				break;
			if (role == ROLE_STATS) {
				stats_take(b, q); /* held until the host wants new figures */
				continue;
			}
			if (role == ROLE_INFLATE || role == ROLE_DEFLATE)
				pfns(b, role == ROLE_INFLATE);
			else if (role == ROLE_REPORTING)
				report(b);
			vq_push(vq, b->elem.head, b->elem.ndesc, 0);
			virtio_pci_queue_done(b->vp, q);
		}
	} while (vq_more_after_idle(vq));
}

/* The driver reset the device: it owns all its RAM again. */
static void reset(void *dev)
{
	struct virtio_balloon *b = dev;
	memset(b->held, 0, (b->ram_pages + 63) / 64 * sizeof(uint64_t));
	b->c.held_pages = 0;
	memset(b->driver_cfg, 0, sizeof(b->driver_cfg));
	b->stats_held = false;
}

static void config_read(void *dev, unsigned off, uint8_t *data, unsigned len)
{
	struct virtio_balloon *b = dev;
	uint8_t c[VIRTIO_BALLOON_CONFIG_LEN];
	memcpy(c, b->driver_cfg, sizeof(c));
	uint64_t t = b->c.target_pages;
	put_le32(c + 0, t > UINT32_MAX ? UINT32_MAX : (uint32_t)t); /* num_pages */
	put_le32(c + 8, 0); /* free_page_hint_cmd_id: hinting is not offered */
	memcpy(data, c + off, len);
}

static void config_write(void *dev, unsigned off, const uint8_t *data, unsigned len)
{
	struct virtio_balloon *b = dev;
	for (unsigned i = 0; i < len; i++) {
		unsigned o = off + i;
		/* Only `actual` (4..7) and `poison_val` (12..15) belong to the driver. */
		if ((o >= 4 && o < 8) || o >= 12)
			b->driver_cfg[o] = data[i];
	}
}

static const struct virtio_dev_ops balloon_ops = {
    .config_read = config_read,
    .queue_notify = queue_notify,
    .reset = reset,
    .config_write = config_write,
};

int virtio_balloon_create(const struct virtio_balloon_env *env, struct virtio_balloon **out)
{
	uint64_t ram_pages = env->mem->size / VIRTIO_BALLOON_PAGE;
	if (env->target_pages > ram_pages || env->auto_min_pages > ram_pages)
		return -ERANGE;
	struct virtio_balloon *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->held = calloc((ram_pages + 63) / 64, sizeof(uint64_t));
	if (!b->held) {
		free(b);
		return -ENOMEM;
	}
	b->mem = env->mem;
	b->ram_pages = ram_pages;
	b->c.target_pages = env->target_pages;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->stats_cond, &ca);
	pthread_condattr_destroy(&ca);
	uint64_t features = 1ULL << VIRTIO_BALLOON_F_STATS_VQ |
			    1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM |
			    1ULL << VIRTIO_BALLOON_F_PAGE_POISON;
	if (!env->no_reporting)
		features |= 1ULL << VIRTIO_BALLOON_F_REPORTING;
	struct virtio_pci_config cfg = {
	    .device_id = VIRTIO_ID_BALLOON,
	    .class_code = PCI_CLASS_UNCLASSIFIED_OTHER,
	    .features = features,
	    .config_len = VIRTIO_BALLOON_CONFIG_LEN,
	    .nqueues = VIRTIO_BALLOON_QUEUES,
	    .queue_max = VQ_MAX_SIZE,
	    .ops = &balloon_ops,
	    .dev = b,
	    .mem = env->mem,
	    .loop = env->loop,
	};
	int r = virtio_pci_create(env->pci, &cfg, &b->vp);
	if (r >= 0 && env->auto_min_pages) {
		b->c.automatic = true;
		b->policy = (struct balloon_policy){ram_pages, env->auto_min_pages};
		if (env->loop)
			r = event_loop_add_timer(env->loop, POLICY_PERIOD_NS, POLICY_PERIOD_NS,
						 policy_tick, b, &b->policy_timer);
		if (r < 0)
			virtio_pci_destroy(b->vp);
	}
	if (r < 0) {
		pthread_cond_destroy(&b->stats_cond);
		free(b->held);
		free(b);
		return r;
	}
	*out = b;
	return 0;
}

void virtio_balloon_destroy(struct virtio_balloon *b)
{
	if (!b)
		return;
	event_source_remove(b->policy_timer); /* the loop no longer runs */
	virtio_pci_destroy(b->vp);
	pthread_cond_destroy(&b->stats_cond);
	free(b->held);
	free(b);
}

void virtio_balloon_reset(struct virtio_balloon *b)
{
	virtio_pci_reset(b->vp);
}

int virtio_balloon_set_target(struct virtio_balloon *b, uint64_t pages)
{
	if (pages > b->ram_pages)
		return -ERANGE;
	if (b->c.automatic)
		return -EBUSY;
	virtio_pci_lock(b->vp);
	if (b->c.target_pages != pages) {
		b->c.target_pages = pages;
		virtio_pci_config_changed(b->vp);
	}
	virtio_pci_unlock(b->vp);
	return 0;
}

static int64_t ms_since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

void virtio_balloon_query(struct virtio_balloon *b, int wait_ms, struct virtio_balloon_info *out)
{
	virtio_pci_lock(b->vp);
	uint64_t seen = b->c.stats_updates;
	if (wait_ms > 0 && stats_request(b)) {
		struct timespec deadline;
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += wait_ms / 1000;
		deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
		/* Bounded: a guest that never refills its buffer costs this one query wait_ms. */
		while (b->c.stats_updates == seen &&
		       virtio_pci_wait_until(b->vp, &b->stats_cond, &deadline) == 0)
			;
	}
	*out = b->c;
	out->actual_pages = get_le32(b->driver_cfg + 4);
	out->features = virtio_pci_features(b->vp);
	out->driver_ok = virtio_pci_running(b->vp);
	out->stats_age_ms = b->c.stats_updates ? ms_since(&b->stats_time) : -1;
	virtio_pci_unlock(b->vp);
}

struct virtio_pci *virtio_balloon_transport(struct virtio_balloon *b)
{
	return b->vp;
}
