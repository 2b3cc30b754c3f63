/* The split and packed virtqueue walkers against rings the input writes into a fake guest RAM:
 * vq_pop must return a chain whose every segment lies in RAM, 0, or an error; never loop, read
 * out of bounds or overflow.  Chains are pushed back so the used ring is exercised too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtqueue.h"
#include "memory/guest_memory.h"
#include "memory/layout.h"
#include "tests/fuzz/fuzz_input.h"

#define RAM (2ull << 20)
#define RINGS 0x10000 /* the first 64 KiB: rings and indirect tables, from the input */

static struct guest_memory mem;
static struct vq_elem elem;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (guest_memory_create(&mem, RAM) < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	struct virtqueue vq;
	uint8_t *ram = guest_memory_ptr(&mem, 0, RINGS);
	uint8_t flags = take_u8(&in);

	vq_reset(&vq, VQ_MAX_SIZE);
	vq.size = take_u16(&in);
	/* Rings in the part of RAM the input fills (libFuzzer inputs are a few KiB). */
	vq.desc_gpa = take_u16(&in) & 0xff0u;
	vq.avail_gpa = take_u16(&in) & 0xffcu;
	vq.used_gpa = take_u16(&in) & 0xffcu;
	vq.packed = flags & 1;
	vq.indirect = flags & 2;
	vq.event_idx = flags & 4;
	take_bytes(&in, ram, RINGS);
	if (vq_enable(&vq, &mem) < 0)
		return 0;
	for (int i = 0; i < 2 * VQ_MAX_SIZE; i++) {
		int r = vq_pop(&vq, &elem);
		if (r <= 0)
			break;
		for (unsigned k = 0; k < elem.out.n; k++)
			(void)*(volatile uint8_t *)elem.out.iov[k]
			    .iov_base; /* in RAM or ASan says */
		uint32_t len = 0;
		for (unsigned k = 0; k < elem.in.n; k++) {
			memset(elem.in.iov[k].iov_base, 0xAB, elem.in.iov[k].iov_len);
			len += elem.in.iov[k].iov_len;
		}
		vq_push(&vq, elem.head, elem.ndesc, len);
		vq_should_notify(&vq);
	}
	vq_more_after_idle(&vq);
	return 0;
}
