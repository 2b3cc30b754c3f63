/* The automatic balloon of `run --memory MIN:MAX` (Hyper-V's dynamic memory): the VM has MAX of RAM
 * and boots with MAX-MIN in the balloon; each time the guest reports its available memory the
 * target moves.  Under LOW of available memory the balloon deflates at once until GOAL is
 * available; over HIGH it inflates towards GOAL, at most STEP at a time (a guest that just freed
 * memory may need it back soon).  LOW = MAX/10, HIGH = MAX/4, GOAL = (LOW+HIGH)/2, STEP = MAX/16.
 * Never more than MAX-MIN in the balloon, so the guest always keeps MIN. */
#ifndef MINIVMM_DEVICES_VIRTIO_BALLOON_BALLOON_POLICY_H
#define MINIVMM_DEVICES_VIRTIO_BALLOON_BALLOON_POLICY_H

#include <stdint.h>

struct balloon_policy {
	uint64_t max_pages; /* RAM */
	uint64_t min_pages; /* what the guest always keeps */
};

/* The new target, in pages, for a guest with avail_pages available, the balloon's target at target
 * and its actual size at actual (below the target after the guest deflated on OOM: a deflation
 * starts from there, so that the driver is never asked to take back what it just gave). */
uint64_t balloon_policy_target(const struct balloon_policy *p, uint64_t target, uint64_t actual,
			       uint64_t avail_pages);

#endif
