/* `minivmm control NAME stats [--json]`: the balloon, the guest's own memory statistics (fresh:
 * the guest is asked and waited for, at most STATS_WAIT_MS), this VM's RSS and KSM-shared pages,
 * and the host's KSM totals.  Keys are grouped as balloon.*, guest.*, vm.* and host_ksm.*. */
#include <errno.h>
#include <stdio.h>

#include <json-c/json.h>

#include "devices/virtio/balloon/virtio_balloon.h"
#include "devices/virtio/balloon/virtio_balloon_device.h"
#include "lib/host_memory.h"
#include "lib/error.h"

#define STATS_WAIT_MS 5000
#define PAGES_PER_MIB (1048576 / VIRTIO_BALLOON_PAGE)

static int put(struct json_object *o, const char *key, struct json_object *v)
{
	if (!v || json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int put_i(struct json_object *o, const char *key, int64_t v)
{
	return put(o, key, json_object_new_int64(v));
}

static int put_b(struct json_object *o, const char *key, bool v)
{
	return put(o, key, json_object_new_boolean(v));
}

static int balloon_part(struct json_object *o, const struct virtio_balloon_info *i)
{
	int r = 0;
	r |= put_i(o, "target_mib", (int64_t)(i->target_pages / PAGES_PER_MIB));
	r |= put_i(o, "actual_mib", i->actual_pages / PAGES_PER_MIB);
	r |= put_i(o, "held_mib", (int64_t)(i->held_pages / PAGES_PER_MIB));
	r |= put_b(o, "driver", i->driver_ok);
	r |= put_b(o, "automatic", i->automatic);
	r |= put_b(o, "deflate_on_oom", i->features >> VIRTIO_BALLOON_F_DEFLATE_ON_OOM & 1);
	r |= put_b(o, "free_page_reporting", i->features >> VIRTIO_BALLOON_F_REPORTING & 1);
	r |= put_i(o, "inflated_pages", (int64_t)i->inflated);
	r |= put_i(o, "deflated_pages", (int64_t)i->deflated);
	r |= put_i(o, "oom_deflated_pages", (int64_t)i->oom_deflated);
	r |= put_i(o, "reported_mib", (int64_t)(i->reported_bytes >> 20));
	r |= put_i(o, "reported_kept_mib", (int64_t)(i->reported_kept_bytes >> 20));
	r |= put_i(o, "bad_pfns", (int64_t)i->bad_pfns);
	r |= put_i(o, "duplicate_pfns", (int64_t)i->duplicate_pfns);
	r |= put_i(o, "stray_pfns", (int64_t)i->stray_pfns);
	return r;
}

/* The figures the guest sent, in the units people read them in. */
static int guest_part(struct json_object *o, const struct virtio_balloon_info *i)
{
	static const struct {
		enum virtio_balloon_stat tag;
		const char *key;
		unsigned shift; /* bytes to the key's unit */
	} keys[] = {
	    {VIRTIO_BALLOON_S_MEMTOT, "total_mib", 20},
	    {VIRTIO_BALLOON_S_MEMFREE, "free_mib", 20},
	    {VIRTIO_BALLOON_S_AVAIL, "available_mib", 20},
	    {VIRTIO_BALLOON_S_CACHES, "cached_mib", 20},
	    {VIRTIO_BALLOON_S_SWAP_IN, "swap_in_kib", 10},
	    {VIRTIO_BALLOON_S_SWAP_OUT, "swap_out_kib", 10},
	    {VIRTIO_BALLOON_S_MAJFLT, "major_faults", 0},
	    {VIRTIO_BALLOON_S_MINFLT, "minor_faults", 0},
	    {VIRTIO_BALLOON_S_HTLB_PGALLOC, "hugetlb_allocations", 0},
	    {VIRTIO_BALLOON_S_HTLB_PGFAIL, "hugetlb_failures", 0},
	};
	int r = put_i(o, "stats_updates", (int64_t)i->stats_updates);
	r |= put_i(o, "stats_age_ms", i->stats_age_ms);
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		if (i->stats_valid >> keys[k].tag & 1)
			r |= put_i(o, keys[k].key,
				   (int64_t)(i->stats[keys[k].tag] >> keys[k].shift));
	return r;
}

static int host_part(struct json_object *vm, struct json_object *ksm, bool pagefusion)
{
	struct host_memory_usage u;
	struct host_ksm k;
	int r = 0;
	if (host_memory_usage_self(&u) == 0) {
		r |= put_i(vm, "rss_mib", (int64_t)(u.rss_kib >> 10));
		r |= put_i(vm, "rss_anon_mib", (int64_t)(u.rss_anon_kib >> 10));
		r |= put_i(vm, "rss_shmem_mib", (int64_t)(u.rss_shmem_kib >> 10));
		r |= put_i(vm, "shared_pages", u.ksm_merging_pages); /* -1: kernel without KSM */
	}
	r |= put_b(vm, "pagefusion", pagefusion);
	if (host_ksm_read(&k) == 0) {
		r |= put_i(ksm, "run", k.run);
		r |= put_i(ksm, "pages_shared", k.pages_shared);
		r |= put_i(ksm, "pages_sharing", k.pages_sharing);
		r |= put_i(ksm, "pages_unshared", k.pages_unshared);
		r |= put_i(ksm, "full_scans", k.full_scans);
	}
	return r;
}

int balloon_verb_stats(void *opaque, struct json_object *args, struct json_object *result)
{
	struct balloon_device *d = opaque;
	if (args && json_object_is_type(args, json_type_array) && json_object_array_length(args))
		return error_set(-EINVAL, "stats takes no arguments (--json is the client's)");
	struct virtio_balloon_info i;
	virtio_balloon_query(d->balloon, STATS_WAIT_MS, &i);
	struct json_object *b = json_object_new_object(), *g = json_object_new_object(),
			   *vm = json_object_new_object(), *k = json_object_new_object();
	int r = 0;
	if (b && g && vm && k)
		r = balloon_part(b, &i) | guest_part(g, &i) | host_part(vm, k, d->pagefusion);
	r |= put(result, "balloon", b) | put(result, "guest", g) | put(result, "vm", vm) |
	     put(result, "host_ksm", k);
	if (r)
		return error_set(-ENOMEM, "out of memory");
	return 0;
}
