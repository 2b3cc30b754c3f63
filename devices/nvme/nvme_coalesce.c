/* Interrupt coalescing (NVMe 1.4 5.21.1.8 and .9): with Set Features 08h the host asks for an
 * MSI-X interrupt only once THR + 1 completions have gathered on an I/O completion queue, or TIME
 * x 100 us after the first of them, whichever comes first.  The admin queue and vectors whose
 * Interrupt Vector Configuration (09h) sets Coalescing Disable interrupt at once, as do all of
 * them with TIME 0 or THR 0.  One timer per controller serves every queue: TIME is the same for
 * all, so the queue that started waiting first is always due first.  Without an event loop
 * there is no timer, and nothing is held back. */
#include <time.h>

#include "devices/nvme/nvme_internal.h"
#include "lib/event_loop.h"

#define COALESCE_TIME_UNIT_NS 100000ULL /* 100 us */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void arm(struct nvme_ctrl *c, uint64_t in_ns)
{
	c->coalesce_armed = event_timer_arm(c->coalesce_timer, in_ns ? in_ns : 1, 0) == 0;
}

/* The timer: every queue whose time is up gets its interrupt; the earliest one still waiting
 * re-arms it. */
static void coalesce_timer_fired(void *opaque, uint32_t events)
{
	struct nvme_ctrl *c = opaque;
	uint64_t now = now_ns(), next = 0;
	(void)events;
	pthread_mutex_lock(&c->lock);
	c->coalesce_armed = false;
	for (unsigned q = 1; q <= NVME_MAX_QID; q++) {
		struct nvme_cq *cq = c->cq[q];
		if (!cq || !cq->coalesced)
			continue;
		if (cq->coalesce_due <= now) {
			cq->coalesced = 0;
			nvme_cq_signal(c, cq);
		} else if (!next || cq->coalesce_due - now < next) {
			next = cq->coalesce_due - now;
		}
	}
	if (next)
		arm(c, next);
	pthread_mutex_unlock(&c->lock);
}

int nvme_coalesce_init(struct nvme_ctrl *c)
{
	if (!c->loop)
		return 0;
	return event_loop_add_timer(c->loop, 0, 0, coalesce_timer_fired, c, &c->coalesce_timer);
}

void nvme_coalesce_fini(struct nvme_ctrl *c)
{
	event_source_remove(c->coalesce_timer);
	c->coalesce_timer = NULL;
}

bool nvme_coalesce_hold(struct nvme_ctrl *c, struct nvme_cq *cq)
{
	unsigned threshold = (c->feat_coalesce & 0xFF) + 1; /* the field is 0-based */
	uint64_t time_ns = (c->feat_coalesce >> 8 & 0xFF) * COALESCE_TIME_UNIT_NS;
	if (cq->id == 0 || cq->vector >= NVME_MSIX_VECTORS || c->ivc_cd[cq->vector] ||
	    threshold == 1 || !time_ns || !c->coalesce_timer) {
		cq->coalesced = 0;
		return false;
	}
	if (++cq->coalesced >= threshold) {
		cq->coalesced = 0;
		return false;
	}
	if (cq->coalesced == 1) {
		cq->coalesce_due = now_ns() + time_ns;
		if (!c->coalesce_armed)
			arm(c, time_ns);
	}
	return true;
}
