/* virtio-balloon driven by a hostile driver (fuzz_virtio_ops.h): inflate and deflate queues with
 * any PFNs (outside RAM, in the rings themselves, twice, never inflated), a stats buffer of any
 * size and tags, free page reports of any length, and the host's side (a new target, a stats
 * query) between the steps.  No loop: the device answers each kick on this thread, and a fresh
 * device per input makes a crash input replay alone. */
#include <stdint.h>
#include <stdlib.h>

#include "devices/virtio/balloon/virtio_balloon.h"
#include "tests/fuzz/fuzz_virtio_ops.h"

#define NQ VIRTIO_BALLOON_QUEUES

static struct virtio_balloon *b;

/* The target's own steps: the host's side. */
static void balloon_step(struct fuzz_input *in, uint8_t op)
{
	struct virtio_balloon_info info;
	switch (op & 3) {
	case 0: /* the host's new target, sometimes beyond RAM (-ERANGE) */
		virtio_balloon_set_target(b, take_u32(in) % (2 * VF_RAM / 4096));
		break;
	case 1: /* the counters, without waiting (no loop answers here) */
		virtio_balloon_query(b, 0, &info);
		if (info.held_pages > VF_RAM / 4096)
			abort(); /* the balloon never holds more than the RAM */
		break;
	case 2: /* a machine reset */
		virtio_balloon_reset(b);
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	struct vf f;
	uint8_t flags = take_u8(&in);

	if (vf_init(&f, false) < 0)
		abort();
	fuzz_ram_small_pages(&f.mem); /* a 2 MiB huge page cleared per first touch otherwise */
	struct virtio_balloon_env env = {.pci = f.bus,
					 .mem = &f.mem,
					 .target_pages = take_u16(&in) % (VF_RAM / 4096),
					 .no_reporting = flags & 2};
	if (virtio_balloon_create(&env, &b) < 0)
		abort();
	vf_enable(&f);
	fv_run(&f, &in, flags, NQ, balloon_step);
	virtio_balloon_destroy(b);
	vf_fini(&f);
	return 0;
}
