/* The balloon device of the VM and its `balloon` verb (see virtio_balloon_device.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "devices/device.h"
#include "devices/virtio/balloon/virtio_balloon.h"
#include "devices/virtio/balloon/virtio_balloon_device.h"
#include "memory/guest_memory.h"
#include "memory/layout.h"
#include "devices/machine_config.h"
#include "lib/error.h"

#define PAGES_PER_MIB (MiB / VIRTIO_BALLOON_PAGE)

static int add_u64(struct json_object *o, const char *key, uint64_t v)
{
	struct json_object *j = json_object_new_int64((int64_t)v);
	if (!j || json_object_object_add(o, key, j) < 0) {
		json_object_put(j);
		return -ENOMEM;
	}
	return 0;
}

static int verb_balloon(void *opaque, struct json_object *args, struct json_object *result)
{
	struct balloon_device *d = opaque;
	size_t n =
	    args && json_object_is_type(args, json_type_array) ? json_object_array_length(args) : 0;
	uint64_t limit = virtio_balloon_limit_mib(d->ram_mib);
	if (n > 1)
		return error_set(-EINVAL, "usage: balloon [MB]");
	if (n == 1) {
		const char *s = json_object_get_string(json_object_array_get_idx(args, 0));
		char *end;
		errno = 0;
		unsigned long long mib = s && *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
		if (!s || *s < '0' || *s > '9' || *end || errno)
			return error_set(-EINVAL, "balloon: bad size '%.40s' (MB, 0 deflates)",
					 s ? s : "");
		if (mib > limit)
			return error_set(
			    -ERANGE,
			    "balloon: %llu MB is more than the VM's %llu MB of RAM minus a floor "
			    "of %llu MB (at most %llu)",
			    mib, (unsigned long long)d->ram_mib,
			    (unsigned long long)(d->ram_mib - limit), (unsigned long long)limit);
		int r = virtio_balloon_set_target(d->balloon, mib * PAGES_PER_MIB);
		if (r == -EBUSY)
			return error_set(r,
					 "balloon: the target follows --memory MIN:MAX by itself");
		if (r < 0)
			return error_set(r, "balloon: %s", strerror(-r));
	}
	struct virtio_balloon_info i;
	virtio_balloon_query(d->balloon, 0, &i);
	if (add_u64(result, "target_mib", i.target_pages / PAGES_PER_MIB) < 0 ||
	    add_u64(result, "actual_mib", i.actual_pages / PAGES_PER_MIB) < 0 ||
	    add_u64(result, "limit_mib", limit) < 0 ||
	    json_object_object_add(result, "automatic", json_object_new_boolean(i.automatic)) < 0)
		return error_set(-ENOMEM, "out of memory");
	return 0;
}

static int balloon_create(struct device_env *env, void **state)
{
	const struct machine_config *cfg = env->machine;
	*state = NULL;
	if (cfg && cfg->balloon_off)
		return 0; /* run --balloon off: no device, no verbs */
	struct balloon_device *d = calloc(1, sizeof(*d));
	if (!d)
		return error_set(-ENOMEM, "virtio-balloon: out of memory");
	d->ram_mib = env->mem->size / MiB;
	d->pagefusion = cfg && cfg->pagefusion;
	struct virtio_balloon_env benv = {
	    .pci = env->pci,
	    .mem = env->mem,
	    .loop = env->loop,
	    .target_pages = !cfg ? 0
			    : cfg->memory_min_mib
				? (cfg->memory_mib - cfg->memory_min_mib) * PAGES_PER_MIB
				: cfg->balloon_mib * PAGES_PER_MIB,
	    .no_reporting = cfg && cfg->no_free_page_reporting,
	    .auto_min_pages = cfg ? cfg->memory_min_mib * PAGES_PER_MIB : 0,
	};
	int r = virtio_balloon_create(&benv, &d->balloon);
	if (r < 0) {
		error_set(r, "virtio-balloon: %s", strerror(-r));
		free(d);
		return r;
	}
	if ((r = device_add_verb(env, "balloon", "balloon [MB]", verb_balloon, d)) < 0 ||
	    (r = device_add_verb(env, "stats", "stats", balloon_verb_stats, d)) < 0) {
		virtio_balloon_destroy(d->balloon);
		free(d);
		return r;
	}
	*state = d;
	return 0;
}

static void balloon_reset(void *state)
{
	struct balloon_device *d = state;
	if (d)
		virtio_balloon_reset(d->balloon);
}

static void balloon_destroy(void *state)
{
	struct balloon_device *d = state;
	if (!d)
		return;
	virtio_balloon_destroy(d->balloon);
	free(d);
}

static const struct device_ops balloon_device_ops = {
    .name = "virtio-balloon",
    .create = balloon_create,
    .reset = balloon_reset,
    .destroy = balloon_destroy,
};
DEVICE(balloon_device_ops, DEVICE_LEVEL_PCI);
