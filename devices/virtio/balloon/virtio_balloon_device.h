/* The machine's balloon as a device of the VM (devices/device.h) and its control verbs:
 *   minivmm control NAME balloon [MB]   set the balloon's target (0 deflates it); no MB: show it
 *   minivmm control NAME stats          balloon, guest memory statistics, this VM's RSS and KSM
 * Present unless `run --balloon off`; `run --balloon MB` inflates it from power-on. */
#ifndef MINIVMM_DEVICES_VIRTIO_BALLOON_VIRTIO_BALLOON_DEVICE_H
#define MINIVMM_DEVICES_VIRTIO_BALLOON_VIRTIO_BALLOON_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;
struct virtio_balloon;

struct balloon_device {
	struct virtio_balloon *balloon;
	uint64_t ram_mib;
	bool pagefusion; /* run --pagefusion on */
};

/* virtio_balloon_stats.c: the `stats` verb. */
int balloon_verb_stats(void *opaque, struct json_object *args, struct json_object *result);

#endif
