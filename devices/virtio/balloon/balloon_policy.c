/* The automatic balloon target (see balloon_policy.h). */
#include "devices/virtio/balloon/balloon_policy.h"

uint64_t balloon_policy_target(const struct balloon_policy *p, uint64_t target, uint64_t actual,
			       uint64_t avail_pages)
{
	uint64_t ceiling = p->max_pages > p->min_pages ? p->max_pages - p->min_pages : 0;
	uint64_t low = p->max_pages / 10, high = p->max_pages / 4, goal = (low + high) / 2;
	uint64_t step = p->max_pages / 16;
	if (target > ceiling)
		target = ceiling;
	if (avail_pages < low) {
		uint64_t need = goal - avail_pages, base = actual < target ? actual : target;
		return need >= base ? 0 : base - need;
	}
	if (avail_pages > high) {
		uint64_t more = avail_pages - goal;
		if (more > step)
			more = step;
		return more >= ceiling - target ? ceiling : target + more;
	}
	return target;
}
